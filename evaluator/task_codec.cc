#include "evaluator/task_codec.h"

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
  for (const qat::LayerBits& b : bits) {
    r.add_wbits(b.wbits);
    r.add_abits(b.abits);
  }
  std::string out;
  r.SerializeToString(&out);
  return out;
}

absl::StatusOr<EvalRecord> DecodeRecord(const std::string& value) {
  autoq::EvalResult r;
  if (!r.ParseFromString(value)) {
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
  return record;
}

}  // namespace autoq::evaluator
