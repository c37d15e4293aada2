// One generation of the guided search: breed many offspring with NSGA-II's
// variation, predict their objectives with a surrogate fitted on every
// configuration scored so far (exact size and BOPs from the cost model, the
// accuracy loss from ridge regression), send only a population's worth to
// QAT, then keep NSGA-II's survivors of parents + offspring.
//
// A quarter of the offspring sent to QAT are plain (unscreened) ones, so the
// search keeps exploring where the surrogate is wrong. When the surrogate
// cannot be fitted (too few points, constant scores) or ranks poorly
// (cross-validated Kendall tau below kMinSurrogateTau), the whole
// generation is plain offspring, with a log line; never an error.
//
// Thread-safety: as Objectives (the search's thread only).
#ifndef AUTOQ_SEARCH_SCREENING_H_
#define AUTOQ_SEARCH_SCREENING_H_

#include <cstdint>
#include <cstdio>
#include <vector>

#include "absl/status/status.h"
#include "evaluator/job_config.h"
#include "qat/quant_config.h"
#include "qat/sensitivity_table.h"
#include "search/problem.h"

namespace autoq::search {

// Below this cross-validated rank correlation the surrogate is not used.
inline constexpr double kMinSurrogateTau = 0.3;

// The surrogate's features of a configuration: per layer 2^-wbits (the
// scale of its quantization noise), the sensitivity penalty at those bits
// when `prior` is given, and 2^-abits when activation bits are searched.
std::vector<double> SurrogateFeatures(const std::vector<qat::LayerBits>& bits,
                                      const qat::SensitivityTable* prior,
                                      bool search_abits);

// What one screened generation did, for the log and tests.
struct ScreeningStats {
  bool screened = false;  // false: plain offspring only (see `why`)
  std::string why;        // why the surrogate was not used
  double cv_tau = 0;      // when fitted
  size_t training_rows = 0;
  size_t bred = 0;           // distinct new candidates
  size_t by_prediction = 0;  // sent to QAT on the surrogate's word
  size_t exploratory = 0;    // sent to QAT unscreened
};

// Replaces `genes`/`fitness` (the population, at least 2) by the next
// generation. `seed` fixes the generation's random choices, so a resumed
// search repeats it exactly. `prior` may be null. Errors are the
// evaluation's (Objectives::Score).
absl::StatusOr<ScreeningStats> ScreenedGeneration(
    const evaluator::SearchOptions& options, Objectives& objectives,
    const qat::SensitivityTable* prior, uint32_t seed,
    std::vector<std::vector<int>>* genes,
    std::vector<std::vector<double>>* fitness);

}  // namespace autoq::search

#endif  // AUTOQ_SEARCH_SCREENING_H_
