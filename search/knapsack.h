// Per-layer bit-widths from an additive model of the loss: the multiple-
// choice knapsack of HAWQ-V3. Each layer picks one bit-width; its size is
// exact (the cost model) and its penalty comes from the sensitivity table
// (the loss increase when only that layer is quantized). Minimizing the
// summed penalty under a size budget gives, for budgets between the
// smallest and the largest configuration, a front without any QAT: the
// search's seeds and the "sensitivity + knapsack" baseline.
//
// Plain values only; thread-compatible.
#ifndef AUTOQ_SEARCH_KNAPSACK_H_
#define AUTOQ_SEARCH_KNAPSACK_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"

namespace autoq::search {

// The choices of one layer: parallel vectors, one entry per bit-width.
struct LayerChoices {
  std::vector<int> bits;
  std::vector<int64_t> size_bytes;  // of this layer at bits[k]
  std::vector<double> penalty;      // >= 0, of this layer at bits[k]
};

// The bits per layer with the least summed penalty whose summed size is at
// most `budget_bytes`; ties go to the smaller configuration. Sizes are
// rounded up to 1/`resolution` of the budget, so the answer never exceeds
// the budget (and may leave up to one unit per layer unused; a budget so
// close to the smallest configuration that nothing else fits after
// rounding gets the smallest configuration). A budget that fits every
// configuration gets each layer's least penalty, exactly.
// INVALID_ARGUMENT on malformed choices; NOT_FOUND when even the smallest
// configuration is over the budget.
absl::StatusOr<std::vector<int>> SolveKnapsack(
    const std::vector<LayerChoices>& layers, int64_t budget_bytes,
    int resolution = 4096);

// Solutions for `count` budgets spread evenly from the smallest to the
// largest configuration's size (both ends included), without repeats, by
// size.
absl::StatusOr<std::vector<std::vector<int>>> KnapsackFront(
    const std::vector<LayerChoices>& layers, int count);
// The same for budgets spread evenly from `lo_bytes` to `hi_bytes`.
absl::StatusOr<std::vector<std::vector<int>>> KnapsackFront(
    const std::vector<LayerChoices>& layers, int count, int64_t lo_bytes,
    int64_t hi_bytes);

}  // namespace autoq::search

#endif  // AUTOQ_SEARCH_KNAPSACK_H_
