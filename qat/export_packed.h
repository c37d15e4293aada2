// Internal to qat/: phases of BuildPacked (export_internal.h) that stand on
// their own, declared here so tests can check them without a model.
#ifndef AUTOQ_QAT_EXPORT_PACKED_H_
#define AUTOQ_QAT_EXPORT_PACKED_H_

#include <ATen/ATen.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "qat/quant_config.h"
#include "qat/quantized_model.h"

namespace autoq::qat::export_internal {

// Appends `codes` (int32, contiguous, CPU) in `bits` bits each, LSB-first,
// to `out`, zero-padded to a whole byte.
void PackBits(const at::Tensor& codes, int bits, std::string* out);

// The batch-norm folded into a layer, s = gamma / sqrt(var + eps) as
// RefreshWeights computes it; all undefined when the layer has none.
struct LayerBn {
  at::Tensor s, beta, mean;
};

// The batch-norm of layer `info` as the model evaluates it now.
LayerBn ReadBn(QuantizedModel& model, const LayerInfo& info);

// Float bias of the deployed layer (the folded one when `folded`), double
// on the CPU; undefined when the layer has neither a bias nor a batch-norm.
at::Tensor DeployedBias(QuantizedModel& model, const LayerInfo& info,
                        const LayerBn& bn, bool folded, int64_t channels);

// One layer of the deployable model as integers.
struct LayerCodes {
  at::Tensor codes;        // int32, CPU, contiguous, the weight's shape
  at::Tensor scales;       // float32, CPU: one, or one per output channel
  at::Tensor zero_points;  // per-tensor affine only; undefined otherwise
  bool per_channel = false;
  bool folded = false;  // the BN is folded into codes and scales
};

// The integer codes of `w` under `g`, with `bn` folded in where the scheme
// allows it (see the packing description in export_packed.cc).
LayerCodes QuantizeLayer(const WeightQuantState& w, const LayerBn& bn,
                         Granularity g, int64_t channels);

// Where a section of a layer lies in the payload.
struct Section {
  int64_t offset = 0, bytes = 0, count = 0;
};
struct LayerLayout {
  Section weights;
  std::optional<Section> bias;  // none when the layer has no bias
  Section scales;
  std::optional<Section> zero_points;  // per-tensor affine only
  int64_t bytes = 0;                   // all sections together
};

// Appends the layer's [weights][bias][scales][zero points] to `payload`:
// the codes in `wbits` bits each, `bias` (double, per output channel;
// undefined when none) as int32 codes of scale * input_scale, the scales as
// float32 and the zero points as int32.
LayerLayout AppendLayer(const LayerCodes& layer, int wbits,
                        const at::Tensor& bias, double input_scale,
                        std::string* payload);

}  // namespace autoq::qat::export_internal

#endif  // AUTOQ_QAT_EXPORT_PACKED_H_
