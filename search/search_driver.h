// The NSGA-II loop: one pagmo::nsga2 generation per evolve call, each
// logged (the current Pareto front as a table, hypervolume, evaluation
// counts) and checkpointed in the result database, so a killed run resumes
// from its last finished generation.
//
// Thread-safety: one RunSearch per Objectives at a time.
#ifndef AUTOQ_SEARCH_SEARCH_DRIVER_H_
#define AUTOQ_SEARCH_SEARCH_DRIVER_H_

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "search/evaluation.h"
#include "search/job_config.h"
#include "search/problem.h"
#include "search/result_store.h"

namespace autoq::search {

struct SearchOutcome {
  std::vector<std::vector<int>> population;
  std::vector<std::vector<double>> fitness;
  // Distinct non-dominated individuals within the size budget, by size.
  std::vector<size_t> front;
  int generations_done = 0;
  int resumed_from = -1;  // generation restored from a checkpoint; -1 none
  double seconds = 0;     // wall time of this call
};

struct SearchContext {
  // Identity of the search (model, data, scheme, options, recipe): its
  // checkpoints are stored under this key.
  std::string job_key;
  double float_val_top1 = 0;
  int64_t float_size_bytes = 0;
  std::FILE* log = stdout;  // null: silent
};

absl::StatusOr<SearchOutcome> RunSearch(const SearchOptions& options,
                                        Objectives& objectives,
                                        const CachedEvaluation& evaluation,
                                        ResultStore& store,
                                        const SearchContext& context);

// Seed of generation `g`'s NSGA-II step: fixed by the search seed, so a
// resumed search continues exactly as an uninterrupted one.
uint32_t GenerationSeed(uint32_t search_seed, int generation);

// The distinct non-dominated individuals whose loss objective is a real
// score (not an over-budget penalty), sorted by size.
std::vector<size_t> FrontIndices(const std::vector<std::vector<int>>& genes,
                                 const std::vector<std::vector<double>>& fitness);

}  // namespace autoq::search

#endif  // AUTOQ_SEARCH_SEARCH_DRIVER_H_
