#include "search/offspring.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <pagmo/utils/genetic_operators.hpp>
#include <pagmo/utils/multi_objective.hpp>

#include "search/pareto.h"

namespace autoq::search {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Non-domination rank and crowding distance (within the rank's front) of
// every point.
void RankAndCrowding(const std::vector<std::vector<double>>& f,
                     std::vector<size_t>* rank, std::vector<double>* crowd) {
  rank->assign(f.size(), 0);
  crowd->assign(f.size(), kInf);
  if (f.empty()) return;
  const std::vector<std::vector<size_t>> fronts = NonDominatedFronts(f);
  for (size_t r = 0; r < fronts.size(); ++r) {
    for (auto i : fronts[r]) (*rank)[i] = r;
    // pagmo's crowding distance needs 2 points; with 2 or fewer both
    // boundary points are infinitely crowded anyway.
    if (fronts[r].size() < 3) continue;
    std::vector<std::vector<double>> points;
    for (auto i : fronts[r]) points.push_back(f[i]);
    const std::vector<double> d = pagmo::crowding_distance(points);
    for (size_t k = 0; k < fronts[r].size(); ++k) (*crowd)[fronts[r][k]] = d[k];
  }
}

}  // namespace

std::vector<std::vector<int>> Breed(
    const std::vector<std::vector<int>>& parents,
    const std::vector<std::vector<double>>& fitness, size_t count,
    const Variation& v, std::mt19937& rng) {
  std::vector<std::vector<int>> out;
  if (parents.size() < 2 || count == 0) return out;
  std::vector<size_t> rank;
  std::vector<double> crowd;
  RankAndCrowding(fitness, &rank, &crowd);
  std::uniform_int_distribution<size_t> pick(0, parents.size() - 1);
  auto tournament = [&] {
    const size_t a = pick(rng), b = pick(rng);
    if (rank[a] != rank[b]) return rank[a] < rank[b] ? a : b;
    return crowd[a] >= crowd[b] ? a : b;
  };
  const size_t dim = parents[0].size();
  const std::pair<pagmo::vector_double, pagmo::vector_double> bounds{
      pagmo::vector_double(dim, v.min_gene),
      pagmo::vector_double(dim, v.max_gene)};
  while (out.size() < count) {
    const size_t a = tournament();
    size_t b = tournament();
    for (int tries = 0; b == a && tries < 8; ++tries) b = tournament();
    const pagmo::vector_double pa(parents[a].begin(), parents[a].end());
    const pagmo::vector_double pb(parents[b].begin(), parents[b].end());
    auto children =
        pagmo::sbx_crossover(pa, pb, bounds, dim, v.crossover, v.eta_c, rng);
    for (pagmo::vector_double* child : {&children.first, &children.second}) {
      if (out.size() == count) break;
      pagmo::polynomial_mutation(*child, bounds, dim, v.mutation, v.eta_m, rng);
      std::vector<int> genes(dim);
      for (size_t k = 0; k < dim; ++k) {
        genes[k] = std::clamp(static_cast<int>(std::lround((*child)[k])),
                              v.min_gene, v.max_gene);
      }
      out.push_back(std::move(genes));
    }
  }
  return out;
}

std::vector<size_t> PickByPrediction(
    const std::vector<std::vector<double>>& known,
    const std::vector<std::vector<double>>& candidates, size_t count) {
  std::vector<std::vector<double>> all = known;
  all.insert(all.end(), candidates.begin(), candidates.end());
  std::vector<size_t> rank;
  std::vector<double> crowd;
  RankAndCrowding(all, &rank, &crowd);
  std::vector<size_t> order(candidates.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  const size_t k0 = known.size();
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (rank[k0 + a] != rank[k0 + b]) return rank[k0 + a] < rank[k0 + b];
    return crowd[k0 + a] > crowd[k0 + b];
  });
  if (order.size() > count) order.resize(count);
  return order;
}

std::vector<size_t> Survivors(const std::vector<std::vector<double>>& fitness,
                              size_t count) {
  if (count >= fitness.size()) {
    std::vector<size_t> all(fitness.size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = i;
    return all;
  }
  const auto best = pagmo::select_best_N_mo(fitness, count);
  return std::vector<size_t>(best.begin(), best.end());
}

}  // namespace autoq::search
