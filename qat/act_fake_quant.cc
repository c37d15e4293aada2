#include "qat/act_fake_quant.h"

#include "qat/site_op.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <limits>
#include <vector>

namespace autoq::qat {
namespace {

constexpr int64_t kGrain = 32768;

// Round half to even without a libm call, so the loop vectorizes with SSE2:
// adding and subtracting 1.5 * 2^23 leaves the nearest integer for
// |v| < 2^22 under the default rounding mode. Callers clamp v first. (The
// project is never built with -ffast-math, which would fold this away.)
inline float RoundHalfEven(float v) {
  constexpr float kMagic = 12582912.0f;
  return (v + kMagic) - kMagic;
}

// Finite sentinels: this file is compiled with -ffinite-math-only.
constexpr float kFloatMax = std::numeric_limits<float>::max();

struct MinMax {
  float lo = kFloatMax;
  float hi = -kFloatMax;
};

// The kernels below are written so GCC vectorizes them: branch-free
// selects and min/max reductions (this file is built with finite math, see
// qat/CMakeLists.txt), cloned for AVX2 with a portable fallback chosen at
// load time.
#define AUTOQ_VECTOR_CLONES __attribute__((target_clones("avx2", "default")))

// Min/max of x[0, n).
AUTOQ_VECTOR_CLONES
MinMax Range(const float* x, int64_t n) {
  float lo = kFloatMax;
  float hi = -kFloatMax;
  for (int64_t i = 0; i < n; ++i) {
    lo = x[i] < lo ? x[i] : lo;
    hi = x[i] > hi ? x[i] : hi;
  }
  return {lo, hi};
}

// y = fq(clamp(x, a, b)), mask = gradient passes (strictly inside [a, b]
// and inside the quantization range), over [0, n); the range of clamp(x)
// is accumulated into *range.
AUTOQ_VECTOR_CLONES
void FakeQuantKernel(const float* x, float* y, uint8_t* mask, int64_t n,
                     float scale, float inv_scale, float lo_q, float hi_q,
                     float a, float b, MinMax* range) {
  float lo = range->lo, hi = range->hi;
  for (int64_t i = 0; i < n; ++i) {
    const float xi = x[i];
    const uint8_t act_pass = static_cast<uint8_t>((xi > a) & (xi < b));
    float xc = xi < a ? a : xi;
    xc = xc > b ? b : xc;
    lo = xc < lo ? xc : lo;
    hi = xc > hi ? xc : hi;
    float v = xc * inv_scale;
    // Clamp one step beyond the range so the rounding trick stays exact and
    // out-of-range values still test as out of range.
    v = v < lo_q - 1.0f ? lo_q - 1.0f : v;
    v = v > hi_q + 1.0f ? hi_q + 1.0f : v;
    float r = RoundHalfEven(v);
    mask[i] = static_cast<uint8_t>((r >= lo_q) & (r <= hi_q)) & act_pass;
    float c = r < lo_q ? lo_q : r;
    c = c > hi_q ? hi_q : c;
    y[i] = c * scale;
  }
  range->lo = lo;
  range->hi = hi;
}

AUTOQ_VECTOR_CLONES
void MaskKernel(const float* g, const uint8_t* mask, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = mask[i] ? g[i] : 0.0f;
}

MinMax Combine(const std::vector<MinMax>& partial) {
  MinMax total;
  for (const MinMax& p : partial) {
    total.lo = std::min(total.lo, p.lo);
    total.hi = std::max(total.hi, p.hi);
  }
  return total;
}

class ActFakeQuantFn : public torch::autograd::Function<ActFakeQuantFn> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx,
                            const at::Tensor& x, double scale, int64_t zp,
                            int64_t qmin, int64_t qmax, double clamp_lo,
                            double clamp_hi, MinMax* range) {
    const bool want_range = range != nullptr;
    const float a = static_cast<float>(clamp_lo);
    const float b = static_cast<float>(clamp_hi);
    at::Tensor y = at::empty_like(x);
    at::Tensor mask = at::empty_like(x, x.options().dtype(at::kByte));
    const float* xp = x.data_ptr<float>();
    float* yp = y.data_ptr<float>();
    uint8_t* mp = mask.data_ptr<uint8_t>();
    const float s = static_cast<float>(scale);
    const float inv = 1.0f / s;
    const float lo_q = static_cast<float>(qmin - zp);
    const float hi_q = static_cast<float>(qmax - zp);
    std::vector<MinMax> partial(static_cast<size_t>(at::get_num_threads()));
    at::parallel_for(0, x.numel(), kGrain, [&](int64_t begin, int64_t end) {
      MinMax& p = partial[static_cast<size_t>(at::get_thread_num())];
      FakeQuantKernel(xp + begin, yp + begin, mp + begin, end - begin, s, inv,
                      lo_q, hi_q, a, b, &p);
    });
    ctx->save_for_backward({mask});
    if (want_range) *range = Combine(partial);
    return y;
  }

  static torch::autograd::variable_list backward(
      torch::autograd::AutogradContext* ctx,
      torch::autograd::variable_list grads) {
    at::Tensor mask = ctx->get_saved_variables()[0];
    at::Tensor g = grads[0];
    at::Tensor out;
    if (g.strides() == mask.strides() && g.is_non_overlapping_and_dense()) {
      out = at::empty_like(g);
      const float* gp = g.data_ptr<float>();
      const uint8_t* mp = mask.data_ptr<uint8_t>();
      float* op = out.data_ptr<float>();
      at::parallel_for(0, g.numel(), kGrain, [&](int64_t begin, int64_t end) {
        MaskKernel(gp + begin, mp + begin, op + begin, end - begin);
      });
    } else {
      out = g * mask;
    }
    return {out,          at::Tensor(), at::Tensor(), at::Tensor(),
            at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor ActFakeQuantCpu(const at::Tensor& x_in, const ActQuantArgs& args,
                           float* lo, float* hi) {
  // The flat loops need one dense block; channels-last counts as dense.
  at::Tensor x = x_in.is_non_overlapping_and_dense()
                     ? x_in
                     : x_in.contiguous(x_in.suggest_memory_format());
  if (!args.quantize) {
    if (args.clamp) {
      at::Tensor c = SiteHook::ClampActivation(x, args.clamp_lo, args.clamp_hi);
      ActQuantArgs plain = args;
      plain.clamp = false;
      return ActFakeQuantCpu(c, plain, lo, hi);
    }
    if (lo != nullptr || hi != nullptr) {
      at::NoGradGuard no_grad;
      const float* xp = x.data_ptr<float>();
      std::vector<MinMax> partial(static_cast<size_t>(at::get_num_threads()));
      at::parallel_for(0, x.numel(), kGrain, [&](int64_t begin, int64_t end) {
        MinMax m = Range(xp + begin, end - begin);
        MinMax& p = partial[static_cast<size_t>(at::get_thread_num())];
        p.lo = std::min(p.lo, m.lo);
        p.hi = std::max(p.hi, m.hi);
      });
      MinMax total = Combine(partial);
      if (lo != nullptr) *lo = total.lo;
      if (hi != nullptr) *hi = total.hi;
    }
    return x_in;
  }
  MinMax range;
  const bool want_range = lo != nullptr || hi != nullptr;
  const double a = args.clamp ? args.clamp_lo : -kFloatMax;
  const double b = args.clamp ? args.clamp_hi : kFloatMax;
  at::Tensor y = ActFakeQuantFn::apply(x, static_cast<double>(args.scale),
                                       args.zero_point, args.qmin, args.qmax,
                                       a, b, want_range ? &range : nullptr);
  if (lo != nullptr) *lo = range.lo;
  if (hi != nullptr) *hi = range.hi;
  return y;
}

}  // namespace autoq::qat
