#include "search/pareto.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace autoq::search {
namespace {

bool HasNaN(const std::vector<double>& p) {
  return std::any_of(p.begin(), p.end(),
                     [](double v) { return std::isnan(v); });
}

}  // namespace

bool Dominates(const std::vector<double>& a, const std::vector<double>& b) {
  bool better = false;
  for (size_t k = 0; k < a.size(); ++k) {
    if (a[k] > b[k]) return false;
    if (a[k] < b[k]) better = true;
  }
  return better;
}

std::vector<std::vector<size_t>> NonDominatedFronts(
    const std::vector<std::vector<double>>& f) {
  // Efficient non-dominated sort with binary search over fronts (Zhang et
  // al. 2015): in lexicographic order nothing can dominate an earlier
  // point, and if front k holds a dominator of p so does every front
  // before k. So each point goes to the first front with no dominator,
  // found by bisection, comparing it only with that front's members.
  std::vector<size_t> order(f.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return f[a] < f[b]; });
  std::vector<std::vector<size_t>> fronts;
  auto dominated_in = [&](size_t front, size_t p) {
    const std::vector<size_t>& members = fronts[front];
    // Later members are the likelier dominators (closest in order).
    for (size_t m = members.size(); m-- > 0;) {
      if (Dominates(f[members[m]], f[p])) return true;
    }
    return false;
  };
  for (size_t p : order) {
    size_t lo = 0, hi = fronts.size();  // answer in [lo, hi]
    while (lo < hi) {
      const size_t mid = lo + (hi - lo) / 2;
      if (dominated_in(mid, p)) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    if (lo == fronts.size()) fronts.emplace_back();
    fronts[lo].push_back(p);
  }
  for (std::vector<size_t>& front : fronts) {
    std::sort(front.begin(), front.end());
  }
  return fronts;
}

std::vector<size_t> NonDominated(
    const std::vector<std::vector<double>>& objectives) {
  // Sorting first means a point can only be dominated by (or equal to) an
  // earlier one, so each point is checked against the kept points only.
  std::vector<size_t> order;
  order.reserve(objectives.size());
  for (size_t i = 0; i < objectives.size(); ++i) {
    if (!HasNaN(objectives[i])) order.push_back(i);
  }
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return objectives[a] < objectives[b];
  });
  std::vector<size_t> kept;
  for (size_t i : order) {
    const std::vector<double>& p = objectives[i];
    const bool out = std::any_of(kept.begin(), kept.end(), [&](size_t k) {
      return objectives[k] == p || Dominates(objectives[k], p);
    });
    if (!out) kept.push_back(i);
  }
  return kept;
}

double Hypervolume2D(std::vector<std::array<double, 2>> points,
                     std::array<double, 2> ref) {
  points.erase(std::remove_if(points.begin(), points.end(),
                              [&](const std::array<double, 2>& p) {
                                // !(p < ref) also drops NaN.
                                return !(p[0] < ref[0]) || !(p[1] < ref[1]);
                              }),
               points.end());
  std::sort(points.begin(), points.end());
  // Sweep by increasing x: each point that lowers the best y so far adds the
  // strip between its y and the previous best, as wide as ref[0] - x.
  double area = 0;
  double best_y = ref[1];
  for (const std::array<double, 2>& p : points) {
    if (p[1] < best_y) {
      area += (ref[0] - p[0]) * (best_y - p[1]);
      best_y = p[1];
    }
  }
  return area;
}

double NormalizedHypervolume(const std::vector<AccuracySize>& points,
                             double float_top1, int64_t float_size_bytes) {
  if (!(float_top1 > 0) || float_size_bytes <= 0) return 0;
  std::vector<std::array<double, 2>> normalized;
  normalized.reserve(points.size());
  for (const AccuracySize& p : points) {
    normalized.push_back({(float_top1 - p.top1) / float_top1,
                          static_cast<double>(p.size_bytes) /
                              static_cast<double>(float_size_bytes)});
  }
  return Hypervolume2D(std::move(normalized), {1.0, 1.0});
}

double RegionHypervolume(const std::vector<AccuracySize>& points,
                         double float_top1, double max_drop,
                         int64_t size_ref_bytes) {
  if (!(max_drop > 0) || size_ref_bytes <= 0) return 0;
  std::vector<std::array<double, 2>> normalized;
  normalized.reserve(points.size());
  for (const AccuracySize& p : points) {
    normalized.push_back({std::max(0.0, (float_top1 - p.top1) / max_drop),
                          static_cast<double>(p.size_bytes) /
                              static_cast<double>(size_ref_bytes)});
  }
  return Hypervolume2D(std::move(normalized), {1.0, 1.0});
}

}  // namespace autoq::search
