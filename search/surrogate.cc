#include "search/surrogate.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace autoq::search {
namespace {

// Solves A w = b for a symmetric positive definite A (row-major d x d) by
// Cholesky. A ridge penalty > 0 keeps A positive definite; with none, a
// singular A gets a tiny jitter instead of NaNs.
std::vector<double> SolveSpd(std::vector<double> a, std::vector<double> b,
                             size_t d) {
  for (size_t j = 0; j < d; ++j) {
    double diag = a[j * d + j];
    for (size_t k = 0; k < j; ++k) diag -= a[j * d + k] * a[j * d + k];
    diag = std::sqrt(std::max(diag, 1e-12));
    a[j * d + j] = diag;
    for (size_t i = j + 1; i < d; ++i) {
      double v = a[i * d + j];
      for (size_t k = 0; k < j; ++k) v -= a[i * d + k] * a[j * d + k];
      a[i * d + j] = v / diag;
    }
  }
  // L y = b, then L^T w = y.
  for (size_t i = 0; i < d; ++i) {
    for (size_t k = 0; k < i; ++k) b[i] -= a[i * d + k] * b[k];
    b[i] /= a[i * d + i];
  }
  for (size_t i = d; i-- > 0;) {
    for (size_t k = i + 1; k < d; ++k) b[i] -= a[k * d + i] * b[k];
    b[i] /= a[i * d + i];
  }
  return b;
}

bool Constant(const std::vector<double>& y) {
  if (y.empty()) return true;
  const auto [lo, hi] = std::minmax_element(y.begin(), y.end());
  return *hi - *lo <= 1e-12 * std::max(1.0, std::fabs(*hi));
}

// Out-of-fold predictions of a k-fold cross-validation (row i in fold
// i % k), or an error when a fold's training part cannot be fitted.
absl::StatusOr<std::vector<double>> OutOfFold(
    const std::vector<std::vector<double>>& x, const std::vector<double>& y,
    double lambda, size_t folds) {
  std::vector<double> pred(y.size());
  for (size_t f = 0; f < folds; ++f) {
    std::vector<std::vector<double>> tx;
    std::vector<double> ty;
    for (size_t i = 0; i < y.size(); ++i) {
      if (i % folds == f) continue;
      tx.push_back(x[i]);
      ty.push_back(y[i]);
    }
    absl::StatusOr<RidgeModel> m = RidgeModel::Fit(tx, ty, lambda);
    if (!m.ok()) return m.status();
    for (size_t i = f; i < y.size(); i += folds) pred[i] = m->Predict(x[i]);
  }
  return pred;
}

}  // namespace

double KendallTau(const std::vector<double>& a, const std::vector<double>& b) {
  // Knight's O(n log n) tau-b: order by (a, b), count the ties in a and in
  // both, then count discordant pairs as the inversions of b that a merge
  // sort undoes. The surrogate is cross-validated on every configuration
  // scored, tens of thousands on a long search with a large population.
  const size_t n = std::min(a.size(), b.size());
  if (n < 2) return 0;
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t i, size_t j) {
    return a[i] != a[j] ? a[i] < a[j] : b[i] < b[j];
  });
  auto tied_pairs = [&](auto same) {  // pairs within runs of `same` keys
    double pairs = 0, run = 1;
    for (size_t k = 1; k <= n; ++k) {
      if (k < n && same(order[k - 1], order[k])) {
        ++run;
      } else {
        pairs += run * (run - 1) / 2;
        run = 1;
      }
    }
    return pairs;
  };
  const double tied_a =
      tied_pairs([&](size_t i, size_t j) { return a[i] == a[j]; });
  const double tied_both = tied_pairs(
      [&](size_t i, size_t j) { return a[i] == a[j] && b[i] == b[j]; });
  // Bottom-up merge sort of b in that order, counting strict inversions.
  std::vector<double> v(n), buffer(n);
  for (size_t k = 0; k < n; ++k) v[k] = b[order[k]];
  double discordant = 0;
  for (size_t width = 1; width < n; width *= 2) {
    for (size_t lo = 0; lo < n; lo += 2 * width) {
      const size_t mid = std::min(lo + width, n),
                   hi = std::min(lo + 2 * width, n);
      size_t i = lo, j = mid, out = lo;
      while (i < mid && j < hi) {
        if (v[j] < v[i]) {
          discordant += mid - i;
          buffer[out++] = v[j++];
        } else {
          buffer[out++] = v[i++];
        }
      }
      while (i < mid) buffer[out++] = v[i++];
      while (j < hi) buffer[out++] = v[j++];
    }
    v.swap(buffer);
  }
  double tied_b = 0, run = 1;
  for (size_t k = 1; k <= n; ++k) {
    if (k < n && v[k] == v[k - 1]) {
      ++run;
    } else {
      tied_b += run * (run - 1) / 2;
      run = 1;
    }
  }
  const double pairs = static_cast<double>(n) * (n - 1) / 2;
  const double na = pairs - tied_a;  // pairs untied in a
  const double nb = pairs - tied_b;  // pairs untied in b
  if (na == 0 || nb == 0) return 0;
  const double concordant_minus_discordant =
      pairs - tied_a - tied_b + tied_both - 2 * discordant;
  return concordant_minus_discordant / std::sqrt(na * nb);
}

absl::StatusOr<RidgeModel> RidgeModel::Fit(
    const std::vector<std::vector<double>>& x, const std::vector<double>& y,
    double lambda) {
  const size_t n = y.size();
  if (n < 3 || x.size() != n) {
    return absl::FailedPreconditionError(
        absl::StrCat("ridge regression needs at least 3 rows, got ", n));
  }
  if (Constant(y)) {
    return absl::FailedPreconditionError("the scores are all the same");
  }
  const size_t d = x[0].size();
  for (const std::vector<double>& row : x) {
    if (row.size() != d) {
      return absl::FailedPreconditionError("the rows differ in length");
    }
  }
  RidgeModel m;
  m.mean_.assign(d, 0);
  m.scale_.assign(d, 0);
  m.weight_.assign(d, 0);
  for (const std::vector<double>& row : x) {
    for (size_t k = 0; k < d; ++k) m.mean_[k] += row[k] / n;
  }
  for (const std::vector<double>& row : x) {
    for (size_t k = 0; k < d; ++k) {
      m.scale_[k] += (row[k] - m.mean_[k]) * (row[k] - m.mean_[k]) / n;
    }
  }
  std::vector<size_t> used;  // features that vary
  for (size_t k = 0; k < d; ++k) {
    m.scale_[k] = std::sqrt(m.scale_[k]);
    if (m.scale_[k] > 1e-12) used.push_back(k);
  }
  double ymean = 0;
  for (double v : y) ymean += v / n;
  m.intercept_ = ymean;
  const size_t u = used.size();
  if (u == 0) return m;
  std::vector<double> a(u * u, 0), b(u, 0);
  for (size_t i = 0; i < n; ++i) {
    std::vector<double> z(u);
    for (size_t p = 0; p < u; ++p) {
      const size_t k = used[p];
      z[p] = (x[i][k] - m.mean_[k]) / m.scale_[k];
    }
    for (size_t p = 0; p < u; ++p) {
      b[p] += z[p] * (y[i] - ymean);
      for (size_t q = 0; q < u; ++q) a[p * u + q] += z[p] * z[q];
    }
  }
  for (size_t p = 0; p < u; ++p) a[p * u + p] += lambda * n;
  const std::vector<double> w = SolveSpd(std::move(a), std::move(b), u);
  for (size_t p = 0; p < u; ++p) m.weight_[used[p]] = w[p];
  return m;
}

double RidgeModel::Predict(const std::vector<double>& x) const {
  double v = intercept_;
  for (size_t k = 0; k < weight_.size() && k < x.size(); ++k) {
    if (weight_[k] != 0) v += weight_[k] * (x[k] - mean_[k]) / scale_[k];
  }
  return v;
}

absl::StatusOr<Surrogate> FitSurrogate(
    const std::vector<std::vector<double>>& x, const std::vector<double>& y,
    size_t min_rows) {
  const size_t n = y.size();
  if (n < std::max<size_t>(min_rows, 3)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "only ", n, " configurations scored (", min_rows, " needed)"));
  }
  if (Constant(y)) {
    return absl::FailedPreconditionError("every configuration scored the same");
  }
  const size_t folds = std::min<size_t>(5, n);
  Surrogate best;
  bool found = false;
  for (double lambda : {0.001, 0.01, 0.1, 1.0}) {
    absl::StatusOr<std::vector<double>> pred = OutOfFold(x, y, lambda, folds);
    if (!pred.ok()) continue;  // a fold with constant scores
    const double tau = KendallTau(*pred, y);
    if (!found || tau > best.cv_tau) {
      best.lambda = lambda;
      best.cv_tau = tau;
      found = true;
    }
  }
  if (!found) {
    return absl::FailedPreconditionError(
        "cross-validation folds have constant scores");
  }
  absl::StatusOr<RidgeModel> model = RidgeModel::Fit(x, y, best.lambda);
  if (!model.ok()) return model.status();
  best.model = *std::move(model);
  best.rows = n;
  return best;
}

}  // namespace autoq::search
