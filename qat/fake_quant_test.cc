#include "qat/fake_quant.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

namespace autoq::qat {
namespace {

TEST(FakeQuantTest, PerTensorAffineKeepsZeroExactAndStaysOnGrid) {
  at::manual_seed(0);
  at::Tensor w = at::randn({16, 8, 3, 3}) + 0.3;
  for (int bits = 2; bits <= 8; ++bits) {
    QuantParams p = ChooseWeightParams(w, bits, Granularity::kPerTensorAffine,
                                       RangeMethod::kMinMax);
    EXPECT_EQ(p.qmin, 0);
    EXPECT_EQ(p.qmax, (1 << bits) - 1);
    // Zero maps to an integer code, hence exactly back to zero.
    FakeQuantOutput z = FakeQuantize(at::zeros({1}), p);
    EXPECT_EQ(z.values.item<float>(), 0.0f) << bits;
    FakeQuantOutput fq = FakeQuantize(w, p);
    float scale = p.scale.item<float>();
    // Min-max range: nothing is clamped, error at most half a step.
    EXPECT_TRUE(fq.mask.all().item<bool>());
    EXPECT_LE((fq.values - w).abs().max().item<float>(), scale / 2 + 1e-6);
    at::Tensor codes = QuantizeToInt(w, p);
    EXPECT_GE(codes.min().item<int>(), 0);
    EXPECT_LE(codes.max().item<int>(), (1 << bits) - 1);
    // At most 2^bits distinct values.
    EXPECT_LE(std::get<0>(at::_unique(fq.values)).numel(), 1 << bits);
  }
}

TEST(FakeQuantTest, HandComputedFourBitAffine) {
  at::Tensor w = at::tensor({-1.0f, 0.0f, 0.6f, 2.0f});
  QuantParams p = ChooseWeightParams(w, 4, Granularity::kPerTensorAffine,
                                     RangeMethod::kMinMax);
  // scale = 3 / 15 = 0.2, zero point = round(1 / 0.2) = 5.
  EXPECT_NEAR(p.scale.item<float>(), 0.2f, 1e-7);
  EXPECT_EQ(p.zero_point.item<float>(), 5.0f);
  at::Tensor codes = QuantizeToInt(w, p);
  EXPECT_TRUE(codes.equal(at::tensor({0, 5, 8, 15}, at::kInt)));
  at::Tensor v = FakeQuantize(w, p).values;
  EXPECT_TRUE(at::allclose(v, at::tensor({-1.0f, 0.0f, 0.6f, 2.0f}), 1e-6, 1e-6));
}

TEST(FakeQuantTest, PerChannelSymmetricNarrowRange) {
  at::Tensor w = at::tensor({1.0f, -0.5f, 0.25f, -3.0f, 3.0f, 1.5f}).reshape({2, 3});
  QuantParams p = ChooseWeightParams(w, 3, Granularity::kPerChannelSymmetric,
                                     RangeMethod::kMinMax);
  EXPECT_EQ(p.qmin, -3);
  EXPECT_EQ(p.qmax, 3);
  EXPECT_TRUE(p.per_channel);
  // Channel scales max|w| / 3: 1/3 and 1.
  EXPECT_NEAR(p.scale[0].item<float>(), 1.0f / 3, 1e-6);
  EXPECT_NEAR(p.scale[1].item<float>(), 1.0f, 1e-6);
  EXPECT_EQ(p.zero_point.abs().sum().item<float>(), 0.0f);
  at::Tensor codes = QuantizeToInt(w, p);
  EXPECT_TRUE(codes.equal(at::tensor({3, -2, 1, -3, 3, 2}, at::kInt).reshape({2, 3})));
  // Two bits is ternary: codes in {-1, 0, 1}.
  QuantParams p2 = ChooseWeightParams(w, 2, Granularity::kPerChannelSymmetric,
                                      RangeMethod::kMinMax);
  EXPECT_EQ(p2.qmax, 1);
  EXPECT_LE(QuantizeToInt(w, p2).abs().max().item<int>(), 1);
}

TEST(FakeQuantTest, MseRangeNeverWorseThanMinMaxAndClipsOutliers) {
  at::manual_seed(1);
  at::Tensor w = at::randn({8, 512});
  w[0][0] = 6.0f;  // an outlier that min-max would waste the range on
  for (Granularity g : {Granularity::kPerTensorAffine,
                        Granularity::kPerChannelSymmetric}) {
    for (int bits : {2, 4}) {
      QuantParams mm = ChooseWeightParams(w, bits, g, RangeMethod::kMinMax);
      QuantParams mse = ChooseWeightParams(w, bits, g, RangeMethod::kMse);
      FakeQuantOutput a = FakeQuantize(w, mm);
      FakeQuantOutput b = FakeQuantize(w, mse);
      double err_mm = (a.values - w).pow(2).sum().item<double>();
      double err_mse = (b.values - w).pow(2).sum().item<double>();
      EXPECT_LE(err_mse, err_mm + 1e-9);
      // At 4 bits clipping the outlier pays: it is clamped, and its STE
      // mask is false.
      if (bits == 4) {
        EXPECT_FALSE(b.mask[0][0].item<bool>());
      }
    }
  }
}

TEST(FakeQuantTest, AllZeroTensorDoesNotDivideByZero) {
  at::Tensor w = at::zeros({4, 4});
  for (Granularity g : {Granularity::kPerTensorAffine,
                        Granularity::kPerChannelSymmetric}) {
    QuantParams p = ChooseWeightParams(w, 4, g, RangeMethod::kMse);
    at::Tensor v = FakeQuantize(w, p).values;
    EXPECT_TRUE(v.isfinite().all().item<bool>());
    EXPECT_EQ(v.abs().sum().item<float>(), 0.0f);
  }
}

TEST(FakeQuantTest, AffineParamsFromRangeIncludeZero) {
  QuantParams p = AffineParamsFromRange(at::tensor(0.5f), at::tensor(2.0f), 8);
  // The range widens to [0, 2]: zero point 0.
  EXPECT_EQ(p.zero_point.item<float>(), 0.0f);
  EXPECT_NEAR(p.scale.item<float>(), 2.0f / 255, 1e-7);
}

}  // namespace
}  // namespace autoq::qat
