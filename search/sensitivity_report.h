// What `autoq sensitivity` prints and writes: a per-layer table, JSON and an
// SVG heatmap of a qat::SensitivityTable, and the knapsack's choices for
// it (per-layer sizes from the cost model, penalties from the table).
#ifndef AUTOQ_SEARCH_SENSITIVITY_REPORT_H_
#define AUTOQ_SEARCH_SENSITIVITY_REPORT_H_

#include <string>
#include <vector>

#include "qat/model_info.h"
#include "qat/quant_config.h"
#include "qat/sensitivity_table.h"
#include "search/knapsack.h"

namespace autoq::search {

// One LayerChoices per gene: bits min_bits..max_bits of the table, each
// layer's exact size at those weight bits (activations at `abits`) and the
// table's penalty.
std::vector<LayerChoices> ChoicesFromSensitivity(
    const qat::ModelAnalysis& analysis, const qat::SensitivityTable& table,
    qat::Granularity granularity, int abits);

// Text: a header line, then one row per layer with the loss increase per
// bit-width and the top-1 at the lowest one.
std::string FormatSensitivityTable(const qat::SensitivityTable& table);

// JSON with every number of the table (pretty-printed).
std::string RenderSensitivityJson(const qat::SensitivityTable& table);

// A self-contained SVG heatmap: layers down, bit-widths across, the loss
// increase as color (log scale) and number.
std::string RenderSensitivitySvg(const qat::SensitivityTable& table);

}  // namespace autoq::search

#endif  // AUTOQ_SEARCH_SENSITIVITY_REPORT_H_
