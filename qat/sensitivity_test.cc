#include "qat/sensitivity.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>

#include "qat/builtin_model.h"
#include "qat/model_analysis.h"
#include "qat/test_models.h"

namespace autoq::qat {
namespace {

class SensitivityTest : public ::testing::Test {
 protected:
  SensitivityTest() : module_(MakeBuiltinModel({})) {
    at::manual_seed(5);
    analysis_ = *AnalyzeModel(module_, {1, 28, 28});
    test_util::RandomizeBatchNorms(module_, analysis_);
    data_ = test_util::RandomData({1, 28, 28}, 96, 10);
  }

  torch::jit::Module module_;
  ModelAnalysis analysis_;
  TensorDataset data_;
};

TEST_F(SensitivityTest, OneProbePerLayerAndWidthAgainstTheReference) {
  QuantScheme scheme;
  scheme.granularity = Granularity::kPerChannelSymmetric;
  SensitivityOptions o;
  o.batch_size = 40;  // uneven: the last batch is partial
  int64_t last_done = 0, last_total = 0;
  o.progress = [&](int64_t done, int64_t total) {
    EXPECT_EQ(done, last_done + 1);
    last_done = done;
    last_total = total;
  };
  absl::StatusOr<SensitivityTable> t =
      MeasureSensitivity(module_, analysis_, data_, scheme, o);
  ASSERT_TRUE(t.ok()) << t.status();
  const size_t genes = static_cast<size_t>(analysis_.num_genes());
  ASSERT_EQ(t->layers.size(), genes);
  ASSERT_EQ(t->loss.size(), genes);
  EXPECT_EQ(t->images, 96);
  EXPECT_EQ(last_total, static_cast<int64_t>(genes) * 6);
  EXPECT_EQ(last_done, last_total);
  double deviation2 = 0, deviation7 = 0;
  for (size_t g = 0; g < genes; ++g) {
    ASSERT_EQ(t->loss[g].size(), 7u);
    EXPECT_DOUBLE_EQ(t->loss[g][6], t->reference_loss);
    EXPECT_EQ(t->Penalty(g, 8), 0);
    for (int b = 2; b <= 8; ++b) {
      EXPECT_GE(t->Penalty(g, b), 0);
      if (b < 8) {
        EXPECT_GE(t->Penalty(g, b), t->Penalty(g, b + 1));
      }
      EXPECT_GE(t->Penalty(g, b) + 1e-12,
                t->loss[g][b - 2] - t->reference_loss);
      EXPECT_TRUE(std::isfinite(t->loss[g][b - 2]));
      EXPECT_GE(t->top1[g][b - 2], 0);
      EXPECT_LE(t->top1[g][b - 2], 100);
    }
    deviation2 += std::abs(t->loss[g][0] - t->reference_loss);
    deviation7 += std::abs(t->loss[g][5] - t->reference_loss);
  }
  // Two-bit weights disturb the model far more than seven-bit ones.
  EXPECT_GT(deviation2, 4 * deviation7);
  EXPECT_EQ(t->Penalty(0, 1), 0);  // outside the measured widths
}

TEST_F(SensitivityTest, NarrowRangeAndCancellation) {
  SensitivityOptions o;
  o.min_bits = 4;
  o.max_bits = 6;
  absl::StatusOr<SensitivityTable> t =
      MeasureSensitivity(module_, analysis_, data_, QuantScheme{}, o);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->min_bits, 4);
  EXPECT_EQ(t->max_bits, 6);
  EXPECT_EQ(t->loss[0].size(), 3u);

  std::atomic<bool> cancel{true};
  o.cancel = &cancel;
  absl::StatusOr<SensitivityTable> cancelled =
      MeasureSensitivity(module_, analysis_, data_, QuantScheme{}, o);
  EXPECT_EQ(cancelled.status().code(), absl::StatusCode::kCancelled);

  TensorDataset empty = data_;
  empty.images = data_.images.slice(0, 0, 0);
  empty.labels = data_.labels.slice(0, 0, 0);
  EXPECT_EQ(MeasureSensitivity(module_, analysis_, empty, QuantScheme{}, {})
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

// The penalty never falls as bits fall: a noisy dip below a higher
// width's loss counts as that width's.
TEST(SensitivityTableTest, PenaltyIsMonotoneInBits) {
  SensitivityTable t;
  t.min_bits = 2;
  t.max_bits = 5;
  t.reference_loss = 1.0;
  t.layers = {"a"};
  t.loss = {{1.5, 0.98, 1.004, 1.0}};  // 2, 3, 4, 5 bits
  t.top1 = {{0, 0, 0, 0}};
  EXPECT_DOUBLE_EQ(t.Penalty(0, 5), 0);
  EXPECT_NEAR(t.Penalty(0, 4), 0.004, 1e-12);
  EXPECT_NEAR(t.Penalty(0, 3), 0.004, 1e-12);  // 0.98 is noise
  EXPECT_NEAR(t.Penalty(0, 2), 0.5, 1e-12);
  EXPECT_EQ(t.Penalty(0, 6), 0);
  EXPECT_EQ(t.Penalty(1, 2), 0);
}

}  // namespace
}  // namespace autoq::qat
