// Pareto utilities of the search: the non-dominated subset of scored points
// and the hypervolume indicator used to compare fronts.
#ifndef AUTOQ_SEARCH_PARETO_H_
#define AUTOQ_SEARCH_PARETO_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace autoq::search {

// Indices of the non-dominated points, every objective minimized. Of equal
// points only the first (lowest index) is kept. Points containing a NaN are
// never part of the result. Any number of objectives >= 1; all points must
// have the same number. The result is sorted lexicographically by the
// objectives (objective 0, then 1, ...), ties by index.
std::vector<size_t> NonDominated(
    const std::vector<std::vector<double>>& objectives);

// True when `a` is no worse than `b` in every objective (minimized) and
// better in one.
bool Dominates(const std::vector<double>& a, const std::vector<double>& b);

// The non-domination fronts of `f` (objective vectors, all minimized), the
// best first, each as ascending indices into `f`: the same fronts as
// pagmo::fast_non_dominated_sorting, in about O(n log n) comparisons when
// the fronts are small instead of its O(n^2). The guided search ranks
// population x screening candidates with the whole archive every
// generation, thousands of points when the population is large.
std::vector<std::vector<size_t>> NonDominatedFronts(
    const std::vector<std::vector<double>>& f);

// Area dominated by the 2-D points (both minimized) inside the box
// [-inf, ref[0]] x [-inf, ref[1]]. A point at or beyond ref in either
// coordinate contributes nothing; the others are clipped to the box. Input
// order and dominated points do not matter; NaN points are ignored.
double Hypervolume2D(std::vector<std::array<double, 2>> points,
                     std::array<double, 2> ref);

struct AccuracySize {
  double top1 = 0;  // any unit, the same as the float accuracy's
  int64_t size_bytes = 0;
};

// Hypervolume in the search's normalized objective space:
//   x = accuracy loss relative to float = (float_top1 - top1) / float_top1
//   y = size relative to float          = size_bytes / float_size_bytes
// with the reference point (1, 1): a model at 0 % accuracy (or worse, such as
// an unmeasured -1) or at float size adds nothing. Points better than float
// (negative loss) count fully, so the value may exceed 1. Normalizing makes
// the number comparable across models and accuracy units (percent or
// fraction). Returns 0 when the float accuracy or size is not positive.
double NormalizedHypervolume(const std::vector<AccuracySize>& points,
                             double float_top1, int64_t float_size_bytes);

// Hypervolume inside the region users deploy from, normalized to it:
//   x = (float_top1 - top1) / max_drop, clipped below at 0 (a point more
//       accurate than float counts as lossless)
//   y = size_bytes / size_ref_bytes (e.g. the uniform 8-bit model's size)
// with the reference point (1, 1), so the value lies in [0, 1] and points
// losing more than max_drop (same unit as top1) or larger than
// size_ref_bytes add nothing. Returns 0 when max_drop or size_ref_bytes is
// not positive.
double RegionHypervolume(const std::vector<AccuracySize>& points,
                         double float_top1, double max_drop,
                         int64_t size_ref_bytes);

}  // namespace autoq::search

#endif  // AUTOQ_SEARCH_PARETO_H_
