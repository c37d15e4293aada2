// What a worker builds once per job before it runs the job's tasks: the
// job's config from the spec a task carries, and the JobData (model,
// analysis, dataset splits, recipes) that RunTask reads. The same
// steps as `autoq run`, for a model file that is already on this machine.
//
// Thread-safety: plain functions; they touch no shared state (LibTorch's
// global thread settings excepted, which they leave alone).
#ifndef AUTOQ_EVALUATOR_WORKER_JOB_H_
#define AUTOQ_EVALUATOR_WORKER_JOB_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "evaluator/job_config.h"
#include "evaluator/task_runner.h"
#include "proto/autoq.pb.h"

namespace autoq::evaluator {

// The validated config of `spec` with every default filled in, its model
// read from `model_path`. The spec's model path, builtin, workers and
// output belong to the submitting machine and are ignored. Errors name the
// spec field.
absl::StatusOr<JobConfig> WorkerJobConfig(const autoq::JobSpec& spec,
                                          const std::string& model_path);

// Loads the model at `model_path` (config.model_path is ignored) and the
// dataset of `config` with its split options, analyzes the model at the
// config's input shape (default: the dataset's image shape) and copies the
// scheme and recipes. Fails, naming the file or path, when the model or the
// dataset cannot be read, and when the dataset has more classes than the
// model outputs.
absl::StatusOr<std::shared_ptr<JobData>> BuildJobData(
    const JobConfig& config, const std::string& model_path);

}  // namespace autoq::evaluator

#endif  // AUTOQ_EVALUATOR_WORKER_JOB_H_
