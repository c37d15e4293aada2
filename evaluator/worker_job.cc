#include "evaluator/worker_job.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "evaluator/dataset.h"
#include "qat/model_analysis.h"

namespace autoq::evaluator {

absl::StatusOr<JobConfig> WorkerJobConfig(const autoq::JobSpec& spec,
                                          const std::string& model_path) {
  autoq::JobSpec local = spec;
  local.mutable_model()->set_path(model_path);
  // The model is here already: never train a built-in one in its place.
  local.mutable_model()->clear_builtin();
  // Local workers and output folders are the submitting side's business.
  local.clear_workers();
  local.clear_output();
  return JobConfigFromSpec(local);
}

absl::StatusOr<std::shared_ptr<JobData>> BuildJobData(
    const JobConfig& config, const std::string& model_path) {
  auto job = std::make_shared<JobData>();
  ASSIGN_OR_RETURN(job->model, qat::LoadModel(model_path));
  ASSIGN_OR_RETURN(DataSpec data_spec, ParseDataSpec(config.data_spec));
  SplitOptions split;
  split.val_size = config.val_size;
  split.val_subset = config.val_subset;
  split.test_subset = config.test_subset;
  split.seed = config.split_seed;
  split.input_shape = config.input_shape;
  absl::StatusOr<DatasetSplits> data = LoadDataset(data_spec, split);
  if (!data.ok()) {
    // The reader names the file; say which spec it came from too, since
    // datasets are paths on the worker nodes, not the submitting machine.
    return absl::Status(data.status().code(),
                        absl::StrCat("dataset '", config.data_spec,
                                     "': ", data.status().message()));
  }
  job->data = *std::move(data);
  std::vector<int64_t> shape = config.input_shape;
  if (shape.empty()) {
    shape = qat::ImageShape(job->data.train);
  }
  ASSIGN_OR_RETURN(job->analysis, qat::AnalyzeModel(job->model, shape));
  const int64_t classes =
      std::max(job->data.train.num_classes, job->data.test.num_classes);
  if (job->analysis.num_classes > 0 && classes > job->analysis.num_classes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the dataset has ", classes, " classes but the model outputs ",
        job->analysis.num_classes));
  }
  job->scheme = config.scheme;
  job->search_recipe = config.search_recipe;
  job->search_train_subset = config.search_train_subset;
  job->final_recipe = config.final_front.recipe;
  job->final_train_subset = config.final_front.train_subset;
  job->final_bn_fold = config.final_front.bn_fold;
  job->ptq_calibration_images = config.final_front.ptq_calibration_images;
  job->sensitivity_images = config.search.sensitivity_images;
  job->min_bits = config.search.min_bits;
  job->max_bits = config.search.max_bits;
  return job;
}

}  // namespace autoq::evaluator
