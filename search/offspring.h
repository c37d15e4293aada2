// NSGA-II's variation and selection as separate steps, so the search can
// breed many more offspring than it fine-tunes and screen them with a
// surrogate (search/surrogate.h) before any QAT.
//
// The operators are pagmo's (SBX crossover and polynomial mutation on
// integer genes), with NSGA-II's binary tournament on rank and crowding,
// so an unscreened generation is the same algorithm as pagmo::nsga2's.
//
// Plain values only; thread-compatible.
#ifndef AUTOQ_SEARCH_OFFSPRING_H_
#define AUTOQ_SEARCH_OFFSPRING_H_

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace autoq::search {

struct Variation {
  double crossover = 0.9;  // probability per pair
  double eta_c = 10;
  double mutation = 0.1;  // probability per gene
  double eta_m = 10;
  int min_gene = 2, max_gene = 8;
};

// `count` offspring of `parents` (objective vectors in `fitness`, all
// minimized): pairs picked by binary tournaments on non-domination rank,
// then crowding distance; SBX crossover, polynomial mutation. Needs at
// least 2 parents.
std::vector<std::vector<int>> Breed(
    const std::vector<std::vector<int>>& parents,
    const std::vector<std::vector<double>>& fitness, size_t count,
    const Variation& variation, std::mt19937& rng);

// Indices of the `count` candidates (objective vectors, predicted) that
// rank best against the `known` objective vectors and each other: by the
// non-domination front of known + candidates, then by crowding distance
// within the front. Fewer when there are fewer candidates.
std::vector<size_t> PickByPrediction(
    const std::vector<std::vector<double>>& known,
    const std::vector<std::vector<double>>& candidates, size_t count);

// NSGA-II's survivors: the indices of the best `count` of `fitness` by
// non-domination rank, then crowding distance.
std::vector<size_t> Survivors(const std::vector<std::vector<double>>& fitness,
                              size_t count);

}  // namespace autoq::search

#endif  // AUTOQ_SEARCH_OFFSPRING_H_
