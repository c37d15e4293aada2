// The NSGA-II loop: one pagmo::nsga2 generation per evolve call, each
// logged (the current Pareto front as a table, hypervolume, evaluation
// counts), reported to an optional callback and checkpointed in the result
// database, so a killed run resumes from its last finished generation.
//
// Thread-safety: one RunSearch per Objectives at a time; its callbacks run
// on the calling thread.
#ifndef AUTOQ_SEARCH_SEARCH_DRIVER_H_
#define AUTOQ_SEARCH_SEARCH_DRIVER_H_

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "evaluator/job_config.h"
#include "qat/model_info.h"
#include "qat/quant_config.h"
#include "qat/sensitivity_table.h"
#include "search/evaluation.h"
#include "search/problem.h"
#include "search/result_store.h"

namespace autoq::search {

struct SearchOutcome {
  // The last population.
  std::vector<std::vector<int>> population;
  std::vector<std::vector<double>> fitness;
  // Every configuration scored for the job (this run and the runs it
  // resumed), with its objectives.
  std::vector<std::vector<int>> archive;
  std::vector<std::vector<double>> archive_fitness;
  // The final front: the archive's non-dominated configurations inside the
  // region of interest and the size budget, by size (indices into
  // `archive`), thinned by search.score_noise (see FrontIndices). When
  // none is inside, the most accurate one. Plain NSGA-II
  // (strategy nsga2): the last population's non-dominated configurations.
  std::vector<size_t> front;
  int generations_done = 0;
  int resumed_from = -1;  // generation restored from a checkpoint; -1 none
  double seconds = 0;     // wall time of this call
};

// A point of the archive's front after a generation.
struct GenerationPoint {
  std::vector<int> wbits, abits;  // per gene (quantizable layer)
  int64_t size_bytes = 0;
  int64_t bops = 0;     // 0 when SearchContext::analysis is null
  double val_top1 = 0;  // short-QAT validation score
};

// The state of the search after one generation.
struct GenerationInfo {
  int generation = 0;  // 0: the initial population
  int generations = 0;
  // Restored from a checkpoint (the generation the search resumes after),
  // not computed in this run.
  bool restored = false;
  std::vector<GenerationPoint> front;  // by size
  double hypervolume = 0;              // normalized loss x size, ref (1,1)
  int64_t computed = 0;  // evaluations computed so far in this run
  int64_t cached = 0;    // answered by the cache so far in this run
};

struct SearchContext {
  // Identity of the search (model, data, scheme, options, recipe): its
  // checkpoints are stored under this key.
  std::string job_key;
  double float_val_top1 = 0;
  int64_t float_size_bytes = 0;
  std::FILE* log = stdout;  // null: silent
  // The cost model's inputs, for the BOPs of GenerationInfo's points
  // (checkpoints hold only objectives). Null: bops stay 0.
  const qat::ModelAnalysis* analysis = nullptr;
  qat::Granularity granularity = qat::Granularity::kPerTensorAffine;
  // Called after every generation, and once for the checkpoint a search
  // resumes from (restored = true). May be empty.
  std::function<void(const GenerationInfo&)> on_generation;
  // When it reads true, the search stops before its next generation with
  // CANCELLED ("job cancelled"). May be null.
  const std::atomic<bool>* cancelled = nullptr;
  // Chromosomes for the initial population besides the uniform ones (see
  // Encoding::InitialPopulation), e.g. sensitivity + knapsack solutions.
  // Part of the search's identity: job_key must change with them.
  std::vector<std::vector<int>> seeds;
  // The per-layer sensitivity, a feature of the guided search's surrogate.
  // May be null.
  const qat::SensitivityTable* sensitivity = nullptr;
};

absl::StatusOr<SearchOutcome> RunSearch(const evaluator::SearchOptions& options,
                                        Objectives& objectives,
                                        const CachedEvaluation& evaluation,
                                        ResultStore& store,
                                        const SearchContext& context);

// Seed of generation `g`'s NSGA-II step: fixed by the search seed, so a
// resumed search continues exactly as an uninterrupted one.
uint32_t GenerationSeed(uint32_t search_seed, int generation);

// The distinct non-dominated individuals whose loss objective is below
// `max_loss` (inside the region of interest; over-budget penalties are
// 100 and more), sorted by size. With `min_gain` > 0, a point is kept only
// when its loss is below that of every smaller kept point by more than
// `min_gain`: a larger model must buy more accuracy than the score's noise.
std::vector<size_t> FrontIndices(
    const std::vector<std::vector<int>>& genes,
    const std::vector<std::vector<double>>& fitness, double max_loss = 100.0,
    double min_gain = 0.0);

}  // namespace autoq::search

#endif  // AUTOQ_SEARCH_SEARCH_DRIVER_H_
