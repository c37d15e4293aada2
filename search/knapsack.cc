#include "search/knapsack.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "absl/strings/str_cat.h"

namespace autoq::search {
namespace {

absl::Status Check(const std::vector<LayerChoices>& layers) {
  if (layers.empty()) return absl::InvalidArgumentError("no layers to choose");
  for (size_t i = 0; i < layers.size(); ++i) {
    const LayerChoices& l = layers[i];
    if (l.bits.empty() || l.size_bytes.size() != l.bits.size() ||
        l.penalty.size() != l.bits.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("layer ", i,
                       ": bits, sizes and penalties must be "
                       "non-empty and of one length"));
    }
    for (size_t k = 0; k < l.bits.size(); ++k) {
      if (l.size_bytes[k] < 0 || !(l.penalty[k] >= 0)) {
        return absl::InvalidArgumentError(
            absl::StrCat("layer ", i, ": sizes and penalties must be >= 0"));
      }
    }
  }
  return absl::OkStatus();
}

int64_t Extreme(const std::vector<LayerChoices>& layers, bool largest) {
  int64_t total = 0;
  for (const LayerChoices& l : layers) {
    total += largest
                 ? *std::max_element(l.size_bytes.begin(), l.size_bytes.end())
                 : *std::min_element(l.size_bytes.begin(), l.size_bytes.end());
  }
  return total;
}

}  // namespace

absl::StatusOr<std::vector<int>> SolveKnapsack(
    const std::vector<LayerChoices>& layers, int64_t budget_bytes,
    int resolution) {
  if (absl::Status st = Check(layers); !st.ok()) return st;
  if (budget_bytes < Extreme(layers, false)) {
    return absl::NotFoundError(
        absl::StrCat("no configuration fits in ", budget_bytes,
                     " bytes (the smallest is ", Extreme(layers, false), ")"));
  }
  if (budget_bytes >= Extreme(layers, true)) {
    // Everything fits: each layer's least penalty, the smaller on ties.
    std::vector<int> bits;
    for (const LayerChoices& l : layers) {
      size_t best = 0;
      for (size_t k = 1; k < l.bits.size(); ++k) {
        if (l.penalty[k] < l.penalty[best] ||
            (l.penalty[k] == l.penalty[best] &&
             l.size_bytes[k] < l.size_bytes[best])) {
          best = k;
        }
      }
      bits.push_back(l.bits[best]);
    }
    return bits;
  }
  resolution = std::max(resolution, 1);
  const double unit =
      std::max(1.0, static_cast<double>(budget_bytes) / resolution);
  const int64_t capacity = static_cast<int64_t>(budget_bytes / unit);
  auto units = [&](int64_t bytes) {
    return static_cast<int64_t>(std::ceil(static_cast<double>(bytes) / unit));
  };
  // best[c]: least penalty of the layers so far within c units (and the
  // exact bytes, to prefer smaller models on ties); choice[i][c] the bit
  // index layer i takes in it.
  constexpr double kInf = std::numeric_limits<double>::infinity();
  struct Cell {
    double penalty = kInf;
    int64_t bytes = 0;
  };
  std::vector<Cell> best(static_cast<size_t>(capacity + 1));
  best[0].penalty = 0;
  std::vector<std::vector<int>> choice(
      layers.size(), std::vector<int>(static_cast<size_t>(capacity + 1), -1));
  for (size_t i = 0; i < layers.size(); ++i) {
    const LayerChoices& l = layers[i];
    std::vector<Cell> next(best.size());
    for (int64_t c = 0; c <= capacity; ++c) {
      if (best[static_cast<size_t>(c)].penalty == kInf) continue;
      for (size_t k = 0; k < l.bits.size(); ++k) {
        const int64_t to = c + units(l.size_bytes[k]);
        if (to > capacity) continue;
        const Cell cand{best[static_cast<size_t>(c)].penalty + l.penalty[k],
                        best[static_cast<size_t>(c)].bytes + l.size_bytes[k]};
        Cell& slot = next[static_cast<size_t>(to)];
        if (cand.penalty < slot.penalty ||
            (cand.penalty == slot.penalty && cand.bytes < slot.bytes)) {
          slot = cand;
          // The backtrack finds the source by subtracting k's units.
          choice[i][static_cast<size_t>(to)] = static_cast<int>(k);
        }
      }
    }
    best.swap(next);
  }
  int64_t end = -1;
  for (int64_t c = 0; c <= capacity; ++c) {
    const Cell& cell = best[static_cast<size_t>(c)];
    if (cell.penalty == kInf) continue;
    if (end < 0 || cell.penalty < best[static_cast<size_t>(end)].penalty ||
        (cell.penalty == best[static_cast<size_t>(end)].penalty &&
         cell.bytes < best[static_cast<size_t>(end)].bytes)) {
      end = c;
    }
  }
  if (end < 0) {
    // Rounding left only the smallest configuration (which fits, checked
    // above) outside: it is the answer.
    std::vector<int> bits;
    for (const LayerChoices& l : layers) {
      bits.push_back(l.bits[static_cast<size_t>(
          std::min_element(l.size_bytes.begin(), l.size_bytes.end()) -
          l.size_bytes.begin())]);
    }
    return bits;
  }
  std::vector<int> bits(layers.size());
  for (size_t i = layers.size(); i-- > 0;) {
    const int k = choice[i][static_cast<size_t>(end)];
    bits[i] = layers[i].bits[static_cast<size_t>(k)];
    end -= units(layers[i].size_bytes[static_cast<size_t>(k)]);
  }
  return bits;
}

absl::StatusOr<std::vector<std::vector<int>>> KnapsackFront(
    const std::vector<LayerChoices>& layers, int count) {
  if (absl::Status st = Check(layers); !st.ok()) return st;
  return KnapsackFront(layers, count, Extreme(layers, false),
                       Extreme(layers, true));
}

absl::StatusOr<std::vector<std::vector<int>>> KnapsackFront(
    const std::vector<LayerChoices>& layers, int count, int64_t lo,
    int64_t hi) {
  if (absl::Status st = Check(layers); !st.ok()) return st;
  count = std::max(count, 1);
  if (hi < lo) std::swap(lo, hi);
  std::vector<std::vector<int>> out;
  std::set<std::vector<int>> seen;
  for (int j = 0; j < count; ++j) {
    const int64_t budget = count == 1 ? hi : lo + (hi - lo) * j / (count - 1);
    absl::StatusOr<std::vector<int>> bits = SolveKnapsack(layers, budget);
    if (!bits.ok()) continue;  // below the smallest configuration
    if (seen.insert(*bits).second) out.push_back(*std::move(bits));
  }
  return out;
}

}  // namespace autoq::search
