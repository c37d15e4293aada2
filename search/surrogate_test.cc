#include "search/surrogate.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace autoq::search {
namespace {

TEST(KendallTauTest, OrderedReversedTiedAndConstant) {
  EXPECT_DOUBLE_EQ(KendallTau({1, 2, 3, 4}, {10, 20, 30, 40}), 1.0);
  EXPECT_DOUBLE_EQ(KendallTau({1, 2, 3, 4}, {4, 3, 2, 1}), -1.0);
  // One discordant pair of six: (5 - 1) / 6.
  EXPECT_NEAR(KendallTau({1, 2, 3, 4}, {1, 3, 2, 4}), 4.0 / 6.0, 1e-12);
  // tau-b with a tie in b: 5 concordant, 0 discordant, 1 tie in b.
  EXPECT_NEAR(KendallTau({1, 2, 3, 4}, {1, 2, 2, 4}),
              5.0 / std::sqrt(6.0 * 5.0), 1e-12);
  EXPECT_DOUBLE_EQ(KendallTau({1, 1, 1}, {1, 2, 3}), 0.0);
  EXPECT_DOUBLE_EQ(KendallTau({1}, {1}), 0.0);
}

// The O(n log n) count against the pairwise definition of tau-b, on data
// with many ties in either and both.
TEST(KendallTauTest, MatchesThePairwiseDefinition) {
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> value(0, 9);
  for (size_t n : {2u, 3u, 17u, 250u}) {
    std::vector<double> a(n), b(n);
    for (size_t i = 0; i < n; ++i) {
      a[i] = value(rng);
      b[i] = a[i] + value(rng) - 4;  // correlated, with ties
    }
    double c = 0, d = 0, ta = 0, tb = 0;
    for (size_t i = 0; i < n; ++i) {
      for (size_t j = i + 1; j < n; ++j) {
        const double da = a[i] - a[j], db = b[i] - b[j];
        if (da == 0 && db == 0) continue;
        if (da == 0) {
          ++ta;
        } else if (db == 0) {
          ++tb;
        } else if ((da > 0) == (db > 0)) {
          ++c;
        } else {
          ++d;
        }
      }
    }
    const double expected =
        (c + d + tb) * (c + d + ta) == 0
            ? 0
            : (c - d) / std::sqrt((c + d + tb) * (c + d + ta));
    EXPECT_NEAR(KendallTau(a, b), expected, 1e-12) << "n=" << n;
  }
}

TEST(RidgeModelTest, RecoversALinearFunctionAndIgnoresConstantFeatures) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<double> u(-1, 1);
  std::vector<std::vector<double>> x;
  std::vector<double> y;
  for (int i = 0; i < 40; ++i) {
    const double a = u(rng), b = u(rng);
    x.push_back({a, b, 7.0});  // the last feature never varies
    y.push_back(3 * a - 2 * b + 1);
  }
  absl::StatusOr<RidgeModel> m = RidgeModel::Fit(x, y, 0.0);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_NEAR(m->Predict({0.5, 0.25, 7.0}), 3 * 0.5 - 2 * 0.25 + 1, 1e-6);
  EXPECT_NEAR(m->Predict({0.5, 0.25, 100.0}), 3 * 0.5 - 2 * 0.25 + 1, 1e-6);
  // A large penalty shrinks the weights towards the mean.
  absl::StatusOr<RidgeModel> shrunk = RidgeModel::Fit(x, y, 100.0);
  ASSERT_TRUE(shrunk.ok());
  EXPECT_LT(std::fabs(shrunk->Predict({1, -1, 7}) - 1.0),
            std::fabs(m->Predict({1, -1, 7}) - 1.0));
}

TEST(RidgeModelTest, RefusesWhatCannotBeFitted) {
  EXPECT_EQ(RidgeModel::Fit({{1}, {2}}, {1, 2}, 1).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(RidgeModel::Fit({{1}, {2}, {3}}, {5, 5, 5}, 1).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(RidgeModel::Fit({{1}, {2, 3}, {3}}, {1, 2, 3}, 1).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

// Scores like the search's: a loss growing as per-layer bits shrink, with
// noise. The surrogate must rank unseen configurations well.
TEST(FitSurrogateTest, RanksBitConfigurationsWell) {
  std::mt19937 rng(2);
  std::uniform_int_distribution<int> bits(2, 8);
  std::normal_distribution<double> noise(0, 0.1);
  std::vector<std::vector<double>> x;
  std::vector<double> y;
  for (int i = 0; i < 30; ++i) {
    std::vector<double> row;
    double loss = 0;
    for (int l = 0; l < 6; ++l) {
      const double f = std::ldexp(1.0, -bits(rng));
      row.push_back(f);
      loss += (6 - l) * 20 * f;
    }
    x.push_back(row);
    y.push_back(loss + noise(rng));
  }
  absl::StatusOr<Surrogate> s = FitSurrogate(x, y);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_GT(s->cv_tau, 0.8);
  EXPECT_EQ(s->rows, 30u);
}

TEST(FitSurrogateTest, PureNoiseRanksPoorly) {
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> bits(2, 8);
  std::normal_distribution<double> noise(0, 1);
  std::vector<std::vector<double>> x;
  std::vector<double> y;
  for (int i = 0; i < 30; ++i) {
    std::vector<double> row;
    for (int l = 0; l < 6; ++l) row.push_back(std::ldexp(1.0, -bits(rng)));
    x.push_back(row);
    y.push_back(noise(rng));
  }
  absl::StatusOr<Surrogate> s = FitSurrogate(x, y);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_LT(s->cv_tau, 0.3);
}

TEST(FitSurrogateTest, TooFewRowsOrConstantScoresAreNotFitted) {
  std::vector<std::vector<double>> x = {{1}, {2}, {3}, {4}, {5}};
  absl::StatusOr<Surrogate> few = FitSurrogate(x, {1, 2, 3, 4, 5});
  EXPECT_EQ(few.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(few.status().message().find("only 5"), std::string::npos);
  absl::StatusOr<Surrogate> flat = FitSurrogate(x, {2, 2, 2, 2, 2}, 3);
  EXPECT_EQ(flat.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(flat.status().message().find("the same"), std::string::npos);
}

}  // namespace
}  // namespace autoq::search
