// Folding batch-norms into the preceding convolutions, in place.
//
// For each layer with a folded BN (s = gamma / sqrt(running_var + eps)):
//   W' = W * s,  conv bias b' = b * s (when the conv has one),
// and the BN becomes an identity plus the folded bias:
//   gamma' = 1, mean' = 0, var' = 1 - eps, beta' = beta - mean * s.
// The graph is untouched (no surgery, any TorchScript model works); in eval
// mode the BN then computes y + beta', which is the deployed int32 bias.
#ifndef AUTOQ_QAT_BN_FOLD_H_
#define AUTOQ_QAT_BN_FOLD_H_

#include <torch/csrc/jit/api/module.h>

#include "absl/status/status.h"
#include "qat/model_analysis.h"

namespace autoq::qat {

// Folds every BN recorded in `analysis` (which must describe `module`).
// Only meaningful in eval mode: training-mode BN would renormalize.
absl::Status FoldBatchNormInPlace(torch::jit::Module& module,
                                  const ModelAnalysis& analysis);

}  // namespace autoq::qat

#endif  // AUTOQ_QAT_BN_FOLD_H_
