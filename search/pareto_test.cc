#include "search/pareto.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <pagmo/utils/multi_objective.hpp>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace autoq::search {
namespace {

using Indices = std::vector<size_t>;

TEST(NonDominatedTest, TwoObjectivesSortedByFirst) {
  // (3,1) and (1,3) and (2,2) trade off; (2,3) and (4,4) are dominated.
  const std::vector<std::vector<double>> pts = {
      {3, 1}, {2, 3}, {1, 3}, {4, 4}, {2, 2}};
  EXPECT_EQ(NonDominated(pts), (Indices{2, 4, 0}));
}

TEST(NonDominatedTest, ThreeObjectives) {
  // (1,1,5) and (5,1,1) and (1,5,1) trade off; (2,2,6) is dominated by
  // (1,1,5); (1,1,6) too (weakly worse in all, worse in one).
  const std::vector<std::vector<double>> pts = {
      {2, 2, 6}, {5, 1, 1}, {1, 1, 5}, {1, 5, 1}, {1, 1, 6}};
  EXPECT_EQ(NonDominated(pts), (Indices{2, 3, 1}));
}

TEST(NonDominatedTest, DuplicatesKeepTheFirst) {
  const std::vector<std::vector<double>> pts = {
      {2, 2}, {1, 3}, {2, 2}, {1, 3}, {3, 1}};
  EXPECT_EQ(NonDominated(pts), (Indices{1, 0, 4}));
}

TEST(NonDominatedTest, SinglePointEmptyAndOneObjective) {
  EXPECT_EQ(NonDominated({{7, 7}}), (Indices{0}));
  EXPECT_TRUE(NonDominated({}).empty());
  // One objective: only the first minimum survives.
  EXPECT_EQ(NonDominated({{3}, {1}, {2}, {1}}), (Indices{1}));
}

TEST(NonDominatedTest, NaNPointsAreDropped) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  EXPECT_EQ(NonDominated({{nan, 0}, {1, 1}}), (Indices{1}));
}

TEST(Hypervolume2DTest, HandComputed) {
  // Staircase (1,3), (2,2), (3,1) with ref (4,4):
  // strips: (4-1)*(4-3) = 3, (4-2)*(3-2) = 2, (4-3)*(2-1) = 1.
  EXPECT_DOUBLE_EQ(Hypervolume2D({{1, 3}, {2, 2}, {3, 1}}, {4, 4}), 6.0);
  // Unsorted input and a dominated point change nothing.
  EXPECT_DOUBLE_EQ(Hypervolume2D({{3, 1}, {2.5, 2.5}, {1, 3}, {2, 2}}, {4, 4}),
                   6.0);
  EXPECT_DOUBLE_EQ(Hypervolume2D({{0, 0}}, {2, 3}), 6.0);
  EXPECT_DOUBLE_EQ(Hypervolume2D({}, {1, 1}), 0.0);
}

TEST(Hypervolume2DTest, PointsBeyondTheReferenceAddNothing) {
  // Beyond in x, beyond in y, on the boundary: all zero.
  EXPECT_DOUBLE_EQ(Hypervolume2D({{5, 0}, {0, 5}, {4, 1}, {1, 4}}, {4, 4}),
                   0.0);
  // Mixed with a valid point: only (2,2) counts: 2*2.
  EXPECT_DOUBLE_EQ(Hypervolume2D({{5, 0}, {2, 2}, {0, 5}}, {4, 4}), 4.0);
  // Negative coordinates are inside the box and count fully.
  EXPECT_DOUBLE_EQ(Hypervolume2D({{-1, 0}}, {1, 1}), 2.0);
}

TEST(RegionHypervolumeTest, NormalizedToTheDeployBox) {
  // Float 90 %, box: loss <= 2 pp, size <= 1000 B.
  // (89, 500): x = 0.5, y = 0.5 -> 0.25.
  EXPECT_NEAR(RegionHypervolume({{89, 500}}, 90, 2, 1000), 0.25, 1e-12);
  // More accurate than float counts as lossless, not more.
  EXPECT_NEAR(RegionHypervolume({{91, 500}}, 90, 2, 1000), 0.5, 1e-12);
  // Outside the box in either direction: nothing.
  EXPECT_EQ(RegionHypervolume({{87, 100}}, 90, 2, 1000), 0);
  EXPECT_EQ(RegionHypervolume({{90, 1000}}, 90, 2, 1000), 0);
  EXPECT_EQ(RegionHypervolume({{90, 100}}, 90, 0, 1000), 0);
}

TEST(NormalizedHypervolumeTest, LossAndSizeRelativeToFloat) {
  // Float 90 %, 1000 bytes. A point at 81 % (loss 0.1) and 250 bytes
  // (0.25): (1-0.1)*(1-0.25) = 0.675.
  EXPECT_NEAR(NormalizedHypervolume({{81, 250}}, 90, 1000), 0.675, 1e-12);
  // Adding 88.2 % (loss 0.02) at 500 bytes (0.5), swept by loss:
  // (1-0.02)*(1-0.5) + (1-0.1)*(0.5-0.25) = 0.49 + 0.225 = 0.715.
  EXPECT_NEAR(NormalizedHypervolume({{81, 250}, {88.2, 500}}, 90, 1000), 0.715,
              1e-12);
  // Better than float (loss -0.1) counts fully: 1.1 * 0.5.
  EXPECT_NEAR(NormalizedHypervolume({{99, 500}}, 90, 1000), 0.55, 1e-12);
  // 0 % accuracy, float size, unmeasured: nothing.
  EXPECT_DOUBLE_EQ(
      NormalizedHypervolume({{0, 100}, {85, 1000}, {-1, 10}}, 90, 1000), 0.0);
  // Units do not matter: fractions give the same value.
  EXPECT_NEAR(NormalizedHypervolume({{0.81, 250}}, 0.9, 1000), 0.675, 1e-12);
  // No float reference: 0.
  EXPECT_DOUBLE_EQ(NormalizedHypervolume({{81, 250}}, 0, 1000), 0.0);
  EXPECT_DOUBLE_EQ(NormalizedHypervolume({{81, 250}}, 90, 0), 0.0);
}

// The same fronts as pagmo's O(n^2) sort, on points with many ties (small
// integer objectives) in 2 and 3 dimensions.
TEST(NonDominatedFrontsTest, SameFrontsAsPagmo) {
  std::mt19937 rng(3);
  for (size_t dims : {2u, 3u}) {
    for (size_t n : {0u, 1u, 2u, 7u, 300u}) {
      std::uniform_int_distribution<int> value(0, 12);
      std::vector<std::vector<double>> f(n, std::vector<double>(dims));
      for (auto& point : f) {
        for (double& x : point) x = value(rng);
      }
      const std::vector<std::vector<size_t>> ours = NonDominatedFronts(f);
      if (n < 2) {  // pagmo needs two points
        EXPECT_EQ(ours.size(), n);
        continue;
      }
      auto theirs = std::get<0>(pagmo::fast_non_dominated_sorting(f));
      ASSERT_EQ(ours.size(), theirs.size()) << dims << "d, n=" << n;
      for (size_t r = 0; r < ours.size(); ++r) {
        std::vector<size_t> expected(theirs[r].begin(), theirs[r].end());
        std::sort(expected.begin(), expected.end());
        EXPECT_EQ(ours[r], expected) << "front " << r;
      }
    }
  }
}

}  // namespace
}  // namespace autoq::search
