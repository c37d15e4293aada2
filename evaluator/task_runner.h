// What a worker does with one task: the QAT fine-tune of one bit-width
// configuration (and, for a final point, its test score and exports).
// autoq-worker runs every task through it.
//
// Thread-safety: RunTask only reads `job`; concurrent calls are safe.
#ifndef AUTOQ_EVALUATOR_TASK_RUNNER_H_
#define AUTOQ_EVALUATOR_TASK_RUNNER_H_

#include <c10/core/Device.h>
#include <torch/csrc/jit/api/module.h>

#include <cstdint>

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
};

// Runs `task` on `device`. Search tasks score on the validation split only;
// final tasks also score the test split and export the model; float tasks
// (no bits) score the unmodified model on the validation and test splits.
absl::StatusOr<EvalRecord> RunTask(const JobData& job, const EvalTask& task,
                                   c10::Device device,
                                   const qat::ProgressOptions& progress = {});

}  // namespace autoq::evaluator

#endif  // AUTOQ_EVALUATOR_TASK_RUNNER_H_
