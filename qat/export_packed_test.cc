// The phases of the packed export that need no model: bit packing, the
// integer codes of a layer and the payload layout, which must match the
// cost model byte for byte (the manifest promises the reported size).
#include "qat/export_packed.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "qat/cost_model.h"
#include "qat/fake_quant.h"
#include "qat/model_analysis.h"

namespace autoq::qat::export_internal {
namespace {

std::string Bytes(std::vector<int> bytes) {
  std::string out;
  for (int b : bytes) out.push_back(static_cast<char>(b));
  return out;
}

std::string Packed(std::vector<int32_t> codes, int bits) {
  std::string out;
  PackBits(at::tensor(codes, at::kInt), bits, &out);
  return out;
}

TEST(PackBitsTest, LsbFirstAcrossByteBoundaries) {
  // 3-bit codes 1..5: stream bits 0, 4, 6, 7 | 11, 12, 14 are set.
  EXPECT_EQ(Packed({1, 2, 3, 4, 5}, 3), Bytes({0xd1, 0x58}));
  EXPECT_EQ(Packed({255, 0, 7}, 8), Bytes({0xff, 0x00, 0x07}));
  EXPECT_EQ(Packed({}, 5), "");
}

TEST(PackBitsTest, NegativeCodesAreTwosComplement) {
  // 4 bits: -1 = 0xf, 1 = 0x1, -7 = 0x9; the last byte is zero-padded.
  EXPECT_EQ(Packed({-1, 1, -7}, 4), Bytes({0x1f, 0x09}));
  EXPECT_EQ(Packed({-1}, 2), Bytes({0x03}));
}

LayerInfo Layer(int gene, std::vector<int64_t> shape, bool bias, bool bn) {
  LayerInfo l;
  l.graph_index = gene;
  l.gene = gene;
  l.weight_path = "l" + std::to_string(gene) + ".weight";
  if (bias) l.bias_path = "l" + std::to_string(gene) + ".bias";
  if (bn) l.bn_path = "bn" + std::to_string(gene);
  l.weight_shape = shape;
  l.num_weights = 1;
  for (int64_t d : shape) l.num_weights *= d;
  return l;
}

// Each layer's sections, laid out back to back, have the cost model's
// sizes: weights, bias, and scales plus zero points.
void CheckLayoutMatchesCost(Granularity g) {
  SCOPED_TRACE(GranularityName(g));
  at::manual_seed(5);
  ModelAnalysis analysis;
  analysis.layers = {Layer(0, {4, 3, 3, 3}, /*bias=*/true, /*bn=*/false),
                     Layer(1, {10, 7}, /*bias=*/false, /*bn=*/true),
                     Layer(2, {6, 2, 1, 1}, /*bias=*/false, /*bn=*/false),
                     Layer(3, {5, 1, 3, 3}, /*bias=*/true, /*bn=*/true)};
  const std::vector<LayerBits> bits = {{3, 8}, {5, 8}, {2, 0}, {8, 4}};
  const ModelCost cost = ComputeCost(analysis, bits, g);
  ASSERT_EQ(cost.layers.size(), analysis.layers.size());

  std::string payload;
  for (size_t i = 0; i < analysis.layers.size(); ++i) {
    const LayerInfo& info = analysis.layers[i];
    SCOPED_TRACE(info.weight_path);
    const int64_t channels = info.weight_shape[0];
    WeightQuantState w;
    w.bits = bits[i];
    w.master = at::randn(info.weight_shape);
    w.params =
        ChooseWeightParams(w.master, bits[i].wbits, g, RangeMethod::kMinMax);
    LayerBn bn;
    if (!info.bn_path.empty()) {
      bn.s = at::rand({channels}) + 0.5;
      bn.beta = at::randn({channels});
      bn.mean = at::randn({channels});
    }
    const LayerCodes codes = QuantizeLayer(w, bn, g, channels);
    const bool has_bias = !info.bias_path.empty() || !info.bn_path.empty();
    const at::Tensor bias =
        has_bias ? at::randn({channels}, at::kDouble) : at::Tensor();

    const int64_t start = static_cast<int64_t>(payload.size());
    const LayerLayout l =
        AppendLayer(codes, bits[i].wbits, bias, /*input_scale=*/0.05, &payload);
    const LayerCost& c = cost.layers[i];
    EXPECT_EQ(l.weights.offset, start);
    EXPECT_EQ(l.weights.bytes, c.weight_bytes);
    EXPECT_EQ(l.weights.count, info.num_weights);
    EXPECT_EQ(l.bias.has_value(), has_bias);
    const int64_t bias_bytes = l.bias ? l.bias->bytes : 0;
    EXPECT_EQ(bias_bytes, c.bias_bytes);
    if (l.bias) {
      EXPECT_EQ(l.bias->offset, start + l.weights.bytes);
    }
    EXPECT_EQ(l.scales.offset, start + l.weights.bytes + bias_bytes);
    const int64_t zp_bytes = l.zero_points ? l.zero_points->bytes : 0;
    EXPECT_EQ(l.scales.bytes + zp_bytes, c.qparam_bytes);
    EXPECT_EQ(l.bytes, c.total_bytes());
    EXPECT_EQ(static_cast<int64_t>(payload.size()), start + l.bytes);
  }
  EXPECT_EQ(static_cast<int64_t>(payload.size()), cost.size_bytes);
}

TEST(AppendLayerTest, PerTensorLayoutMatchesTheCostModel) {
  CheckLayoutMatchesCost(Granularity::kPerTensorAffine);
}

TEST(AppendLayerTest, PerChannelLayoutMatchesTheCostModel) {
  CheckLayoutMatchesCost(Granularity::kPerChannelSymmetric);
}

int32_t Int32At(const std::string& payload, int64_t offset) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) {
    v |= static_cast<uint32_t>(static_cast<unsigned char>(payload[offset + i]))
         << (8 * i);
  }
  return static_cast<int32_t>(v);
}

TEST(AppendLayerTest, BiasIsQuantizedWithScaleTimesInputScale) {
  LayerCodes codes;
  codes.codes = at::zeros({3, 1}, at::kInt);
  codes.scales = at::tensor({0.5f, 0.0f, 2.0f});
  codes.per_channel = true;
  const at::Tensor bias = at::tensor({1.0, 0.0, -2.6}, at::kDouble);
  std::string payload;
  const LayerLayout l = AppendLayer(codes, 2, bias, 0.25, &payload);
  ASSERT_TRUE(l.bias.has_value());
  EXPECT_EQ(l.bias->count, 3);
  EXPECT_EQ(Int32At(payload, l.bias->offset), 8);       // 1 / (0.5 * 0.25)
  EXPECT_EQ(Int32At(payload, l.bias->offset + 4), 0);   // 0 / 0
  EXPECT_EQ(Int32At(payload, l.bias->offset + 8), -5);  // -2.6 / 0.5
  EXPECT_FALSE(l.zero_points.has_value());
}

TEST(QuantizeLayerTest, PerChannelFoldFlipsCodesOfNegativeScales) {
  at::manual_seed(9);
  WeightQuantState w;
  w.bits = {4, 8};
  w.master = at::randn({2, 3});
  w.params = ChooseWeightParams(w.master, 4, Granularity::kPerChannelSymmetric,
                                RangeMethod::kMinMax);
  LayerBn bn;
  bn.s = at::tensor({2.0f, -0.5f});
  bn.beta = at::zeros({2});
  bn.mean = at::zeros({2});
  const LayerCodes folded =
      QuantizeLayer(w, bn, Granularity::kPerChannelSymmetric, 2);
  const LayerCodes plain =
      QuantizeLayer(w, LayerBn{}, Granularity::kPerChannelSymmetric, 2);
  EXPECT_TRUE(folded.folded);
  EXPECT_FALSE(plain.folded);
  EXPECT_FALSE(folded.zero_points.defined());
  EXPECT_TRUE(at::equal(folded.codes[0], plain.codes[0]));
  EXPECT_TRUE(at::equal(folded.codes[1], -plain.codes[1]));
  EXPECT_TRUE(at::allclose(folded.scales, plain.scales * bn.s.abs()));
  // Codes times scales are the fake-quantized weights times s.
  const at::Tensor deq =
      folded.codes.to(at::kFloat) * folded.scales.reshape({2, 1});
  const at::Tensor want =
      FakeQuantize(w.master, w.params).values * bn.s.reshape({2, 1});
  EXPECT_TRUE(at::allclose(deq, want, 1e-5, 1e-6));
}

TEST(QuantizeLayerTest, PerTensorFoldsOnlyAsTrained) {
  at::manual_seed(10);
  WeightQuantState w;
  w.bits = {6, 8};
  w.master = at::randn({3, 2});
  w.params = ChooseWeightParams(w.master, 6, Granularity::kPerTensorAffine,
                                RangeMethod::kMinMax);
  LayerBn bn;
  bn.s = at::tensor({1.5f, 0.5f, 1.0f});
  bn.beta = at::zeros({3});
  bn.mean = at::zeros({3});
  w.bn_folded = false;
  const LayerCodes unfolded =
      QuantizeLayer(w, bn, Granularity::kPerTensorAffine, 3);
  EXPECT_FALSE(unfolded.folded);
  EXPECT_TRUE(at::equal(unfolded.codes, QuantizeToInt(w.master, w.params)));
  EXPECT_EQ(unfolded.scales.numel(), 1);
  EXPECT_EQ(unfolded.zero_points.numel(), 1);
  w.bn_folded = true;
  const LayerCodes folded =
      QuantizeLayer(w, bn, Granularity::kPerTensorAffine, 3);
  EXPECT_TRUE(folded.folded);
  EXPECT_TRUE(at::equal(
      folded.codes, QuantizeToInt(w.master * bn.s.reshape({3, 1}), w.params)));
}

}  // namespace
}  // namespace autoq::qat::export_internal
