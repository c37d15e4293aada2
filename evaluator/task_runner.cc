#include "evaluator/task_runner.h"

#include <ATen/ATen.h>

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "evaluator/score.h"
#include "qat/export.h"
#include "qat/quantized_model.h"
#include "qat/sensitivity.h"
#include "qat/tensor_dataset.h"
#include "qat/torch_errors.h"
#include "qat/trainer.h"

namespace autoq::evaluator {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Larger splits stay as stored and are converted batch by batch: a
// 60k-image training set would take 188 MB as floats.
constexpr int64_t kMaxPreparedBytes = int64_t{64} << 20;

// `data` with its images normalized to float once, so that every batch is
// a plain slice. The values equal what GatherImages/SliceImages compute per
// batch (the same element-wise operations).
absl::StatusOr<qat::TensorDataset> Normalized(const qat::TensorDataset& data) {
  // Streamed datasets stay streamed: they do not fit in memory.
  if (data.size() == 0 || data.streamed() ||
      (data.images.scalar_type() == at::kFloat && data.mean.empty()) ||
      data.images.numel() * 4 > kMaxPreparedBytes) {
    return data;
  }
  try {
    qat::TensorDataset out = data;
    out.images = qat::SliceImages(data, 0, data.size());
    out.mean.clear();
    out.std.clear();
    return out;
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot convert the dataset: ", qat::SummarizeTorchError(e)));
  }
}

// The unmodified model's scores (the reference every candidate's accuracy
// loss is measured against), or for kFloat16 those of the model with its
// parameters rounded to float16, at half the float size.
absl::StatusOr<EvalRecord> RunFloatTask(const JobData& job,
                                        const EvalTask& task,
                                        c10::Device device) {
  const auto start = Clock::now();
  if (!task.bits.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("a ", StageName(task.stage),
                     " task has no bit-widths, got ", task.bits.size()));
  }
  const bool half = task.stage == Stage::kFloat16;
  torch::jit::Module rounded;
  if (half) {
    ASSIGN_OR_RETURN(rounded, WithFloat16Parameters(job.model));
  }
  const torch::jit::Module& model = half ? rounded : job.model;
  EvalRecord record;
  ASSIGN_OR_RETURN(
      evaluator::ClassificationMetrics val,
      evaluator::EvaluateFloat(model, job.analysis, job.data.val, device));
  record.qat.val_seconds = Since(start);
  record.qat.best_val_top1 = val.top1;
  record.qat.final_val_top1 = val.top1;
  if (job.data.test.size() > 0) {
    const auto test_start = Clock::now();
    ASSIGN_OR_RETURN(evaluator::ClassificationMetrics test,
                     evaluator::EvaluateFloat(model, job.analysis,
                                              job.data.test, device));
    record.qat.test_top1 = test.top1;
    record.qat.test_seconds = Since(test_start);
  }
  record.qat.size_bytes = job.analysis.float_size_bytes / (half ? 2 : 1);
  record.device = device.str();
  record.qat.wall_seconds = Since(start);
  return record;
}

// Per-layer weight sensitivity on the first validation images: the
// search's prior (no bits, no training).
absl::StatusOr<EvalRecord> RunSensitivityTask(
    const JobData& job, c10::Device device,
    const qat::ProgressOptions& progress) {
  const auto start = Clock::now();
  qat::SensitivityOptions options;
  options.min_bits = job.min_bits;
  options.max_bits = job.max_bits;
  options.device = device;
  options.cancel = progress.cancel;
  EvalRecord record;
  ASSIGN_OR_RETURN(
      record.sensitivity,
      qat::MeasureSensitivity(job.model, job.analysis,
                              qat::Head(job.data.val, job.sensitivity_images),
                              job.scheme, options));
  record.qat.best_val_top1 = record.sensitivity->reference_top1;
  record.qat.test_top1 = -1;
  record.qat.val_seconds = Since(start);
  record.device = device.str();
  record.qat.wall_seconds = Since(start);
  return record;
}

}  // namespace

// What the job's tasks share, built on first use.
struct TaskRunner::Prepared {
  // By stage: 0 search, 1 final (its own BN fold, hence its own graph).
  std::unique_ptr<qat::QuantizedModel> models[2];
  bool data_ready = false;
  qat::TensorDataset train[2];  // the stage's training subset
  qat::TensorDataset val, test;

  absl::Status PrepareData(const JobData& job) {
    if (data_ready) return absl::OkStatus();
    for (int s = 0; s < 2; ++s) {
      const int64_t subset =
          s == 1 ? job.final_train_subset : job.search_train_subset;
      ASSIGN_OR_RETURN(train[s],
                       Normalized(subset > 0 ? qat::Head(job.data.train, subset)
                                             : job.data.train));
    }
    ASSIGN_OR_RETURN(val, Normalized(job.data.val));
    ASSIGN_OR_RETURN(test, Normalized(job.data.test));
    data_ready = true;
    return absl::OkStatus();
  }

  // The stage's model reset to `task`'s bits, built on first use.
  absl::StatusOr<qat::QuantizedModel*> ModelFor(const JobData& job,
                                                const EvalTask& task,
                                                c10::Device device) {
    const bool final_stage = task.stage == Stage::kFinal;
    std::unique_ptr<qat::QuantizedModel>& model = models[final_stage ? 1 : 0];
    // A model left mid-fine-tune (an error, a cancel) resets like any
    // other; one that cannot is built again.
    if (model != nullptr && !model->Reset(task.bits).ok()) model.reset();
    if (model == nullptr) {
      qat::QuantizedModelOptions options;
      options.scheme = job.scheme;
      if (final_stage) options.scheme.bn_fold = job.final_bn_fold;
      options.bits = task.bits;
      options.device = device;
      ASSIGN_OR_RETURN(
          model, qat::QuantizedModel::Create(job.model, job.analysis, options));
    }
    return model.get();
  }
};

TaskRunner::TaskRunner(std::shared_ptr<const JobData> job, c10::Device device)
    : job_(std::move(job)),
      device_(device),
      prepared_(std::make_unique<Prepared>()) {}

TaskRunner::~TaskRunner() = default;

absl::StatusOr<EvalRecord> TaskRunner::Run(
    const EvalTask& task, const qat::ProgressOptions& progress) {
  const JobData& job = *job_;
  if (task.stage == Stage::kFloat || task.stage == Stage::kFloat16) {
    return RunFloatTask(job, task, device_);
  }
  if (task.stage == Stage::kSensitivity) {
    return RunSensitivityTask(job, device_, progress);
  }
  if (task.stage == Stage::kPtqPerTensor ||
      task.stage == Stage::kPtqPerChannel) {
    return RunPtq(task, progress);
  }
  const auto start = Clock::now();
  const bool final_stage = task.stage == Stage::kFinal;
  Prepared& p = *prepared_;
  RETURN_IF_ERROR(p.PrepareData(job));
  ASSIGN_OR_RETURN(qat::QuantizedModel * model, p.ModelFor(job, task, device_));
  const double prepare_seconds = Since(start);
  const qat::TensorDataset* test =
      final_stage && p.test.size() > 0 ? &p.test : nullptr;
  EvalRecord record;
  ASSIGN_OR_RETURN(
      record.qat,
      qat::RunQat(*model, p.train[final_stage ? 1 : 0], p.val, test,
                  final_stage ? job.final_recipe : job.search_recipe,
                  progress));
  record.device = device_.str();
  record.qat.prepare_seconds = prepare_seconds;
  if (final_stage) {
    const auto export_start = Clock::now();
    ASSIGN_OR_RETURN(qat::ExportedModel exported,
                     qat::ExportQuantizedModel(*model));
    record.qat.export_seconds = Since(export_start);
    record.artifacts.emplace_back(kTorchScriptArtifact,
                                  std::move(exported.torchscript));
    record.artifacts.emplace_back(kPackedArtifact, std::move(exported.packed));
    record.artifacts.emplace_back(kManifestArtifact,
                                  std::move(exported.manifest_json));
    if (!exported.onnx.empty()) {
      record.artifacts.emplace_back(kOnnxArtifact, std::move(exported.onnx));
      record.artifacts.emplace_back(kEncodingsArtifact,
                                    std::move(exported.onnx_encodings_json));
    } else {
      record.artifacts.emplace_back(kOnnxErrorArtifact,
                                    exported.onnx_error + "\n");
    }
  }
  // Model preparation and the exports count as the task's time too.
  record.qat.wall_seconds = Since(start);
  return record;
}

// Post-training quantization: the task's bits with the stage's weight
// granularity, activation ranges from the first training images, then val
// and test. No weight is trained, so nothing is kept for the next task.
absl::StatusOr<EvalRecord> TaskRunner::RunPtq(
    const EvalTask& task, const qat::ProgressOptions& progress) {
  const JobData& job = *job_;
  const auto start = Clock::now();
  Prepared& p = *prepared_;
  RETURN_IF_ERROR(p.PrepareData(job));
  qat::QuantizedModelOptions options;
  options.scheme = job.scheme;
  options.scheme.granularity = task.stage == Stage::kPtqPerTensor
                                   ? qat::Granularity::kPerTensorAffine
                                   : qat::Granularity::kPerChannelSymmetric;
  options.scheme.bn_fold = job.final_bn_fold;
  options.bits = task.bits;
  options.device = device_;
  qat::QatRecipe recipe;
  recipe.epochs = 0;
  recipe.eval_batch_size = job.final_recipe.eval_batch_size;
  const int64_t batch = qat::EvalBatchSize(recipe, device_.is_cpu());
  ASSIGN_OR_RETURN(
      qat::TensorDataset calibration,
      Normalized(qat::Head(job.data.train, job.ptq_calibration_images)));
  const int64_t batches = std::max<int64_t>(
      1, (calibration.size() + batch - 1) / batch);
  recipe.calibration_batches = static_cast<int>(batches);
  // Every calibration batch weighs about the same in the ranges (an EMA
  // whose span is the number of batches), as in PyTorch's
  // MovingAverageMinMaxObserver over a calibration set.
  options.act_ema = 2.0 / (static_cast<double>(batches) + 1.0);
  ASSIGN_OR_RETURN(
      std::unique_ptr<qat::QuantizedModel> model,
      qat::QuantizedModel::Create(job.model, job.analysis, options));
  const double prepare_seconds = Since(start);
  EvalRecord record;
  ASSIGN_OR_RETURN(record.qat,
                   qat::RunQat(*model, calibration, p.val,
                               p.test.size() > 0 ? &p.test : nullptr, recipe,
                               progress));
  record.device = device_.str();
  record.qat.prepare_seconds = prepare_seconds;
  record.qat.wall_seconds = Since(start);
  return record;
}

absl::StatusOr<EvalRecord> RunTask(const JobData& job, const EvalTask& task,
                                   c10::Device device,
                                   const qat::ProgressOptions& progress) {
  // Not owned: the runner lives only for this call.
  TaskRunner runner(
      std::shared_ptr<const JobData>(std::shared_ptr<const JobData>(), &job),
      device);
  return runner.Run(task, progress);
}

}  // namespace autoq::evaluator
