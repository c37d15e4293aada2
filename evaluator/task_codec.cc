#include "evaluator/task_codec.h"

#include <cstdint>

#include "absl/strings/str_cat.h"

namespace autoq::evaluator {

autoq::TaskStage ToProtoStage(Stage stage) {
  switch (stage) {
    case Stage::kFloat:
      return autoq::STAGE_FLOAT;
    case Stage::kSearch:
      return autoq::STAGE_SEARCH;
    case Stage::kFinal:
      return autoq::STAGE_FINAL;
    case Stage::kSensitivity:
      return autoq::STAGE_SENSITIVITY;
    case Stage::kFloat16:
      return autoq::STAGE_FLOAT16;
    case Stage::kPtqPerTensor:
      return autoq::STAGE_PTQ_PER_TENSOR;
    case Stage::kPtqPerChannel:
      return autoq::STAGE_PTQ_PER_CHANNEL;
  }
  return autoq::STAGE_UNSPECIFIED;
}

absl::StatusOr<Stage> FromProtoStage(int stage) {
  switch (stage) {
    case autoq::STAGE_FLOAT:
      return Stage::kFloat;
    case autoq::STAGE_SEARCH:
      return Stage::kSearch;
    case autoq::STAGE_FINAL:
      return Stage::kFinal;
    case autoq::STAGE_SENSITIVITY:
      return Stage::kSensitivity;
    case autoq::STAGE_FLOAT16:
      return Stage::kFloat16;
    case autoq::STAGE_PTQ_PER_TENSOR:
      return Stage::kPtqPerTensor;
    case autoq::STAGE_PTQ_PER_CHANNEL:
      return Stage::kPtqPerChannel;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("unknown stage ", stage, " (a newer server?)"));
  }
}

std::string EncodeRecord(const EvalRecord& record,
                         const std::vector<qat::LayerBits>& bits) {
  autoq::EvalResult r;
  const qat::QatResult& q = record.qat;
  r.set_best_val_top1(q.best_val_top1);
  r.set_best_epoch(q.best_epoch);
  r.set_final_val_top1(q.final_val_top1);
  r.set_test_top1(q.test_top1);
  for (const qat::EpochStats& e : q.curve) {
    autoq::EpochRecord* er = r.add_curve();
    er->set_epoch(e.epoch);
    er->set_lr(e.lr);
    er->set_train_loss(e.train_loss);
    er->set_train_top1(e.train_top1);
    er->set_val_top1(e.val_top1);
    er->set_acts_quantized(e.acts_quantized);
    er->set_seconds(e.seconds);
  }
  r.set_size_bytes(q.size_bytes);
  r.set_bops(q.bops);
  r.set_train_seconds(q.train_seconds);
  r.set_wall_seconds(q.wall_seconds);
  r.set_val_seconds(q.val_seconds);
  r.set_calibration_seconds(q.calibration_seconds);
  r.set_test_seconds(q.test_seconds);
  r.set_prepare_seconds(q.prepare_seconds);
  r.set_export_seconds(q.export_seconds);
  r.set_device(record.device);
  if (record.sensitivity.has_value()) {
    const qat::SensitivityTable& t = *record.sensitivity;
    autoq::SensitivityResult* s = r.mutable_sensitivity();
    s->set_min_bits(t.min_bits);
    s->set_max_bits(t.max_bits);
    s->set_reference_loss(t.reference_loss);
    s->set_reference_top1(t.reference_top1);
    s->set_images(t.images);
    s->set_seconds(t.seconds);
    for (size_t g = 0; g < t.layers.size(); ++g) {
      autoq::SensitivityLayer* l = s->add_layers();
      l->set_name(t.layers[g]);
      for (double v : t.loss[g]) l->add_loss(v);
      for (double v : t.top1[g]) l->add_top1(v);
    }
  }
  for (const qat::LayerBits& b : bits) {
    r.add_wbits(b.wbits);
    r.add_abits(b.abits);
  }
  std::string out;
  r.SerializeToString(&out);
  return out;
}

absl::StatusOr<EvalRecord> DecodeRecord(absl::string_view value) {
  autoq::EvalResult r;
  if (value.size() > static_cast<size_t>(INT32_MAX) ||
      !r.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    return absl::DataLossError("a cached result does not parse");
  }
  EvalRecord record;
  qat::QatResult& q = record.qat;
  q.best_val_top1 = r.best_val_top1();
  q.best_epoch = r.best_epoch();
  q.final_val_top1 = r.final_val_top1();
  q.test_top1 = r.test_top1();
  for (const autoq::EpochRecord& er : r.curve()) {
    qat::EpochStats e;
    e.epoch = er.epoch();
    e.lr = er.lr();
    e.train_loss = er.train_loss();
    e.train_top1 = er.train_top1();
    e.val_top1 = er.val_top1();
    e.acts_quantized = er.acts_quantized();
    e.seconds = er.seconds();
    q.curve.push_back(e);
  }
  q.size_bytes = r.size_bytes();
  q.bops = r.bops();
  q.train_seconds = r.train_seconds();
  q.wall_seconds = r.wall_seconds();
  q.val_seconds = r.val_seconds();
  q.calibration_seconds = r.calibration_seconds();
  q.test_seconds = r.test_seconds();
  q.prepare_seconds = r.prepare_seconds();
  q.export_seconds = r.export_seconds();
  record.device = r.device();
  if (r.has_sensitivity()) {
    const autoq::SensitivityResult& s = r.sensitivity();
    qat::SensitivityTable t;
    t.min_bits = s.min_bits();
    t.max_bits = s.max_bits();
    t.reference_loss = s.reference_loss();
    t.reference_top1 = s.reference_top1();
    t.images = s.images();
    t.seconds = s.seconds();
    const int widths = t.max_bits - t.min_bits + 1;
    if (t.min_bits < qat::kMinBits || t.max_bits > qat::kMaxBits ||
        widths < 1) {
      return absl::DataLossError("a cached sensitivity has bad bit-widths");
    }
    for (const autoq::SensitivityLayer& l : s.layers()) {
      if (l.loss_size() != widths || l.top1_size() != widths) {
        return absl::DataLossError(
            "a cached sensitivity has rows of the wrong length");
      }
      t.layers.push_back(l.name());
      t.loss.emplace_back(l.loss().begin(), l.loss().end());
      t.top1.emplace_back(l.top1().begin(), l.top1().end());
    }
    record.sensitivity = std::move(t);
  }
  return record;
}

}  // namespace autoq::evaluator
