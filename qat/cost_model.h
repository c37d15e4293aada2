// Size and BOPs of a model under a per-layer bit-width configuration.
//
// size = sum over quantized layers of ceil(|W|*wbits/8)   packed weights
//        + 4 * (#bias values)      int32 biases (a folded BN always has one)
//        + 4 * (#scales) + 4 * (#zero points)   float32 scales, int32 zps
// BOPs = sum over layers of MACs * wbits * abits (float activations: 32).
// Per-tensor affine layers have one scale and one zero point; per-channel
// symmetric layers one scale per output channel and no zero point.
#ifndef AUTOQ_QAT_COST_MODEL_H_
#define AUTOQ_QAT_COST_MODEL_H_

#include <cstdint>
#include <vector>

#include "qat/model_info.h"
#include "qat/quant_config.h"

namespace autoq::qat {

struct LayerCost {
  int64_t weight_bytes = 0;
  int64_t bias_bytes = 0;
  int64_t qparam_bytes = 0;  // scales and zero points
  int64_t bops = 0;
  int64_t total_bytes() const { return weight_bytes + bias_bytes + qparam_bytes; }
};

struct ModelCost {
  int64_t size_bytes = 0;
  int64_t bops = 0;
  std::vector<LayerCost> layers;  // one per gene
};

// `bits` has one entry per gene (unmasked layer) of `analysis`.
ModelCost ComputeCost(const ModelAnalysis& analysis,
                      const std::vector<LayerBits>& bits, Granularity g);

}  // namespace autoq::qat

#endif  // AUTOQ_QAT_COST_MODEL_H_
