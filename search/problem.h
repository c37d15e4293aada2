// The search's objectives and the pagmo user-defined problem over them.
//
// pagmo copies a problem freely (every generation, every population), so
// BitWidthProblem holds only a shared_ptr to the Objectives that do the
// work. NSGA-II asks for the fitness of a whole generation at once through
// batch_fitness (pagmo::member_bfe), which goes to CachedEvaluation as one
// batch, so local and remote workers run the generation in parallel.
//
// Thread-safety: all calls come from the thread running the search.
#ifndef AUTOQ_SEARCH_PROBLEM_H_
#define AUTOQ_SEARCH_PROBLEM_H_

#include <functional>
#include <map>
#include <memory>
#include <pagmo/types.hpp>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "evaluator/job_config.h"
#include "qat/model_info.h"
#include "search/chromosome.h"
#include "search/evaluation.h"

namespace autoq::search {

// Objectives, all minimized: accuracy loss vs. the float model in
// percentage points (float val top-1 - best val top-1 of the short QAT),
// size in KB and, optionally, giga-BOPs. Configurations over the size
// budget are not trained: their loss is 100 + the relative excess. A
// configuration that loses more than options.max_accuracy_drop keeps its
// loss, but its size (and BOPs) get a penalty larger than any
// configuration's, so every configuration inside the region of interest
// dominates it (constraint domination through the objectives: pagmo's
// NSGA-II has no constraints).
//
// Every configuration scored is kept in an archive (genes -> objectives):
// the final front is taken from it, not from the last population.
class Objectives {
 public:
  Objectives(Encoding encoding, const qat::ModelAnalysis* analysis,
             qat::Granularity granularity,
             const evaluator::SearchOptions& options, double float_val_top1,
             CachedEvaluation* evaluation);

  const Encoding& encoding() const { return encoding_; }
  size_t num_objectives() const { return bops_ ? 3 : 2; }
  double float_val_top1() const { return float_val_top1_; }
  bool OverBudget(const std::vector<int>& genes) const;

  // Scores a batch (cache first, then the evaluator) and returns one
  // objective vector per chromosome.
  absl::StatusOr<std::vector<std::vector<double>>> Score(
      const std::vector<std::vector<int>>& batch);

  // The objectives a chromosome would get if its short QAT lost `loss`
  // points: exact size and BOPs from the cost model, with the same
  // penalties as Score (for the surrogate's predictions).
  std::vector<double> Predicted(const std::vector<int>& genes,
                                double loss) const;

  // The record of a chromosome scored earlier in this process, or null.
  const evaluator::EvalRecord* Find(const std::vector<int>& genes) const;

  // Every configuration scored so far (or restored), with its objectives.
  const std::map<std::vector<int>, std::vector<double>>& archive() const {
    return archive_;
  }
  // Adds a configuration scored by an earlier run (a checkpoint's).
  void Restore(const std::vector<int>& genes,
               const std::vector<double>& objectives) {
    archive_.emplace(genes, objectives);
  }
  // Objectives with this loss or more are outside the region of interest
  // (or over the size budget).
  double max_loss() const { return max_loss_; }

  // Called for every finished entry of a batch (for progress lines).
  using Progress =
      std::function<void(const std::vector<qat::LayerBits>& bits,
                         const evaluator::EvalRecord& record, bool cached,
                         size_t finished, size_t total)>;
  void set_progress(Progress progress) { progress_ = std::move(progress); }

  // The error that made the last batch fail (pagmo sees an exception).
  const absl::Status& last_error() const { return last_error_; }
  void set_last_error(absl::Status s) { last_error_ = std::move(s); }

 private:
  Encoding encoding_;
  const qat::ModelAnalysis* analysis_;
  qat::Granularity granularity_;
  int64_t budget_bytes_;
  bool bops_;
  double float_val_top1_;
  CachedEvaluation* evaluation_;
  Progress progress_;
  double max_loss_;
  double outside_size_kb_;  // the size penalty outside the region
  std::map<std::vector<int>, evaluator::EvalRecord> records_;
  std::map<std::vector<int>, std::vector<double>> archive_;
  absl::Status last_error_;
};

// The pagmo UDP. Integer genes in [min_bits, max_bits].
class BitWidthProblem {
 public:
  BitWidthProblem() = default;  // pagmo requires it; unusable as is
  explicit BitWidthProblem(std::shared_ptr<Objectives> objectives);

  pagmo::vector_double fitness(const pagmo::vector_double& x) const;
  pagmo::vector_double batch_fitness(const pagmo::vector_double& xs) const;
  bool has_batch_fitness() const { return true; }
  std::pair<pagmo::vector_double, pagmo::vector_double> get_bounds() const;
  pagmo::vector_double::size_type get_nobj() const;
  pagmo::vector_double::size_type get_nix() const;
  std::string get_name() const { return "AutoQ per-layer bit-widths"; }

 private:
  std::shared_ptr<Objectives> objectives_;
};

// Decision vector (doubles holding integers) <-> genes.
std::vector<int> ToGenes(const pagmo::vector_double& x);
pagmo::vector_double ToDecisionVector(const std::vector<int>& genes);

}  // namespace autoq::search

#endif  // AUTOQ_SEARCH_PROBLEM_H_
