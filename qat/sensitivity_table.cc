#include "qat/sensitivity_table.h"

#include <algorithm>

namespace autoq::qat {

double SensitivityTable::Penalty(size_t gene, int bits) const {
  if (gene >= loss.size() || bits < min_bits || bits > max_bits) return 0;
  const std::vector<double>& row = loss[gene];
  double worst = reference_loss;
  for (int b = bits; b <= max_bits; ++b) {
    const size_t k = static_cast<size_t>(b - min_bits);
    if (k < row.size()) worst = std::max(worst, row[k]);
  }
  return worst - reference_loss;
}

}  // namespace autoq::qat
