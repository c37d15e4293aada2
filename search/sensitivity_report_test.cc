#include "search/sensitivity_report.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "qat/cost_model.h"
#include "search/test_fakes.h"

namespace autoq::search {
namespace {

qat::SensitivityTable Table(int genes) {
  qat::SensitivityTable t;
  t.min_bits = 2;
  t.max_bits = 8;
  t.reference_loss = 0.5;
  t.reference_top1 = 90;
  t.images = 64;
  for (int g = 0; g < genes; ++g) {
    t.layers.push_back(g == 0 ? "features.0 <conv> & \"stem\"" : "layer");
    t.loss.emplace_back();
    t.top1.emplace_back();
    for (int b = 2; b <= 8; ++b) {
      t.loss.back().push_back(0.5 + (8 - b) * 0.01 * (g + 1));
      t.top1.back().push_back(90 - (8 - b));
    }
  }
  return t;
}

TEST(SensitivityReportTest, ChoicesAreTheCostModelsLayerSizes) {
  const qat::ModelAnalysis analysis = testing::FakeAnalysis(4);
  const qat::SensitivityTable t = Table(4);
  const std::vector<LayerChoices> choices = ChoicesFromSensitivity(
      analysis, t, qat::Granularity::kPerChannelSymmetric, 8);
  ASSERT_EQ(choices.size(), 4u);
  for (int b = 2; b <= 8; ++b) {
    const qat::ModelCost cost =
        qat::ComputeCost(analysis, std::vector<qat::LayerBits>(4, {b, 8}),
                         qat::Granularity::kPerChannelSymmetric);
    for (size_t i = 0; i < 4; ++i) {
      EXPECT_EQ(choices[i].bits[static_cast<size_t>(b - 2)], b);
      EXPECT_EQ(choices[i].size_bytes[static_cast<size_t>(b - 2)],
                cost.layers[i].total_bytes());
      EXPECT_DOUBLE_EQ(choices[i].penalty[static_cast<size_t>(b - 2)],
                       t.Penalty(i, b));
    }
  }
}

TEST(SensitivityReportTest, JsonTableAndSvgCarryEveryLayer) {
  const qat::SensitivityTable t = Table(3);
  const nlohmann::json j = nlohmann::json::parse(RenderSensitivityJson(t));
  EXPECT_EQ(j["min_bits"], 2);
  EXPECT_EQ(j["images"], 64);
  ASSERT_EQ(j["layers"].size(), 3u);
  EXPECT_EQ(j["layers"][0]["name"], t.layers[0]);
  ASSERT_EQ(j["layers"][2]["bits"].size(), 7u);
  EXPECT_NEAR(j["layers"][2]["bits"][0]["loss_increase"].get<double>(), 0.18,
              1e-12);
  EXPECT_DOUBLE_EQ(j["layers"][2]["bits"][6]["loss_increase"].get<double>(), 0);

  const std::string text = FormatSensitivityTable(t);
  EXPECT_NE(text.find("dloss@2"), std::string::npos);
  EXPECT_NE(text.find("0.1800"), std::string::npos);

  const std::string svg = RenderSensitivitySvg(t);
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  // Names are escaped, never raw markup.
  EXPECT_NE(svg.find("&lt;conv&gt; &amp; &quot;stem&quot;"), std::string::npos);
  EXPECT_EQ(svg.find("<conv>"), std::string::npos);
}

}  // namespace
}  // namespace autoq::search
