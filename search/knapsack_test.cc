#include "search/knapsack.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>

namespace autoq::search {
namespace {

// Layer i has n_i weights; at b bits it takes n_i * b / 8 bytes and its
// penalty is s_i * 4^(8 - b) (quantization noise grows 4x per bit lost).
std::vector<LayerChoices> Layers(const std::vector<int64_t>& weights,
                                 const std::vector<double>& sensitivity) {
  std::vector<LayerChoices> out;
  for (size_t i = 0; i < weights.size(); ++i) {
    LayerChoices l;
    for (int b = 2; b <= 8; ++b) {
      l.bits.push_back(b);
      l.size_bytes.push_back(weights[i] * b / 8);
      l.penalty.push_back(sensitivity[i] * std::pow(4.0, 8 - b) * 1e-4);
    }
    out.push_back(std::move(l));
  }
  return out;
}

int64_t Size(const std::vector<LayerChoices>& layers,
             const std::vector<int>& bits) {
  int64_t s = 0;
  for (size_t i = 0; i < layers.size(); ++i) {
    s += layers[i].size_bytes[static_cast<size_t>(bits[i] - 2)];
  }
  return s;
}

double Penalty(const std::vector<LayerChoices>& layers,
               const std::vector<int>& bits) {
  double p = 0;
  for (size_t i = 0; i < layers.size(); ++i) {
    p += layers[i].penalty[static_cast<size_t>(bits[i] - 2)];
  }
  return p;
}

// Exhaustive search over every configuration, for small cases.
std::vector<int> BruteForce(const std::vector<LayerChoices>& layers,
                            int64_t budget) {
  std::vector<int> bits(layers.size(), 2), best;
  double best_p = std::numeric_limits<double>::infinity();
  std::function<void(size_t)> walk = [&](size_t i) {
    if (i == layers.size()) {
      if (Size(layers, bits) > budget) return;
      const double p = Penalty(layers, bits);
      if (p < best_p) {
        best_p = p;
        best = bits;
      }
      return;
    }
    for (int b = 2; b <= 8; ++b) {
      bits[i] = b;
      walk(i + 1);
    }
  };
  walk(0);
  return best;
}

TEST(KnapsackTest, MatchesExhaustiveSearch) {
  // A sensitive small layer, a robust large one, two in between.
  const auto layers = Layers({800, 64000, 9000, 12000}, {50, 0.2, 3, 1});
  // Sizes: all 2-bit 21450 B, all 8-bit 85800 B.
  for (int64_t budget : {21450, 22000, 30000, 45000, 60000, 85000, 90000}) {
    absl::StatusOr<std::vector<int>> bits = SolveKnapsack(layers, budget);
    ASSERT_TRUE(bits.ok()) << bits.status();
    EXPECT_LE(Size(layers, *bits), budget);
    const std::vector<int> exact = BruteForce(layers, budget);
    // Rounding sizes up to budget/4096 may cost a hair of optimality.
    EXPECT_LE(Penalty(layers, *bits), Penalty(layers, exact) * 1.02 + 1e-12)
        << "budget " << budget;
  }
  // The sensitive small layer keeps many bits while the large one drops.
  absl::StatusOr<std::vector<int>> tight = SolveKnapsack(layers, 30000);
  ASSERT_TRUE(tight.ok());
  EXPECT_GT((*tight)[0], (*tight)[1]);
}

TEST(KnapsackTest, FrontSpansSmallestToLargestWithoutRepeats) {
  const auto layers = Layers({800, 64000, 9000, 12000}, {50, 0.2, 3, 1});
  absl::StatusOr<std::vector<std::vector<int>>> front =
      KnapsackFront(layers, 8);
  ASSERT_TRUE(front.ok()) << front.status();
  ASSERT_GE(front->size(), 4u);
  EXPECT_EQ(front->back(), std::vector<int>(4, 8));   // the largest budget
  EXPECT_EQ(front->front(), std::vector<int>(4, 2));  // the smallest
  for (size_t j = 1; j < front->size(); ++j) {
    EXPECT_NE((*front)[j], (*front)[j - 1]);
    EXPECT_LE(Penalty(layers, (*front)[j]), Penalty(layers, (*front)[j - 1]));
  }
}

TEST(KnapsackTest, BadInput) {
  EXPECT_EQ(SolveKnapsack({}, 100).status().code(),
            absl::StatusCode::kInvalidArgument);
  LayerChoices ragged;
  ragged.bits = {2, 4};
  ragged.size_bytes = {1};
  ragged.penalty = {0, 0};
  EXPECT_EQ(SolveKnapsack({ragged}, 100).status().code(),
            absl::StatusCode::kInvalidArgument);
  const auto layers = Layers({800, 64000}, {1, 1});
  EXPECT_EQ(SolveKnapsack(layers, 10).status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace autoq::search
