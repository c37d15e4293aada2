#include "qat/cost_model.h"

namespace autoq::qat {

ModelCost ComputeCost(const ModelAnalysis& analysis,
                      const std::vector<LayerBits>& bits, Granularity g) {
  ModelCost cost;
  std::vector<const LayerInfo*> genes = analysis.genes();
  for (size_t i = 0; i < genes.size() && i < bits.size(); ++i) {
    const LayerInfo& l = *genes[i];
    const int64_t out_channels = l.weight_shape.empty() ? 0 : l.weight_shape[0];
    LayerCost c;
    c.weight_bytes = (l.num_weights * bits[i].wbits + 7) / 8;
    const bool has_bias = !l.bias_path.empty() || !l.bn_path.empty();
    c.bias_bytes = has_bias ? 4 * out_channels : 0;
    c.qparam_bytes =
        g == Granularity::kPerChannelSymmetric ? 4 * out_channels : 4 + 4;
    const int64_t abits = bits[i].abits == 0 ? 32 : bits[i].abits;
    c.bops = l.macs * bits[i].wbits * abits;
    cost.size_bytes += c.total_bytes();
    cost.bops += c.bops;
    cost.layers.push_back(c);
  }
  return cost;
}

}  // namespace autoq::qat
