// What to quantize and how: the scheme shared by all layers of a model and
// the per-layer bit-widths (one chromosome of the search).
#ifndef AUTOQ_QAT_QUANT_CONFIG_H_
#define AUTOQ_QAT_QUANT_CONFIG_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace autoq::qat {

inline constexpr int kMinBits = 2;
inline constexpr int kMaxBits = 8;

enum class Granularity {
  // One scale and zero point per tensor, zero exactly representable.
  kPerTensorAffine,
  // One scale per output channel, zero point 0, range [-(2^(b-1)-1),
  // 2^(b-1)-1].
  kPerChannelSymmetric,
};

enum class RangeMethod {
  kMinMax,  // the full range of the weights
  kMse,     // the clipping range that minimizes the quantization MSE
};

enum class BnFold {
  kNone,         // BN stays a separate float op; weights quantized as is
  kApproximate,  // quantize W*s, unscale, regular BN (PyTorch's ConvBn fold)
  // Krishnamoorthi 2018: weights folded with running statistics, output
  // normalized with the batch statistics of the float convolution (a second
  // convolution per layer while training): for the final fine-tune.
  kExact,
};

struct QuantScheme {
  Granularity granularity = Granularity::kPerTensorAffine;
  RangeMethod range = RangeMethod::kMinMax;
  // Folding matters only for per-tensor weights: per-channel symmetric
  // quantization is invariant to the per-channel BN scale.
  BnFold bn_fold = BnFold::kApproximate;
};

// Bit-widths for one layer. abits == 0 keeps the layer's output in float.
struct LayerBits {
  int wbits = 8;
  int abits = 8;
};

// Parses "per-tensor" / "per-channel", "minmax" / "mse", "none" / "approx" /
// "exact".
absl::StatusOr<Granularity> ParseGranularity(absl::string_view s);
absl::StatusOr<RangeMethod> ParseRangeMethod(absl::string_view s);
absl::StatusOr<BnFold> ParseBnFold(absl::string_view s);
std::string GranularityName(Granularity g);
std::string RangeMethodName(RangeMethod r);
std::string BnFoldName(BnFold f);

// Parses a comma-separated bit list such as "8,4,4,8". A single value
// applies to every layer. `allow_float` admits 0 and "f"/"float" (kept in
// float), used for activation bits. `num_layers` is the expected length.
absl::StatusOr<std::vector<int>> ParseBitList(absl::string_view s,
                                              size_t num_layers,
                                              bool allow_float);

// Formats bits as "8,4,4,8" (0 shows as "f").
std::string FormatBitList(const std::vector<int>& bits);

// "8,4,4,8" for weight bits, plus " a:8,4,4,8" when the activation bits
// differ between layers.
std::string FormatBits(const std::vector<LayerBits>& bits);

}  // namespace autoq::qat

#endif  // AUTOQ_QAT_QUANT_CONFIG_H_
