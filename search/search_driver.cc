#include "search/search_driver.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <pagmo/algorithms/nsga2.hpp>
#include <pagmo/batch_evaluators/member_bfe.hpp>
#include <pagmo/bfe.hpp>
#include <pagmo/population.hpp>
#include <pagmo/problem.hpp>
#include <set>

#include "absl/strings/str_cat.h"
#include "proto/autoq.pb.h"
#include "qat/cost_model.h"
#include "search/pareto.h"
#include "search/report.h"
#include "search/screening.h"

namespace autoq::search {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

absl::Status SaveCheckpoint(ResultStore& store, const std::string& job_key,
                            int generation, uint32_t next_seed,
                            const std::vector<std::vector<int>>& genes,
                            const std::vector<std::vector<double>>& fitness,
                            const Objectives& objectives,
                            const EvalStats& stats) {
  SearchCheckpoint ckpt;
  ckpt.set_generation(generation);
  ckpt.set_next_seed(next_seed);
  ckpt.set_computed(stats.computed);
  ckpt.set_cached(stats.cached);
  for (size_t i = 0; i < genes.size(); ++i) {
    Individual* ind = ckpt.add_population();
    for (int g : genes[i]) ind->add_genes(g);
    for (double f : fitness[i]) ind->add_fitness(f);
  }
  for (const auto& [g, f] : objectives.archive()) {
    Individual* ind = ckpt.add_archive();
    for (int x : g) ind->add_genes(x);
    for (double x : f) ind->add_fitness(x);
  }
  std::string blob;
  ckpt.SerializeToString(&blob);
  return store.PutCheckpoint(job_key, generation, blob);
}

// The archive as parallel vectors.
void ArchiveVectors(const Objectives& objectives,
                    std::vector<std::vector<int>>* genes,
                    std::vector<std::vector<double>>* fitness) {
  genes->clear();
  fitness->clear();
  for (const auto& [g, f] : objectives.archive()) {
    genes->push_back(g);
    fitness->push_back(f);
  }
}

// The archive's front after `generation`, as the log and the callback see
// it.
GenerationInfo DescribeGeneration(const SearchContext& ctx,
                                  const Objectives& objectives, int generation,
                                  int generations, const EvalStats& stats) {
  std::vector<std::vector<int>> genes;
  std::vector<std::vector<double>> fitness;
  ArchiveVectors(objectives, &genes, &fitness);
  GenerationInfo info;
  info.generation = generation;
  info.generations = generations;
  info.computed = stats.computed;
  info.cached = stats.cached;
  std::vector<AccuracySize> points;
  for (size_t i : FrontIndices(genes, fitness, objectives.max_loss())) {
    GenerationPoint p;
    const std::vector<qat::LayerBits> bits =
        objectives.encoding().Decode(genes[i]);
    for (const qat::LayerBits& b : bits) {
      p.wbits.push_back(b.wbits);
      p.abits.push_back(b.abits);
    }
    p.val_top1 = ctx.float_val_top1 - fitness[i][0];
    // The size objective is in KB; the cost model's bytes round-trip.
    p.size_bytes = static_cast<int64_t>(std::llround(fitness[i][1] * 1024.0));
    if (ctx.analysis != nullptr) {
      p.bops = qat::ComputeCost(*ctx.analysis, bits, ctx.granularity).bops;
    }
    points.push_back(AccuracySize{p.val_top1, p.size_bytes});
    info.front.push_back(std::move(p));
  }
  info.hypervolume =
      NormalizedHypervolume(points, ctx.float_val_top1, ctx.float_size_bytes);
  return info;
}

void LogGeneration(const SearchContext& ctx, const GenerationInfo& info,
                   const EvalStats& stats, double seconds) {
  if (ctx.log == nullptr) return;
  std::vector<TableRow> rows;
  for (const GenerationPoint& p : info.front) {
    TableRow row;
    row.wbits = p.wbits;
    row.abits = p.abits;
    row.top1 = p.val_top1;
    row.size_bytes = p.size_bytes;
    rows.push_back(std::move(row));
  }
  std::fprintf(
      ctx.log,
      "\n== generation %d/%d (%.1f s): Pareto front of every "
      "configuration so far, validation top-1 (float %.2f%%)\n%s",
      info.generation, info.generations, seconds, ctx.float_val_top1,
      FormatFrontTable(rows, ctx.float_val_top1, ctx.float_size_bytes).c_str());
  std::fprintf(ctx.log,
               "   hypervolume %.4f | evaluations: %lld computed, %lld cached, "
               "%lld repeated in a batch\n",
               info.hypervolume, static_cast<long long>(stats.computed),
               static_cast<long long>(stats.cached),
               static_cast<long long>(stats.repeated));
  std::fflush(ctx.log);
}

// Logs a finished generation and hands it to the callback.
void ReportGeneration(const SearchContext& ctx, const Objectives& objectives,
                      int generation, int generations, const EvalStats& stats,
                      double seconds, bool restored) {
  if (ctx.log == nullptr && !ctx.on_generation) return;
  GenerationInfo info =
      DescribeGeneration(ctx, objectives, generation, generations, stats);
  info.restored = restored;
  // A restored generation was logged by the run that computed it.
  if (!restored) LogGeneration(ctx, info, stats, seconds);
  if (ctx.on_generation) ctx.on_generation(info);
}

void LogScreening(const SearchContext& ctx, const ScreeningStats& s) {
  if (ctx.log == nullptr) return;
  if (s.screened) {
    std::fprintf(ctx.log,
                 "surrogate: ridge on %zu configurations, cross-validated "
                 "Kendall tau %.2f; QAT for %zu of %zu new candidates by "
                 "prediction + %zu unscreened\n",
                 s.training_rows, s.cv_tau, s.by_prediction, s.bred,
                 s.exploratory);
  } else {
    std::fprintf(ctx.log,
                 "surrogate: not used this generation (%s); %zu plain "
                 "offspring\n",
                 s.why.c_str(), s.exploratory);
  }
  std::fflush(ctx.log);
}

bool Cancelled(const SearchContext& ctx) {
  return ctx.cancelled != nullptr && ctx.cancelled->load();
}

}  // namespace

uint32_t GenerationSeed(uint32_t search_seed, int generation) {
  // splitmix-style mixing: neighbouring seeds give unrelated streams.
  uint64_t z = (static_cast<uint64_t>(search_seed) << 32) ^
               static_cast<uint64_t>(generation) ^ 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return static_cast<uint32_t>(z ^ (z >> 31));
}

std::vector<size_t> FrontIndices(
    const std::vector<std::vector<int>>& genes,
    const std::vector<std::vector<double>>& fitness, double max_loss,
    double min_gain) {
  std::vector<std::vector<double>> objectives;
  std::vector<size_t> index;
  std::set<std::vector<int>> seen;
  for (size_t i = 0; i < genes.size(); ++i) {
    // Outside the region (or over the size budget: 100 and more).
    if (fitness[i][0] > max_loss || fitness[i][0] >= 100.0) continue;
    if (!seen.insert(genes[i]).second) continue;
    objectives.push_back(fitness[i]);
    index.push_back(i);
  }
  std::vector<size_t> front;
  for (size_t j : NonDominated(objectives)) front.push_back(index[j]);
  std::sort(front.begin(), front.end(),
            [&](size_t a, size_t b) { return fitness[a][1] < fitness[b][1]; });
  if (min_gain <= 0) return front;
  std::vector<size_t> thinned;
  for (size_t i : front) {
    if (thinned.empty() ||
        fitness[i][0] < fitness[thinned.back()][0] - min_gain) {
      thinned.push_back(i);
    }
  }
  return thinned;
}

absl::StatusOr<SearchOutcome> RunSearch(const evaluator::SearchOptions& options,
                                        Objectives& objectives,
                                        const CachedEvaluation& evaluation,
                                        ResultStore& store,
                                        const SearchContext& ctx) {
  const auto start = Clock::now();
  SearchOutcome out;
  std::vector<std::vector<int>>& genes = out.population;
  std::vector<std::vector<double>>& fitness = out.fitness;
  uint32_t next_seed = GenerationSeed(options.seed, 1);
  int generation = 0;

  absl::StatusOr<std::optional<Checkpoint>> ckpt =
      store.LatestCheckpoint(ctx.job_key);
  if (!ckpt.ok()) return ckpt.status();
  const size_t nobj = objectives.num_objectives();
  if (ckpt->has_value()) {
    SearchCheckpoint saved;
    if (!saved.ParseFromString((*ckpt)->state)) {
      return absl::DataLossError(
          absl::StrCat(store.path(), ": the search checkpoint of generation ",
                       (*ckpt)->generation, " does not parse"));
    }
    for (const Individual& ind : saved.population()) {
      genes.emplace_back(ind.genes().begin(), ind.genes().end());
      fitness.emplace_back(ind.fitness().begin(), ind.fitness().end());
      if (genes.back().size() !=
              static_cast<size_t>(objectives.encoding().dimension()) ||
          fitness.back().size() != nobj) {
        return absl::DataLossError(
            absl::StrCat(store.path(),
                         ": the search checkpoint does not "
                         "match this job's chromosome"));
      }
      objectives.Restore(genes.back(), fitness.back());
    }
    for (const Individual& ind : saved.archive()) {
      std::vector<int> g(ind.genes().begin(), ind.genes().end());
      std::vector<double> f(ind.fitness().begin(), ind.fitness().end());
      if (g.size() != static_cast<size_t>(objectives.encoding().dimension()) ||
          f.size() != nobj) {
        return absl::DataLossError(absl::StrCat(
            store.path(),
            ": the search checkpoint's archive does not match this job's "
            "chromosome"));
      }
      objectives.Restore(g, f);
    }
    generation = saved.generation();
    next_seed = saved.next_seed();
    out.resumed_from = generation;
    if (ctx.log != nullptr) {
      std::fprintf(ctx.log,
                   "resuming the search after generation %d (checkpoint in "
                   "%s)\n",
                   generation, store.path().c_str());
    }
    ReportGeneration(ctx, objectives, generation, options.generations,
                     evaluation.stats(), 0, /*restored=*/true);
  } else {
    genes = objectives.encoding().InitialPopulation(options.population,
                                                    options.seed, ctx.seeds);
    if (ctx.log != nullptr) {
      std::fprintf(ctx.log,
                   "\n== initial population: %zu configurations (uniform "
                   "%d..%d bits%s and their offspring)\n",
                   genes.size(), options.min_bits, options.max_bits,
                   ctx.seeds.empty()
                       ? ""
                       : absl::StrCat(", ", ctx.seeds.size(),
                                      " sensitivity + knapsack seeds")
                             .c_str());
    }
    const auto t = Clock::now();
    absl::StatusOr<std::vector<std::vector<double>>> scores =
        objectives.Score(genes);
    if (!scores.ok()) return scores.status();
    fitness = *std::move(scores);
    absl::Status st = SaveCheckpoint(store, ctx.job_key, 0, next_seed, genes,
                                     fitness, objectives, evaluation.stats());
    if (!st.ok()) return st;
    ReportGeneration(ctx, objectives, 0, options.generations,
                     evaluation.stats(), Since(t), /*restored=*/false);
  }

  const int dim = objectives.encoding().dimension();
  const double mutation =
      options.mutation >= 0 ? options.mutation : 1.0 / std::max(dim, 1);
  auto shared = std::shared_ptr<Objectives>(&objectives, [](Objectives*) {});
  pagmo::problem problem{BitWidthProblem(shared)};
  while (generation < options.generations) {
    if (Cancelled(ctx)) return absl::CancelledError("job cancelled");
    const auto t = Clock::now();
    ++generation;
    const bool screened =
        options.strategy == evaluator::SearchOptions::Strategy::kGuided &&
        options.screening > 1;
    try {
      if (screened) {
        absl::StatusOr<ScreeningStats> stats = ScreenedGeneration(
            options, objectives, ctx.sensitivity, next_seed, &genes, &fitness);
        if (!stats.ok()) return stats.status();
        LogScreening(ctx, *stats);
      } else {
        pagmo::population pop(problem, 0u, next_seed);
        for (size_t i = 0; i < genes.size(); ++i) {
          pop.push_back(ToDecisionVector(genes[i]), fitness[i]);
        }
        pagmo::nsga2 algo(1u, options.crossover, options.eta_c, mutation,
                          options.eta_m, next_seed);
        algo.set_bfe(pagmo::bfe{pagmo::member_bfe{}});
        pop = algo.evolve(pop);
        for (size_t i = 0; i < pop.size(); ++i) {
          genes[i] = ToGenes(pop.get_x()[i]);
          fitness[i] = pop.get_f()[i];
        }
      }
    } catch (const std::exception& e) {
      if (!objectives.last_error().ok()) return objectives.last_error();
      return absl::InternalError(
          absl::StrCat("NSGA-II generation ", generation, ": ", e.what()));
    }
    next_seed = GenerationSeed(options.seed, generation + 1);
    absl::Status st =
        SaveCheckpoint(store, ctx.job_key, generation, next_seed, genes,
                       fitness, objectives, evaluation.stats());
    if (!st.ok()) return st;
    ReportGeneration(ctx, objectives, generation, options.generations,
                     evaluation.stats(), Since(t), /*restored=*/false);
  }
  out.generations_done = generation;
  ArchiveVectors(objectives, &out.archive, &out.archive_fitness);
  if (options.strategy == evaluator::SearchOptions::Strategy::kNsga2) {
    // The source thesis's front: the last population's, all of it.
    for (size_t p : FrontIndices(genes, fitness, objectives.max_loss())) {
      const auto it = objectives.archive().find(genes[p]);
      out.front.push_back(
          static_cast<size_t>(std::distance(objectives.archive().begin(), it)));
    }
  } else {
    out.front = FrontIndices(out.archive, out.archive_fitness,
                             objectives.max_loss(), options.score_noise);
  }
  if (out.front.empty()) {
    // Nothing inside the region: the most accurate configuration within
    // the budget, so the user still gets a model and can widen the region.
    size_t best = out.archive.size();
    for (size_t i = 0; i < out.archive.size(); ++i) {
      if (out.archive_fitness[i][0] >= 100.0) continue;
      if (best == out.archive.size() ||
          out.archive_fitness[i][0] < out.archive_fitness[best][0]) {
        best = i;
      }
    }
    if (best < out.archive.size()) {
      out.front.push_back(best);
      if (ctx.log != nullptr) {
        std::fprintf(ctx.log,
                     "warning: no configuration came within %.2f points of "
                     "the float model's validation top-1 "
                     "(search.max_accuracy_drop); the final front is the most "
                     "accurate one found (loss %.2f points)\n",
                     objectives.max_loss(), out.archive_fitness[best][0]);
      }
    }
  }
  out.seconds = Since(start);
  return out;
}

}  // namespace autoq::search
