#include "evaluator/metrics.h"

#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace autoq::evaluator {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// absl::Status::message() is Debian Abseil's own string_view, which gMock
// prints character by character; a std::string reads better in failures.
std::string Msg(const absl::Status& s) { return std::string(s.message()); }

at::Tensor Logits(const std::vector<std::vector<float>>& rows) {
  const auto n = static_cast<int64_t>(rows.size());
  const auto c = static_cast<int64_t>(rows[0].size());
  at::Tensor t = at::empty({n, c}, at::TensorOptions().dtype(at::kFloat));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < c; ++j) t[i][j] = rows[i][j];
  }
  return t;
}

at::Tensor Labels(const std::vector<int64_t>& l) {
  return at::tensor(l, at::TensorOptions().dtype(at::kLong));
}

// Hand-computed case, 6 classes (so top-5 is a real top-5):
//   s0 label 1, logit 0.9 is the max                 -> top1 yes, top5 yes
//   s1 label 1, logit 0.1 is the min of 6            -> rank 5, top5 no
//   s2 label 0, only 0.6 is higher                   -> rank 1, top5 yes
//   s3 label 2, all logits tie; classes 0, 1 win     -> rank 2, top5 yes
//   s4 label 0, all logits tie; class 0 wins (argmax) -> top1 yes
// top1 = 2/5 = 40%, top5 = 4/5 = 80%; class 0: 1/2, class 1: 1/2,
// class 2: 0/1, classes 3..5: no samples.
at::Tensor HandLogits() {
  return Logits({{0.1f, 0.9f, 0.0f, 0.0f, 0.0f, 0.0f},
                 {0.5f, 0.1f, 0.2f, 0.3f, 0.4f, 0.6f},
                 {0.5f, 0.1f, 0.2f, 0.3f, 0.4f, 0.6f},
                 {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f},
                 {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f}});
}
const std::vector<int64_t> kHandLabels = {1, 1, 0, 2, 0};

TEST(MetricsAccumulatorTest, HandComputedValues) {
  MetricsAccumulator acc(6);
  acc.Add(HandLogits(), Labels(kHandLabels));
  ASSERT_TRUE(acc.status().ok()) << acc.status();
  const ClassificationMetrics m = acc.Result();
  EXPECT_EQ(m.count, 5);
  EXPECT_DOUBLE_EQ(m.top1, 40.0);
  EXPECT_DOUBLE_EQ(m.top5, 80.0);
  EXPECT_THAT(m.per_class_count, ElementsAre(2, 2, 1, 0, 0, 0));
  EXPECT_THAT(m.per_class_top1, ElementsAre(50.0, 50.0, 0.0, 0.0, 0.0, 0.0));
}

TEST(MetricsAccumulatorTest, BatchesAccumulate) {
  MetricsAccumulator acc(6);
  const at::Tensor logits = HandLogits();
  const at::Tensor labels = Labels(kHandLabels);
  acc.Add(logits.slice(0, 0, 2), labels.slice(0, 0, 2));
  acc.Add(logits.slice(0, 2, 5), labels.slice(0, 2, 5));
  const ClassificationMetrics m = acc.Result();
  EXPECT_EQ(m.count, 5);
  EXPECT_DOUBLE_EQ(m.top1, 40.0);
  EXPECT_DOUBLE_EQ(m.top5, 80.0);
  EXPECT_THAT(m.per_class_top1, ElementsAre(50.0, 50.0, 0.0, 0.0, 0.0, 0.0));
}

TEST(MetricsAccumulatorTest, MergeAddsCounts) {
  MetricsAccumulator a(6), b(6);
  const at::Tensor logits = HandLogits();
  const at::Tensor labels = Labels(kHandLabels);
  a.Add(logits.slice(0, 0, 3), labels.slice(0, 0, 3));
  b.Add(logits.slice(0, 3, 5), labels.slice(0, 3, 5));
  a.Merge(b);
  const ClassificationMetrics m = a.Result();
  EXPECT_EQ(m.count, 5);
  EXPECT_DOUBLE_EQ(m.top1, 40.0);
  EXPECT_DOUBLE_EQ(m.top5, 80.0);
  MetricsAccumulator other(3);
  a.Merge(other);
  EXPECT_FALSE(a.status().ok());
  EXPECT_EQ(a.Result().count, 5);
}

TEST(MetricsAccumulatorTest, FewerThanFiveClassesUsesAllOfThem) {
  MetricsAccumulator acc(3);
  acc.Add(Logits({{3, 2, 1}, {3, 2, 1}, {1, 2, 3}}), Labels({0, 2, 1}));
  const ClassificationMetrics m = acc.Result();
  EXPECT_NEAR(m.top1, 100.0 / 3.0, 1e-9);
  EXPECT_DOUBLE_EQ(m.top5, 100.0);  // top-3 of 3 classes.
}

TEST(MetricsAccumulatorTest, EmptyIsZeroNotNan) {
  MetricsAccumulator acc(4);
  const ClassificationMetrics m = acc.Result();
  EXPECT_EQ(m.count, 0);
  EXPECT_EQ(m.top1, 0.0);
  EXPECT_EQ(m.top5, 0.0);
  EXPECT_THAT(m.per_class_top1, ElementsAre(0.0, 0.0, 0.0, 0.0));
  EXPECT_THAT(m.per_class_count, ElementsAre(0, 0, 0, 0));
}

TEST(MetricsAccumulatorTest, NanTrueLogitIsWrong) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  MetricsAccumulator acc(3);
  acc.Add(Logits({{nan, 0, 0}, {1, nan, 0}}), Labels({0, 0}));
  const ClassificationMetrics m = acc.Result();
  EXPECT_DOUBLE_EQ(m.top1, 50.0);  // Only the second sample.
  EXPECT_DOUBLE_EQ(m.top5, 50.0);
}

TEST(MetricsAccumulatorTest, AcceptsOtherDtypes) {
  MetricsAccumulator acc(6);
  acc.Add(HandLogits().to(at::kDouble), Labels(kHandLabels).to(at::kInt));
  ASSERT_TRUE(acc.status().ok()) << acc.status();
  EXPECT_DOUBLE_EQ(acc.Result().top1, 40.0);
}

TEST(MetricsAccumulatorTest, MatchesArgmaxAndTopkWithoutTies) {
  at::manual_seed(0);
  const at::Tensor logits = at::randn({200, 10});
  const at::Tensor labels = at::randint(0, 10, {200}, at::kLong);
  MetricsAccumulator acc(10);
  acc.Add(logits, labels);
  const double top1 =
      100.0 * logits.argmax(1).eq(labels).sum().item<int64_t>() / 200.0;
  const at::Tensor top5_idx = std::get<1>(logits.topk(5, 1));
  const double top5 =
      100.0 * top5_idx.eq(labels.unsqueeze(1)).any(1).sum().item<int64_t>() /
      200.0;
  EXPECT_DOUBLE_EQ(acc.Result().top1, top1);
  EXPECT_DOUBLE_EQ(acc.Result().top5, top5);
}

TEST(MetricsAccumulatorTest, MalformedBatchesAreSkipped) {
  MetricsAccumulator acc(6);
  acc.Add(HandLogits(), Labels({1, 2}));  // Length mismatch.
  EXPECT_FALSE(acc.status().ok());
  EXPECT_EQ(acc.Result().count, 0);

  MetricsAccumulator wrong_classes(5);
  wrong_classes.Add(HandLogits(), Labels(kHandLabels));
  EXPECT_THAT(Msg(wrong_classes.status()), HasSubstr("5"));
  EXPECT_EQ(wrong_classes.Result().count, 0);

  MetricsAccumulator range(6);
  range.Add(HandLogits(), Labels({1, 1, 6, 2, 0}));
  EXPECT_THAT(Msg(range.status()), HasSubstr("label 2 is 6"));
  EXPECT_EQ(range.Result().count, 0);

  MetricsAccumulator float_labels(6);
  float_labels.Add(HandLogits(), Labels(kHandLabels).to(at::kFloat));
  EXPECT_FALSE(float_labels.status().ok());

  MetricsAccumulator no_classes(0);
  EXPECT_FALSE(no_classes.status().ok());
  no_classes.Add(HandLogits(), Labels(kHandLabels));
  EXPECT_EQ(no_classes.Result().count, 0);
}

TEST(MetricsAccumulatorTest, FirstErrorIsKeptAndLaterBatchesCount) {
  MetricsAccumulator acc(6);
  acc.Add(HandLogits(), Labels({1, 1, 6, 2, 0}));
  acc.Add(HandLogits(), Labels(kHandLabels));
  acc.Add(HandLogits(), Labels({1}));
  EXPECT_THAT(Msg(acc.status()), HasSubstr("label 2 is 6"));
  EXPECT_EQ(acc.Result().count, 5);
}

TEST(FormatMetricsTest, NamesClassesAndPercentages) {
  MetricsAccumulator acc(6);
  acc.Add(HandLogits(), Labels(kHandLabels));
  const std::string text =
      FormatMetrics(acc.Result(), {"T-shirt/top", "Trouser", "Pullover"});
  EXPECT_THAT(text, HasSubstr("samples 5"));
  EXPECT_THAT(text, HasSubstr("top-1 40.00%"));
  EXPECT_THAT(text, HasSubstr("top-5 80.00%"));
  EXPECT_THAT(text, HasSubstr("T-shirt/top"));
  EXPECT_THAT(text, HasSubstr("Pullover"));
  EXPECT_THAT(text, HasSubstr("50.00%"));
  // Classes without a name fall back to their index: 1 summary line, 1
  // header line and 6 class lines.
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 8);
  EXPECT_THAT(text, HasSubstr("\n5 "));
}

TEST(FormatMetricsTest, EmptyMetrics) {
  EXPECT_EQ(FormatMetrics(ClassificationMetrics{}),
            "samples 0  top-1 0.00%  top-5 0.00%\n");
}

}  // namespace
}  // namespace autoq::evaluator
