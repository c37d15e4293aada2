// Training AutoQ's built-in CNN (used by `autoq train-baseline` and by
// `autoq run` when a config names the built-in model and it is absent).
#ifndef AUTOQ_CLIENT_BASELINE_H_
#define AUTOQ_CLIENT_BASELINE_H_

#include <string>

#include <c10/core/Device.h>

#include "absl/status/statusor.h"
#include "evaluator/dataset.h"
#include "qat/progress.h"
#include "qat/recipe.h"

namespace autoq::client {

// The recipe `train-baseline` uses unless told otherwise.
qat::QatRecipe DefaultBaselineRecipe();

// Trains the built-in model (width multiplier `width`) on data.train,
// validating on data.val and testing on data.test, and saves it as
// TorchScript at `out` (written to a temporary file, then renamed).
absl::StatusOr<qat::QatResult> TrainBuiltinBaseline(
    const evaluator::DatasetSplits& data, const qat::QatRecipe& recipe,
    double width, c10::Device device, const std::string& out,
    const qat::ProgressOptions& progress);

}  // namespace autoq::client

#endif  // AUTOQ_CLIENT_BASELINE_H_
