#include "qat/fake_quant.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace autoq::qat {
namespace {

// Smallest scale allowed: an all-zero tensor would otherwise divide by 0.
constexpr float kMinScale = 1e-8f;
// Clipping ratios tried by the MSE range search.
constexpr int kMseSteps = 20;
constexpr float kMseLowestRatio = 0.3f;

// Shape that broadcasts a per-channel vector over a weight of rank `dim`.
std::vector<int64_t> ChannelShape(const at::Tensor& w) {
  std::vector<int64_t> shape(w.dim(), 1);
  shape[0] = w.size(0);
  return shape;
}

QuantParams Broadcastable(QuantParams p, const at::Tensor& w) {
  if (p.per_channel) {
    auto shape = ChannelShape(w);
    p.scale = p.scale.reshape(shape);
    p.zero_point = p.zero_point.reshape(shape);
  }
  return p;
}

QuantParams SymmetricParams(const at::Tensor& amax, int bits) {
  QuantParams p;
  IntegerRange(bits, Granularity::kPerChannelSymmetric, &p.qmin, &p.qmax);
  p.scale = (amax / static_cast<float>(p.qmax)).clamp_min(kMinScale);
  p.zero_point = at::zeros_like(p.scale);
  p.per_channel = true;
  return p;
}

// Squared quantization error of `w` under `p`, summed per channel (or in
// total for per-tensor parameters).
at::Tensor QuantError(const at::Tensor& w, const QuantParams& p) {
  at::Tensor err = (FakeQuantize(w, p).values - w).pow_(2);
  if (!p.per_channel) return err.sum();
  return err.reshape({w.size(0), -1}).sum(1);
}

}  // namespace

void IntegerRange(int bits, Granularity g, int64_t* qmin, int64_t* qmax) {
  if (g == Granularity::kPerChannelSymmetric) {
    *qmax = (int64_t{1} << (bits - 1)) - 1;
    *qmin = -*qmax;
  } else {
    *qmin = 0;
    *qmax = (int64_t{1} << bits) - 1;
  }
}

QuantParams AffineParamsFromRange(const at::Tensor& lo, const at::Tensor& hi,
                                  int bits) {
  QuantParams p;
  IntegerRange(bits, Granularity::kPerTensorAffine, &p.qmin, &p.qmax);
  at::Tensor l = lo.clamp_max(0.0f);
  at::Tensor h = hi.clamp_min(0.0f);
  p.scale = ((h - l) / static_cast<float>(p.qmax - p.qmin)).clamp_min(kMinScale);
  p.zero_point = (static_cast<float>(p.qmin) - l / p.scale)
                     .round_()
                     .clamp_(static_cast<float>(p.qmin),
                             static_cast<float>(p.qmax));
  p.per_channel = lo.dim() > 0;
  return p;
}

HostAffineParams AffineParamsFromRangeHost(float lo, float hi, int bits) {
  HostAffineParams p;
  IntegerRange(bits, Granularity::kPerTensorAffine, &p.qmin, &p.qmax);
  lo = std::min(lo, 0.0f);
  hi = std::max(hi, 0.0f);
  p.scale = std::max((hi - lo) / static_cast<float>(p.qmax - p.qmin), kMinScale);
  float zp = std::nearbyint(static_cast<float>(p.qmin) - lo / p.scale);
  p.zero_point = static_cast<int64_t>(
      std::min(std::max(zp, static_cast<float>(p.qmin)), static_cast<float>(p.qmax)));
  return p;
}

QuantParams ChooseWeightParams(const at::Tensor& w, int bits, Granularity g,
                               RangeMethod range) {
  at::NoGradGuard no_grad;
  at::Tensor wd = w.detach();
  QuantParams best;
  if (g == Granularity::kPerChannelSymmetric) {
    at::Tensor amax = wd.abs().reshape({wd.size(0), -1}).amax(1);
    best = Broadcastable(SymmetricParams(amax, bits), wd);
    if (range == RangeMethod::kMinMax) return best;
    at::Tensor best_err = QuantError(wd, best);
    at::Tensor best_scale = best.scale;
    for (int i = 1; i < kMseSteps; ++i) {
      float ratio = 1.0f - (1.0f - kMseLowestRatio) * i / (kMseSteps - 1);
      QuantParams cand = Broadcastable(SymmetricParams(amax * ratio, bits), wd);
      at::Tensor err = QuantError(wd, cand);
      at::Tensor better = (err < best_err).reshape(ChannelShape(wd));
      best_scale = at::where(better, cand.scale, best_scale);
      best_err = at::minimum(err, best_err);
    }
    best.scale = best_scale;
    return best;
  }
  auto [lo, hi] = at::aminmax(wd);
  best = AffineParamsFromRange(lo, hi, bits);
  if (range == RangeMethod::kMinMax) return best;
  at::Tensor best_err = QuantError(wd, best);
  for (int i = 1; i < kMseSteps; ++i) {
    float ratio = 1.0f - (1.0f - kMseLowestRatio) * i / (kMseSteps - 1);
    QuantParams cand = AffineParamsFromRange(lo * ratio, hi * ratio, bits);
    at::Tensor err = QuantError(wd, cand);
    at::Tensor better = err < best_err;
    best.scale = at::where(better, cand.scale, best.scale);
    best.zero_point = at::where(better, cand.zero_point, best.zero_point);
    best_err = at::minimum(err, best_err);
  }
  return best;
}

FakeQuantOutput FakeQuantize(const at::Tensor& x, const QuantParams& p) {
  at::Tensor q = (x / p.scale).round_().add_(p.zero_point);
  at::Tensor mask = (q >= static_cast<float>(p.qmin)) &
                    (q <= static_cast<float>(p.qmax));
  at::Tensor values = q.clamp_(static_cast<float>(p.qmin),
                               static_cast<float>(p.qmax))
                          .sub_(p.zero_point)
                          .mul_(p.scale);
  return {values, mask};
}

at::Tensor QuantizeToInt(const at::Tensor& x, const QuantParams& p) {
  return (x / p.scale)
      .round_()
      .add_(p.zero_point)
      .clamp_(static_cast<float>(p.qmin), static_cast<float>(p.qmax))
      .to(at::kInt);
}

}  // namespace autoq::qat
