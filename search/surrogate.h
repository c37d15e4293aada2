// A cheap predictor of the search's score, fitted on every configuration
// the job has scored: ridge regression on per-layer bit features (and, when
// given, the sensitivity prior). The search breeds many more offspring
// than it can afford to fine-tune and sends to QAT only the ones this
// model ranks best (search/offspring.h), so it must say how far it can be
// trusted: the cross-validated Kendall rank correlation of its predictions.
//
// Plain values only; thread-compatible.
#ifndef AUTOQ_SEARCH_SURROGATE_H_
#define AUTOQ_SEARCH_SURROGATE_H_

#include <cstddef>
#include <vector>

#include "absl/status/statusor.h"

namespace autoq::search {

// Kendall's tau-b of two equally long series (ties counted as neither
// concordant nor discordant, normalized for ties). 0 when either series is
// constant or shorter than 2.
double KendallTau(const std::vector<double>& a, const std::vector<double>& b);

// Ridge regression with an intercept on standardized features. A feature
// that is constant in the training set gets weight 0.
class RidgeModel {
 public:
  // FAILED_PRECONDITION when there are fewer than 3 rows, the targets are
  // constant, or the rows differ in length; `lambda` >= 0 (the penalty on
  // standardized weights, times the number of rows).
  static absl::StatusOr<RidgeModel> Fit(
      const std::vector<std::vector<double>>& x, const std::vector<double>& y,
      double lambda);

  double Predict(const std::vector<double>& x) const;

 private:
  std::vector<double> mean_, scale_, weight_;
  double intercept_ = 0;
};

// The fitted surrogate and how well it ranks unseen configurations.
struct Surrogate {
  RidgeModel model;
  double lambda = 0;
  // Kendall's tau between the scores and the out-of-fold predictions of a
  // k-fold cross-validation (k = min(5, rows)) at the chosen lambda.
  double cv_tau = 0;
  size_t rows = 0;
};

// Fits the surrogate, choosing the ridge penalty from a small grid by
// cross-validated Kendall tau. FAILED_PRECONDITION, with the reason, when
// it cannot be fitted: fewer than `min_rows` rows, or constant targets.
// Callers fall back to plain offspring then; it is never a job error.
absl::StatusOr<Surrogate> FitSurrogate(
    const std::vector<std::vector<double>>& x, const std::vector<double>& y,
    size_t min_rows = 8);

}  // namespace autoq::search

#endif  // AUTOQ_SEARCH_SURROGATE_H_
