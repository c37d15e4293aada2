// What a worker does with one task: the QAT fine-tune of one bit-width
// configuration (and, for a final point, its test score and exports).
// autoq-worker runs a job's tasks through one TaskRunner.
//
// Thread-safety: RunTask only reads `job`; concurrent calls are safe. A
// TaskRunner runs one task at a time (calls must not overlap).
#ifndef AUTOQ_EVALUATOR_TASK_RUNNER_H_
#define AUTOQ_EVALUATOR_TASK_RUNNER_H_

#include <c10/core/Device.h>
#include <torch/csrc/jit/api/module.h>

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "evaluator/dataset.h"
#include "evaluator/task.h"
#include "qat/model_info.h"
#include "qat/progress.h"
#include "qat/quant_config.h"
#include "qat/recipe.h"

namespace autoq::evaluator {

// Everything a task needs besides its bits; read-only once built.
struct JobData {
  torch::jit::Module model;
  qat::ModelAnalysis analysis;
  evaluator::DatasetSplits data;
  qat::QuantScheme scheme;
  qat::QatRecipe search_recipe;
  int64_t search_train_subset = 0;  // 0: all of data.train
  qat::QatRecipe final_recipe;
  int64_t final_train_subset = 0;
  qat::BnFold final_bn_fold = qat::BnFold::kApproximate;
  // The int8 PTQ baselines: the first training images calibrate the
  // activation ranges.
  int64_t ptq_calibration_images = 1024;
  // The sensitivity stage: the first images of the validation split and
  // the weight bit-widths probed.
  int64_t sensitivity_images = 1000;
  int min_bits = qat::kMinBits, max_bits = qat::kMaxBits;
};

// Runs `task` on `device`. Search tasks score on the validation split only;
// final tasks also score the test split and export the model; float tasks
// (no bits) score the unmodified model on the validation and test splits;
// sensitivity tasks (no bits) measure qat::MeasureSensitivity on the first
// job.sensitivity_images validation images. The baselines score val and
// test with no training: float16 tasks (no bits) the model with every
// float parameter and buffer rounded to float16, PTQ tasks the task's bits
// with per-tensor or per-channel weights (whatever the job's scheme) and
// activation ranges calibrated on job.ptq_calibration_images training
// images.
absl::StatusOr<EvalRecord> RunTask(const JobData& job, const EvalTask& task,
                                   c10::Device device,
                                   const qat::ProgressOptions& progress = {});

// Runs a job's tasks one after another like RunTask, with the same results,
// but keeps what they share instead of rebuilding it per task: the
// instrumented model (built once per stage's scheme, then reset to each
// task's bits: qat::QuantizedModel::Reset) and the training subsets and
// validation/test splits converted to normalized float once.
class TaskRunner {
 public:
  TaskRunner(std::shared_ptr<const JobData> job, c10::Device device);
  ~TaskRunner();
  TaskRunner(const TaskRunner&) = delete;
  TaskRunner& operator=(const TaskRunner&) = delete;

  absl::StatusOr<EvalRecord> Run(const EvalTask& task,
                                 const qat::ProgressOptions& progress = {});
  const JobData& job() const { return *job_; }

 private:
  struct Prepared;
  absl::StatusOr<EvalRecord> RunPtq(const EvalTask& task,
                                    const qat::ProgressOptions& progress);
  std::shared_ptr<const JobData> job_;
  c10::Device device_;
  std::unique_ptr<Prepared> prepared_;
};

}  // namespace autoq::evaluator

#endif  // AUTOQ_EVALUATOR_TASK_RUNNER_H_
