#include "search/problem.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "qat/cost_model.h"

namespace autoq::search {

std::vector<int> ToGenes(const pagmo::vector_double& x) {
  std::vector<int> genes(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    genes[i] = static_cast<int>(std::lround(x[i]));
  }
  return genes;
}

pagmo::vector_double ToDecisionVector(const std::vector<int>& genes) {
  return pagmo::vector_double(genes.begin(), genes.end());
}

Objectives::Objectives(Encoding encoding, const qat::ModelAnalysis* analysis,
                       qat::Granularity granularity,
                       const evaluator::SearchOptions& options,
                       double float_val_top1, CachedEvaluation* evaluation)
    : encoding_(std::move(encoding)),
      analysis_(analysis),
      granularity_(granularity),
      budget_bytes_(options.size_budget_bytes),
      bops_(options.bops_objective),
      float_val_top1_(float_val_top1),
      evaluation_(evaluation),
      // Plain NSGA-II has no region of interest in its objectives.
      max_loss_(options.strategy == evaluator::SearchOptions::Strategy::kNsga2
                    ? 100.0
                    : options.max_accuracy_drop),
      // Above any configuration's size: every quantized one is smaller
      // than the float model.
      outside_size_kb_(
          std::max<double>(analysis->float_size_bytes / 1024.0, 1.0)) {}

bool Objectives::OverBudget(const std::vector<int>& genes) const {
  if (budget_bytes_ <= 0) return false;
  return qat::ComputeCost(*analysis_, encoding_.Decode(genes), granularity_)
             .size_bytes > budget_bytes_;
}

std::vector<double> Objectives::Predicted(const std::vector<int>& genes,
                                          double loss) const {
  const qat::ModelCost cost =
      qat::ComputeCost(*analysis_, encoding_.Decode(genes), granularity_);
  std::vector<double> out;
  if (budget_bytes_ > 0 && cost.size_bytes > budget_bytes_) {
    const double excess =
        static_cast<double>(cost.size_bytes - budget_bytes_) / budget_bytes_;
    out = {100.0 + excess, cost.size_bytes / 1024.0};
    if (bops_) out.push_back(cost.bops / 1e9);
    return out;
  }
  const bool outside = loss > max_loss_;
  out = {loss, cost.size_bytes / 1024.0 + (outside ? outside_size_kb_ : 0)};
  if (bops_) out.push_back(cost.bops / 1e9 + (outside ? 1e6 : 0));
  return out;
}

absl::StatusOr<std::vector<std::vector<double>>> Objectives::Score(
    const std::vector<std::vector<int>>& batch) {
  std::vector<std::vector<double>> out(batch.size());
  std::vector<std::vector<qat::LayerBits>> to_score;
  std::vector<size_t> scored_index;
  for (size_t i = 0; i < batch.size(); ++i) {
    if (OverBudget(batch[i])) {
      // Dominated by every configuration within the budget; never trained.
      out[i] = Predicted(batch[i], 0);
      archive_[batch[i]] = out[i];
      continue;
    }
    to_score.push_back(encoding_.Decode(batch[i]));
    scored_index.push_back(i);
  }
  EvalProgress progress;
  if (progress_) {
    progress = [&](size_t j, const evaluator::EvalRecord& r, bool cached,
                   size_t done, size_t total) {
      progress_(to_score[j], r, cached, done, total);
    };
  }
  absl::StatusOr<std::vector<evaluator::EvalRecord>> records =
      evaluation_->Evaluate(evaluator::Stage::kSearch, to_score, progress);
  if (!records.ok()) return records.status();
  for (size_t j = 0; j < records->size(); ++j) {
    const evaluator::EvalRecord& r = (*records)[j];
    const size_t i = scored_index[j];
    const double loss = float_val_top1_ - r.qat.best_val_top1;
    const bool outside = loss > max_loss_;
    out[i] = {loss,
              r.qat.size_bytes / 1024.0 + (outside ? outside_size_kb_ : 0)};
    // Giga-BOPs: no model reaches 1e6 (10^15 operations per image).
    if (bops_) out[i].push_back(r.qat.bops / 1e9 + (outside ? 1e6 : 0));
    records_[batch[i]] = r;
    archive_[batch[i]] = out[i];
  }
  return out;
}

const evaluator::EvalRecord* Objectives::Find(
    const std::vector<int>& genes) const {
  auto it = records_.find(genes);
  return it == records_.end() ? nullptr : &it->second;
}

BitWidthProblem::BitWidthProblem(std::shared_ptr<Objectives> objectives)
    : objectives_(std::move(objectives)) {}

pagmo::vector_double BitWidthProblem::fitness(
    const pagmo::vector_double& x) const {
  return batch_fitness(x);
}

pagmo::vector_double BitWidthProblem::batch_fitness(
    const pagmo::vector_double& xs) const {
  const size_t dim = static_cast<size_t>(objectives_->encoding().dimension());
  std::vector<std::vector<int>> batch;
  for (size_t off = 0; off + dim <= xs.size(); off += dim) {
    batch.push_back(ToGenes(
        pagmo::vector_double(xs.begin() + static_cast<long>(off),
                             xs.begin() + static_cast<long>(off + dim))));
  }
  absl::StatusOr<std::vector<std::vector<double>>> scores =
      objectives_->Score(batch);
  if (!scores.ok()) {
    // pagmo only knows exceptions; the driver reports last_error().
    objectives_->set_last_error(scores.status());
    throw std::runtime_error(std::string(scores.status().message()));
  }
  pagmo::vector_double out;
  for (const std::vector<double>& f : *scores) {
    out.insert(out.end(), f.begin(), f.end());
  }
  return out;
}

std::pair<pagmo::vector_double, pagmo::vector_double>
BitWidthProblem::get_bounds() const {
  const size_t dim = static_cast<size_t>(objectives_->encoding().dimension());
  return {pagmo::vector_double(dim, objectives_->encoding().min_bits()),
          pagmo::vector_double(dim, objectives_->encoding().max_bits())};
}

pagmo::vector_double::size_type BitWidthProblem::get_nobj() const {
  return objectives_->num_objectives();
}

pagmo::vector_double::size_type BitWidthProblem::get_nix() const {
  return static_cast<pagmo::vector_double::size_type>(
      objectives_->encoding().dimension());
}

}  // namespace autoq::search
