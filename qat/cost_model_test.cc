#include "qat/cost_model.h"

#include <gtest/gtest.h>

namespace autoq::qat {
namespace {

ModelAnalysis TwoLayerModel() {
  ModelAnalysis a;
  LayerInfo conv;
  conv.gene = 0;
  conv.weight_shape = {16, 3, 3, 3};
  conv.num_weights = 432;
  conv.bn_path = "bn";  // folded BN: 16 int32 biases
  conv.macs = 432 * 26 * 26;
  LayerInfo fc;
  fc.gene = 1;
  fc.kind = LayerKind::kLinear;
  fc.weight_shape = {10, 100};
  fc.num_weights = 1000;
  fc.bias_path = "fc.bias";
  fc.macs = 1000;
  LayerInfo masked;
  masked.masked = true;
  masked.num_weights = 5;
  a.layers = {conv, masked, fc};
  return a;
}

TEST(CostModelTest, PerTensorSizeByHand) {
  ModelCost c = ComputeCost(TwoLayerModel(), {{4, 8}, {3, 0}},
                            Granularity::kPerTensorAffine);
  // conv: 432*4/8 = 216 B weights + 16*4 bias + 8 (scale, zp) = 288
  // fc:   ceil(1000*3/8) = 375 B + 10*4 bias + 8 = 423
  ASSERT_EQ(c.layers.size(), 2u);
  EXPECT_EQ(c.layers[0].total_bytes(), 288);
  EXPECT_EQ(c.layers[1].total_bytes(), 423);
  EXPECT_EQ(c.size_bytes, 288 + 423);
  // BOPs: conv 292032 MACs * 4 * 8; fc 1000 * 3 * 32 (float activations).
  EXPECT_EQ(c.layers[0].bops, 292032LL * 4 * 8);
  EXPECT_EQ(c.bops, 292032LL * 4 * 8 + 1000LL * 3 * 32);
}

TEST(CostModelTest, PerChannelHasOneScalePerChannelAndNoZeroPoint) {
  ModelCost c = ComputeCost(TwoLayerModel(), {{8, 8}, {8, 8}},
                            Granularity::kPerChannelSymmetric);
  // conv: 432 + 64 + 16*4 = 560; fc: 1000 + 40 + 10*4 = 1080.
  EXPECT_EQ(c.layers[0].total_bytes(), 560);
  EXPECT_EQ(c.layers[1].total_bytes(), 1080);
  EXPECT_EQ(c.size_bytes, 1640);
}

TEST(CostModelTest, FewerBitsMeanSmaller) {
  ModelAnalysis a = TwoLayerModel();
  int64_t prev = INT64_MAX;
  for (int b = 8; b >= 2; --b) {
    int64_t size =
        ComputeCost(a, {{b, 8}, {b, 8}}, Granularity::kPerTensorAffine).size_bytes;
    EXPECT_LT(size, prev);
    prev = size;
  }
}

}  // namespace
}  // namespace autoq::qat
