// A search job as the rest of the code sees it: the JobSpec of
// proto/autoq.proto (config files are its JSON form) parsed, validated and
// with every default filled in.
//
// Errors name the field ("search.population: 3 is not ...") so a user can
// fix the config file. Thread-safety: plain functions and values.
#ifndef AUTOQ_EVALUATOR_JOB_CONFIG_H_
#define AUTOQ_EVALUATOR_JOB_CONFIG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "qat/quant_config.h"
#include "qat/recipe.h"

namespace autoq {
class JobSpec;  // proto/autoq.proto
}  // namespace autoq

namespace autoq::evaluator {

struct SearchOptions {
  int population = 8;   // a multiple of 4, >= 8 (pagmo's NSGA-II)
  int generations = 4;  // after the initial population
  double crossover = 0.9;
  double mutation = -1;  // per gene; -1: 1 / genes
  double eta_c = 10;
  double eta_m = 10;
  uint32_t seed = 1;
  int min_bits = qat::kMinBits;
  int max_bits = qat::kMaxBits;
  bool search_activation_bits = false;
  int activation_bits = 8;  // when not searched; 0 = float
  bool pin_first_last = false;
  bool bops_objective = false;
  int64_t size_budget_bytes = 0;  // 0: none
  // Percentage points of validation top-1 below the float model beyond
  // which a configuration is outside the region of interest; (0, 100].
  double max_accuracy_drop = 2.0;
  // Seed the initial population from per-layer sensitivity (a
  // STAGE_SENSITIVITY task on this many validation images, then a
  // knapsack per size budget) besides the uniform configurations; 0: off.
  int64_t sensitivity_images = 1000;
  // How the search runs.
  enum class Strategy {
    // Sensitivity seeds, surrogate-screened offspring, and the final front
    // from every configuration scored, inside the region of interest.
    kGuided,
    // Plain NSGA-II: uniform initial population, unscreened offspring,
    // the last population's front, no region in the objectives (the
    // reports still judge in it). A baseline.
    kNsga2,
    // No search: the sensitivity + knapsack solutions go straight to the
    // final fine-tune (HAWQ-V3's recipe). A baseline.
    kKnapsack,
  };
  Strategy strategy = Strategy::kGuided;
  // Guided only: offspring bred per population slot and generation; a
  // surrogate fitted on every scored configuration picks a population's
  // worth for QAT. 1: no screening.
  int screening = 16;
  // Percentage points of validation top-1 within which two short-QAT
  // scores are not told apart (the spread over QAT seeds,
  // bench/run_score_noise.sh): the final front keeps a larger
  // configuration only when it scores more than this above every smaller
  // one, so fewer final fine-tunes go to gains within the noise. [0, 10];
  // 0 (the default) keeps every non-dominated point: on the default job
  // 0.15 dropped a point that the final fine-tune found better.
  double score_noise = 0;
};

// "guided", "nsga2", "knapsack".
const char* StrategyName(SearchOptions::Strategy s);

struct FinalOptions {
  qat::QatRecipe recipe;
  int64_t train_subset = 0;  // 0: the whole training split
  qat::BnFold bn_fold = qat::BnFold::kApproximate;
  bool compare_uniform = true;
  // The reports' post-training baselines (float16 parameters, int8 PTQ
  // per-tensor and per-channel), and the training images that calibrate
  // the int8 ones (1..1,000,000).
  bool ptq_baselines = true;
  int64_t ptq_calibration_images = 1024;
};

struct JobConfig {
  std::string name;
  // Canonical JSON of the spec as given (for logs and the job's identity).
  std::string spec_json;

  std::string model_path;
  std::string builtin;               // "" or "fashion-mnist"
  std::vector<int64_t> input_shape;  // empty: the dataset's

  std::string data_spec;
  int64_t val_size = 5000;
  int64_t val_subset = 0;
  int64_t test_subset = 0;
  uint64_t split_seed = 1;

  qat::QuantScheme scheme;
  SearchOptions search;
  qat::QatRecipe search_recipe;
  int64_t search_train_subset = 0;
  FinalOptions final_front;

  std::vector<std::string> devices;  // one local worker each
  int threads = 0;                   // per worker; 0: cores / CPU workers

  std::string output_dir;
  std::string database;

  // Adjustments made while resolving (e.g. a population rounded up).
  std::vector<std::string> warnings;
};

// Parses the JSON form of an autoq.JobSpec, validates it and fills in the
// defaults. Relative paths stay relative to the working directory.
absl::StatusOr<JobConfig> ParseJobConfig(absl::string_view json);

// The config of a JobSpec message (a submission, a task's spec): printed to
// its JSON form and parsed by ParseJobConfig, so both paths validate and
// default alike.
absl::StatusOr<JobConfig> JobConfigFromSpec(const autoq::JobSpec& spec);

// Reads and parses a config file; errors name the file.
absl::StatusOr<JobConfig> LoadJobConfig(const std::string& path);

}  // namespace autoq::evaluator

#endif  // AUTOQ_EVALUATOR_JOB_CONFIG_H_
