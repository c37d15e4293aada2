#include "qat/act_fake_quant.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "qat/fake_quant.h"

namespace autoq::qat {
namespace {

// The fused kernel agrees with the unfused reference: ATen's clamp, then
// the tensor fake-quant of fake_quant.h, and ATen's gradient masks.
void ExpectMatchesReference(bool clamp, float a, float b,
                            at::MemoryFormat format) {
  at::manual_seed(9);
  at::Tensor x = (at::randn({4, 8, 9, 9}) * 3)
                     .contiguous(format)
                     .set_requires_grad(true);
  HostAffineParams hp = AffineParamsFromRangeHost(-2.0f, 5.0f, 4);
  ActQuantArgs args;
  args.scale = hp.scale;
  args.zero_point = hp.zero_point;
  args.qmin = hp.qmin;
  args.qmax = hp.qmax;
  args.clamp = clamp;
  args.clamp_lo = a;
  args.clamp_hi = b;
  float lo = 0, hi = 0;
  at::Tensor y = ActFakeQuantCpu(x, args, &lo, &hi);
  at::Tensor g = at::randn(x.sizes());
  y.backward(g);

  at::Tensor xr = x.detach().clone().set_requires_grad(true);
  at::Tensor act = clamp ? at::clamp(xr, a, b) : xr * 1;
  QuantParams p = AffineParamsFromRange(at::tensor(-2.0f), at::tensor(5.0f), 4);
  FakeQuantOutput ref = FakeQuantize(act.detach(), p);
  EXPECT_TRUE(at::allclose(y, ref.values, 0, 1e-6));
  EXPECT_FLOAT_EQ(lo, act.min().item<float>());
  EXPECT_FLOAT_EQ(hi, act.max().item<float>());
  // Gradient: the activation's own mask times the quantization STE mask.
  at::Tensor act_mask = clamp ? (xr.detach() > a) & (xr.detach() < b)
                              : at::ones_like(xr, at::kBool);
  at::Tensor want = g * (act_mask & ref.mask);
  EXPECT_TRUE(at::allclose(x.grad(), want, 0, 0));
  EXPECT_GT((~ref.mask).sum().item<int64_t>(), 0);  // some were clamped
}

TEST(ActFakeQuantTest, PlainMatchesReference) {
  ExpectMatchesReference(false, 0, 0, at::MemoryFormat::Contiguous);
}

TEST(ActFakeQuantTest, FusedReluMatchesReference) {
  ExpectMatchesReference(true, 0.0f, 3.4e38f, at::MemoryFormat::Contiguous);
}

TEST(ActFakeQuantTest, FusedRelu6ChannelsLastMatchesReference) {
  ExpectMatchesReference(true, 0.0f, 6.0f, at::MemoryFormat::ChannelsLast);
}

TEST(ActFakeQuantTest, ObserveOnlyAppliesTheClampAndMeasuresRange) {
  at::Tensor x = at::tensor({-3.0f, -1.0f, 2.0f, 7.0f});
  ActQuantArgs args;
  args.quantize = false;
  args.clamp = true;
  args.clamp_lo = 0.0f;
  args.clamp_hi = 6.0f;
  float lo = 0, hi = 0;
  at::Tensor y = ActFakeQuantCpu(x, args, &lo, &hi);
  EXPECT_TRUE(y.equal(at::tensor({0.0f, 0.0f, 2.0f, 6.0f})));
  EXPECT_EQ(lo, 0.0f);
  EXPECT_EQ(hi, 6.0f);
}

}  // namespace
}  // namespace autoq::qat
