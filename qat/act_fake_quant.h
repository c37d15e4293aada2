// Fused per-tensor activation fake-quantization for the CPU hot path.
//
// One pass over the activation computes the fake-quantized output, the
// straight-through mask and the tensor's min/max (for the EMA range), where
// ATen needs a separate aminmax pass and, in Debian's build, runs its
// fake-quant kernel element by element (about 5x slower than this one).
// Differentiable: the gradient is passed where the value was not clamped.
// Other devices use ATen's fake_quantize_per_tensor_affine.
//
// Thread-safety: stateless; parallelizes over LibTorch's intra-op pool.
#ifndef AUTOQ_QAT_ACT_FAKE_QUANT_H_
#define AUTOQ_QAT_ACT_FAKE_QUANT_H_

#include <cstdint>

#include <ATen/core/Tensor.h>

namespace autoq::qat {

struct ActQuantArgs {
  float scale = 1.0f;
  int64_t zero_point = 0;
  int64_t qmin = 0;
  int64_t qmax = 255;
  bool quantize = true;  // false: identity, min/max only
  // The activation fused in front: x is first clamped to [clamp_lo,
  // clamp_hi] (ReLU: [0, max]; ReLU6: [0, 6]) with its gradient passed
  // strictly inside, as ATen's relu/hardtanh do.
  bool clamp = false;
  float clamp_lo = 0.0f;
  float clamp_hi = 0.0f;
};

// Returns fq(act(x)) (or act(x) when !args.quantize; act is the optional
// clamp) and stores the min and max of act(x) in *lo, *hi when they are
// non-null. `x` must be a float32 CPU tensor.
at::Tensor ActFakeQuantCpu(const at::Tensor& x, const ActQuantArgs& args,
                           float* lo, float* hi);

}  // namespace autoq::qat

#endif  // AUTOQ_QAT_ACT_FAKE_QUANT_H_
