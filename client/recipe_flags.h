// Command-line flags shared by commands that run a QAT fine-tune or load a
// dataset (eval, train-baseline, and later run).
#ifndef AUTOQ_CLIENT_RECIPE_FLAGS_H_
#define AUTOQ_CLIENT_RECIPE_FLAGS_H_

#include <c10/core/Device.h>

#include <optional>

#include "absl/status/statusor.h"
#include "common/flags.h"
#include "evaluator/dataset.h"
#include "qat/recipe.h"

namespace autoq::client {

// --epochs --batch --optimizer --lr --momentum --wd --schedule --act-delay
// --bn-freeze --seed; and --data --val-size --train-subset --val-subset
// --test-subset --split-seed.
void AddRecipeFlags(FlagSpec* spec);
void AddDataFlags(FlagSpec* spec);

// Reads the recipe flags over `defaults`; validates the result.
absl::StatusOr<qat::QatRecipe> RecipeFromFlags(const Flags& flags,
                                               qat::QatRecipe defaults);

// The train/validation carve's seed unless --split-seed says otherwise: a
// job's dataset.seed default, and the built-in baseline's. Separate from
// the QAT seed (--seed), so changing that never moves the split.
inline constexpr int64_t kDefaultSplitSeed = 1;

// Loads --data (default `default_spec`) split by the data flags; image
// folders are fitted to --input (C,H,W) when the command has that flag.
absl::StatusOr<evaluator::DatasetSplits> DataFromFlags(
    const Flags& flags, const std::string& default_spec);

// A command that trains or evaluates locally (eval, train-baseline).
struct TrainingCommand {
  Flags flags;
  c10::Device device;
};

// The common start of such a command: parses argv (from argv[2]) with
// `spec` plus the compute, recipe and data flags; on --help prints `help`
// and those flags' help and returns nullopt; otherwise applies --threads
// and returns the flags and --device. Errors name the flag.
absl::StatusOr<std::optional<TrainingCommand>> StartTrainingCommand(
    int argc, char** argv, FlagSpec spec, const char* help);

// "usage" text lines for the flags above.
extern const char kRecipeFlagsHelp[];
extern const char kDataFlagsHelp[];

}  // namespace autoq::client

#endif  // AUTOQ_CLIENT_RECIPE_FLAGS_H_
