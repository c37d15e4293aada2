#include "search/screening.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <set>

#include "absl/strings/str_format.h"
#include "search/offspring.h"
#include "search/surrogate.h"

namespace autoq::search {

std::vector<double> SurrogateFeatures(const std::vector<qat::LayerBits>& bits,
                                      const qat::SensitivityTable* prior,
                                      bool search_abits) {
  std::vector<double> x;
  for (const qat::LayerBits& b : bits) x.push_back(std::ldexp(1.0, -b.wbits));
  if (prior != nullptr) {
    for (size_t l = 0; l < bits.size(); ++l) {
      x.push_back(prior->Penalty(l, bits[l].wbits));
    }
  }
  if (search_abits) {
    for (const qat::LayerBits& b : bits) {
      x.push_back(b.abits > 0 ? std::ldexp(1.0, -b.abits) : 0.0);
    }
  }
  return x;
}

absl::StatusOr<ScreeningStats> ScreenedGeneration(
    const evaluator::SearchOptions& options, Objectives& objectives,
    const qat::SensitivityTable* prior, uint32_t seed,
    std::vector<std::vector<int>>* genes,
    std::vector<std::vector<double>>* fitness) {
  const Encoding& encoding = objectives.encoding();
  const size_t population = genes->size();
  const int dim = encoding.dimension();
  Variation variation;
  variation.crossover = options.crossover;
  variation.eta_c = options.eta_c;
  variation.eta_m = options.eta_m;
  variation.mutation =
      options.mutation >= 0 ? options.mutation : 1.0 / std::max(dim, 1);
  variation.min_gene = encoding.min_bits();
  variation.max_gene = encoding.max_bits();
  std::mt19937 rng(seed);
  const std::vector<std::vector<int>> bred =
      Breed(*genes, *fitness,
            population * static_cast<size_t>(std::max(options.screening, 1)),
            variation, rng);

  // New, distinct candidates, in breeding order (a random order).
  ScreeningStats stats;
  std::vector<std::vector<int>> pool;
  std::set<std::vector<int>> seen;
  for (const std::vector<int>& g : bred) {
    if (objectives.archive().count(g) > 0 || !seen.insert(g).second) continue;
    pool.push_back(g);
  }
  stats.bred = pool.size();

  // The surrogate, from every configuration scored within the budget.
  std::vector<std::vector<double>> x, known;
  std::vector<double> y;
  for (const auto& [g, f] : objectives.archive()) {
    known.push_back(f);
    if (f[0] >= 100.0) continue;  // over the budget: never trained
    x.push_back(SurrogateFeatures(encoding.Decode(g), prior,
                                  options.search_activation_bits));
    y.push_back(f[0]);
  }
  absl::StatusOr<Surrogate> surrogate = FitSurrogate(x, y);
  if (!surrogate.ok()) {
    stats.why = std::string(surrogate.status().message());
  } else {
    stats.cv_tau = surrogate->cv_tau;
    stats.training_rows = surrogate->rows;
    if (surrogate->cv_tau < kMinSurrogateTau) {
      stats.why =
          absl::StrFormat("its cross-validated Kendall tau %.2f is below %.2f",
                          surrogate->cv_tau, kMinSurrogateTau);
    }
  }
  if (stats.why.empty() && pool.size() <= population) {
    stats.why =
        absl::StrFormat("only %zu new candidates were bred", pool.size());
  }
  stats.screened = stats.why.empty();

  std::vector<std::vector<int>> offspring;
  if (!stats.screened) {
    // Plain NSGA-II offspring; a repeat of a scored configuration costs
    // nothing (the cache answers) but teaches nothing, so new ones first.
    offspring.assign(pool.begin(),
                     pool.begin() + std::min(pool.size(), population));
    for (size_t i = 0; offspring.size() < population && i < bred.size(); ++i) {
      offspring.push_back(bred[i]);
    }
    stats.exploratory = offspring.size();
  } else {
    const size_t explore = std::max<size_t>(1, population / 4);
    offspring.assign(pool.begin(), pool.begin() + explore);
    std::vector<std::vector<double>> predicted;
    for (size_t i = explore; i < pool.size(); ++i) {
      const double loss = surrogate->model.Predict(SurrogateFeatures(
          encoding.Decode(pool[i]), prior, options.search_activation_bits));
      predicted.push_back(objectives.Predicted(pool[i], loss));
    }
    for (size_t i : PickByPrediction(known, predicted, population - explore)) {
      offspring.push_back(pool[explore + i]);
    }
    stats.exploratory = explore;
    stats.by_prediction = offspring.size() - explore;
  }

  absl::StatusOr<std::vector<std::vector<double>>> scores =
      objectives.Score(offspring);
  if (!scores.ok()) return scores.status();
  std::vector<std::vector<int>> all_genes = *genes;
  std::vector<std::vector<double>> all_fitness = *fitness;
  all_genes.insert(all_genes.end(), offspring.begin(), offspring.end());
  all_fitness.insert(all_fitness.end(), scores->begin(), scores->end());
  std::vector<std::vector<int>> next_genes;
  std::vector<std::vector<double>> next_fitness;
  for (size_t i : Survivors(all_fitness, population)) {
    next_genes.push_back(all_genes[i]);
    next_fitness.push_back(all_fitness[i]);
  }
  *genes = std::move(next_genes);
  *fitness = std::move(next_fitness);
  return stats;
}

}  // namespace autoq::search
