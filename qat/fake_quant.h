// Fake-quantization math for weights and activations.
//
// All functions are pure tensor computations on the tensor's device; none
// reads a value back to the host, so they never synchronize a GPU stream.
// Thread-safety: stateless; safe from any thread.
#ifndef AUTOQ_QAT_FAKE_QUANT_H_
#define AUTOQ_QAT_FAKE_QUANT_H_

#include <ATen/core/Tensor.h>

#include "qat/quant_config.h"

namespace autoq::qat {

// Quantization parameters of one tensor. For per-tensor quantization scale
// and zero_point are 0-dim; for per-channel they have one entry per output
// channel (dim 0 of the weight).
struct QuantParams {
  at::Tensor scale;       // float32
  at::Tensor zero_point;  // float32 holding integers (exact for |zp| < 2^24)
  int64_t qmin = 0;
  int64_t qmax = 255;
  bool per_channel = false;
};

// Integer range for `bits` under `g`: [0, 2^b-1] for affine, the narrow
// symmetric [-(2^(b-1)-1), 2^(b-1)-1] for per-channel.
void IntegerRange(int bits, Granularity g, int64_t* qmin, int64_t* qmax);

// Affine parameters covering [lo, hi] (0-dim or per-channel tensors). The
// range is widened to contain 0 so that zero is exactly representable.
QuantParams AffineParamsFromRange(const at::Tensor& lo, const at::Tensor& hi,
                                  int bits);

// Host-side twin of AffineParamsFromRange for one tensor's [lo, hi]; the
// two agree exactly (same float32 arithmetic).
struct HostAffineParams {
  float scale = 1.0f;
  int64_t zero_point = 0;
  int64_t qmin = 0;
  int64_t qmax = 255;
};
HostAffineParams AffineParamsFromRangeHost(float lo, float hi, int bits);

// Chooses weight parameters for `w` (dim 0 = output channels).
QuantParams ChooseWeightParams(const at::Tensor& w, int bits, Granularity g,
                               RangeMethod range);

// Fake-quantized values of `x` and the straight-through-estimator mask:
// true where x lies inside the clamp range (gradient passes), false where
// it was clamped (gradient is zero).
struct FakeQuantOutput {
  at::Tensor values;
  at::Tensor mask;
};
FakeQuantOutput FakeQuantize(const at::Tensor& x, const QuantParams& p);

// The integer codes round(x/scale)+zp clamped to [qmin, qmax], as int32.
at::Tensor QuantizeToInt(const at::Tensor& x, const QuantParams& p);

}  // namespace autoq::qat

#endif  // AUTOQ_QAT_FAKE_QUANT_H_
