#include "evaluator/task_runner.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "evaluator/score.h"
#include "qat/export.h"
#include "qat/quantized_model.h"
#include "qat/tensor_dataset.h"
#include "qat/torch_errors.h"
#include "qat/trainer.h"

namespace autoq::evaluator {
namespace {

double Since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t)
      .count();
}

// The unmodified model's scores: the reference every candidate's accuracy
// loss is measured against.
absl::StatusOr<EvalRecord> RunFloatTask(const JobData& job,
                                        const EvalTask& task,
                                        c10::Device device) {
  const auto start = std::chrono::steady_clock::now();
  if (!task.bits.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("a float task has no bit-widths, got ", task.bits.size()));
  }
  EvalRecord record;
  ASSIGN_OR_RETURN(
      evaluator::ClassificationMetrics val,
      evaluator::EvaluateFloat(job.model, job.analysis, job.data.val, device));
  record.qat.val_seconds = Since(start);
  record.qat.best_val_top1 = val.top1;
  record.qat.final_val_top1 = val.top1;
  if (job.data.test.size() > 0) {
    const auto test_start = std::chrono::steady_clock::now();
    ASSIGN_OR_RETURN(evaluator::ClassificationMetrics test,
                     evaluator::EvaluateFloat(job.model, job.analysis,
                                              job.data.test, device));
    record.qat.test_top1 = test.top1;
    record.qat.test_seconds = Since(test_start);
  }
  record.qat.size_bytes = job.analysis.float_size_bytes;
  record.device = device.str();
  record.qat.wall_seconds = Since(start);
  return record;
}

}  // namespace

absl::StatusOr<EvalRecord> RunTask(const JobData& job, const EvalTask& task,
                                   c10::Device device,
                                   const qat::ProgressOptions& progress) {
  if (task.stage == Stage::kFloat) return RunFloatTask(job, task, device);
  const auto start = std::chrono::steady_clock::now();
  const bool final_stage = task.stage == Stage::kFinal;
  qat::QuantizedModelOptions options;
  options.scheme = job.scheme;
  if (final_stage) options.scheme.bn_fold = job.final_bn_fold;
  options.bits = task.bits;
  options.device = device;
  ASSIGN_OR_RETURN(
      std::unique_ptr<qat::QuantizedModel> model,
      qat::QuantizedModel::Create(job.model, job.analysis, options));
  const double prepare_seconds = Since(start);
  const int64_t subset =
      final_stage ? job.final_train_subset : job.search_train_subset;
  const qat::TensorDataset train =
      subset > 0 ? qat::Head(job.data.train, subset) : job.data.train;
  const qat::TensorDataset* test =
      final_stage && job.data.test.size() > 0 ? &job.data.test : nullptr;
  EvalRecord record;
  ASSIGN_OR_RETURN(record.qat, qat::RunQat(*model, train, job.data.val, test,
                                           final_stage ? job.final_recipe
                                                       : job.search_recipe,
                                           progress));
  record.device = device.str();
  record.qat.prepare_seconds = prepare_seconds;
  if (final_stage) {
    const auto export_start = std::chrono::steady_clock::now();
    ASSIGN_OR_RETURN(qat::ExportedModel exported,
                     qat::ExportQuantizedModel(*model));
    record.qat.export_seconds = Since(export_start);
    record.artifacts.emplace_back(kTorchScriptArtifact,
                                  std::move(exported.torchscript));
    record.artifacts.emplace_back(kPackedArtifact, std::move(exported.packed));
    record.artifacts.emplace_back(kManifestArtifact,
                                  std::move(exported.manifest_json));
  }
  // Model preparation and the exports count as the task's time too.
  record.qat.wall_seconds = Since(start);
  return record;
}

}  // namespace autoq::evaluator
