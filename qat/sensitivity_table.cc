#include "qat/sensitivity_table.h"

#include <algorithm>

namespace autoq::qat {

double SensitivityTable::Penalty(size_t gene, int bits) const {
  if (gene >= loss.size() || bits < min_bits || bits > max_bits) return 0;
  return std::max(
      0.0, loss[gene][static_cast<size_t>(bits - min_bits)] - reference_loss);
}

}  // namespace autoq::qat
