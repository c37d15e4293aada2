// Scoring one chromosome: model + dataset + recipe + bit-widths -> accuracy,
// size, BOPs and the per-epoch curve. The unit of work of a search worker.
//
// Thread-safety: ScoreChromosome only reads its inputs; concurrent calls on
// distinct threads are safe (each builds its own QuantizedModel).
#ifndef AUTOQ_EVALUATOR_SCORE_H_
#define AUTOQ_EVALUATOR_SCORE_H_

#include <vector>

#include <torch/csrc/jit/api/module.h>

#include "absl/status/statusor.h"
#include "evaluator/dataset.h"
#include "evaluator/metrics.h"
#include "qat/model_info.h"
#include "qat/progress.h"
#include "qat/quant_config.h"
#include "qat/recipe.h"

namespace autoq::evaluator {

struct ScoreRequest {
  qat::QuantScheme scheme;
  // One per gene; empty scores the float model (fine-tuned by `recipe`).
  std::vector<qat::LayerBits> bits;
  qat::QatRecipe recipe;
  c10::Device device = c10::Device(c10::kCPU);
  qat::ProgressOptions progress;
};

struct Score {
  qat::QatResult qat;
  ClassificationMetrics test;  // of the final model; count 0 without test
};

absl::StatusOr<Score> ScoreChromosome(const torch::jit::Module& model,
                                      const qat::ModelAnalysis& analysis,
                                      const DatasetSplits& data,
                                      const ScoreRequest& request);

// Accuracy of the unmodified float model on `data` (eval mode).
absl::StatusOr<ClassificationMetrics> EvaluateFloat(
    const torch::jit::Module& model, const qat::ModelAnalysis& analysis,
    const qat::TensorDataset& data, c10::Device device);

// A deep copy of `model` with every floating-point parameter and buffer
// rounded to float16 (and stored back as float32): the model a float16
// deployment computes with.
absl::StatusOr<torch::jit::Module> WithFloat16Parameters(
    const torch::jit::Module& model);

}  // namespace autoq::evaluator

#endif  // AUTOQ_EVALUATOR_SCORE_H_
