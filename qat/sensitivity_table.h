// The result of a per-layer sensitivity measurement (qat/sensitivity.h),
// as plain values: what the search's seeding reads and reports print,
// without LibTorch.
#ifndef AUTOQ_QAT_SENSITIVITY_TABLE_H_
#define AUTOQ_QAT_SENSITIVITY_TABLE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "qat/quant_config.h"

namespace autoq::qat {

struct SensitivityTable {
  int min_bits = kMinBits, max_bits = kMaxBits;
  std::vector<std::string> layers;  // module paths, one per gene
  // Every gene at max_bits, on the same images: the reference.
  double reference_loss = 0, reference_top1 = 0;
  // [gene][bits - min_bits]: mean cross-entropy and top-1 (percent) with
  // that gene's weights at `bits`, the others at max_bits.
  std::vector<std::vector<double>> loss, top1;
  int64_t images = 0;
  double seconds = 0;

  // The additive penalty of the search's prior: the largest loss increase
  // over reference_loss measured at `bits` or more (never below 0), so it
  // never falls as bits fall. A measured increase of about 0 at 3 bits
  // between 0.004 at 4 and 5 bits is noise, not a free 3-bit layer. 0
  // outside [min_bits, max_bits].
  double Penalty(size_t gene, int bits) const;
};

}  // namespace autoq::qat

#endif  // AUTOQ_QAT_SENSITIVITY_TABLE_H_
