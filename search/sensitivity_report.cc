#include "search/sensitivity_report.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "qat/cost_model.h"
#include "search/report.h"

namespace autoq::search {
namespace {

// White (no increase) to dark red (>= 1 nat), log scale from 1e-4.
std::string HeatColor(double penalty) {
  const double t =
      std::clamp((std::log10(std::max(penalty, 1e-4)) + 4.0) / 4.0, 0.0, 1.0);
  const int r = static_cast<int>(255 - 75 * t);
  const int g = static_cast<int>(255 - 235 * t);
  const int b = static_cast<int>(255 - 225 * t);
  return absl::StrFormat("#%02x%02x%02x", r, g, b);
}

}  // namespace

std::vector<LayerChoices> ChoicesFromSensitivity(
    const qat::ModelAnalysis& analysis, const qat::SensitivityTable& table,
    qat::Granularity granularity, int abits) {
  const size_t genes = static_cast<size_t>(analysis.num_genes());
  std::vector<LayerChoices> out(genes);
  for (int b = table.min_bits; b <= table.max_bits; ++b) {
    const qat::ModelCost cost = qat::ComputeCost(
        analysis, std::vector<qat::LayerBits>(genes, {b, abits}), granularity);
    for (size_t i = 0; i < genes && i < cost.layers.size(); ++i) {
      out[i].bits.push_back(b);
      out[i].size_bytes.push_back(cost.layers[i].total_bytes());
      out[i].penalty.push_back(table.Penalty(i, b));
    }
  }
  return out;
}

std::string FormatSensitivityTable(const qat::SensitivityTable& t) {
  std::string out = absl::StrFormat(
      "reference (every layer at %d bits, float activations): loss %.4f, "
      "top-1 %.2f%% on %lld images\n",
      t.max_bits, t.reference_loss, t.reference_top1,
      static_cast<long long>(t.images));
  size_t name_w = 5;
  for (const std::string& l : t.layers) name_w = std::max(name_w, l.size());
  name_w = std::min<size_t>(name_w, 40);
  absl::StrAppend(&out, absl::StrFormat("%-4s %-*s", "#", name_w, "layer"));
  for (int b = t.min_bits; b <= t.max_bits; ++b) {
    absl::StrAppend(&out, absl::StrFormat(" %9s", absl::StrCat("dloss@", b)));
  }
  absl::StrAppend(
      &out, absl::StrFormat(" %11s\n", absl::StrCat("top-1@", t.min_bits)));
  for (size_t g = 0; g < t.layers.size(); ++g) {
    std::string name = t.layers[g];
    if (name.size() > name_w) name = name.substr(0, name_w - 1) + "~";
    absl::StrAppend(
        &out, absl::StrFormat("%-4d %-*s", static_cast<int>(g), name_w, name));
    for (int b = t.min_bits; b <= t.max_bits; ++b) {
      absl::StrAppend(&out, absl::StrFormat(" %9.4f", t.Penalty(g, b)));
    }
    absl::StrAppend(
        &out,
        absl::StrFormat(" %10.2f%%\n", g < t.top1.size() && !t.top1[g].empty()
                                           ? t.top1[g][0]
                                           : -1.0));
  }
  return out;
}

std::string RenderSensitivityJson(const qat::SensitivityTable& t) {
  nlohmann::json j;
  j["min_bits"] = t.min_bits;
  j["max_bits"] = t.max_bits;
  j["images"] = t.images;
  j["seconds"] = t.seconds;
  j["reference"] = {{"loss", t.reference_loss}, {"top1", t.reference_top1}};
  j["layers"] = nlohmann::json::array();
  for (size_t g = 0; g < t.layers.size(); ++g) {
    nlohmann::json l;
    l["index"] = g;
    l["name"] = t.layers[g];
    l["bits"] = nlohmann::json::array();
    for (int b = t.min_bits; b <= t.max_bits; ++b) {
      const size_t k = static_cast<size_t>(b - t.min_bits);
      l["bits"].push_back({{"bits", b},
                           {"loss", t.loss[g][k]},
                           {"top1", t.top1[g][k]},
                           {"loss_increase", t.Penalty(g, b)}});
    }
    j["layers"].push_back(std::move(l));
  }
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::string RenderSensitivitySvg(const qat::SensitivityTable& t) {
  const double cell_w = 64, cell_h = 22, left = 260, top = 70;
  const int widths = t.max_bits - t.min_bits + 1;
  const double width = left + widths * cell_w + 30;
  const double height = top + t.layers.size() * cell_h + 50;
  std::string s = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" "
      "height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" font-family=\"Helvetica, "
      "Arial, sans-serif\" font-size=\"11\">\n<rect width=\"100%%\" "
      "height=\"100%%\" fill=\"white\"/>\n",
      width, height, width, height);
  absl::StrAppend(
      &s, absl::StrFormat(
              "<text x=\"20\" y=\"24\" font-size=\"15\" font-weight=\"bold\">"
              "Per-layer sensitivity: validation loss increase, one layer "
              "quantized</text>\n<text x=\"20\" y=\"42\" fill=\"#333\">"
              "Reference: every layer at %d bits (loss %.4f, top-1 %.2f %%), "
              "%lld images, float activations</text>\n",
              t.max_bits, t.reference_loss, t.reference_top1,
              static_cast<long long>(t.images)));
  for (int b = t.min_bits; b <= t.max_bits; ++b) {
    absl::StrAppend(
        &s,
        absl::StrFormat("<text x=\"%.1f\" y=\"%.1f\" "
                        "text-anchor=\"middle\">%d bits</text>\n",
                        left + (b - t.min_bits + 0.5) * cell_w, top - 8, b));
  }
  for (size_t g = 0; g < t.layers.size(); ++g) {
    const double y = top + g * cell_h;
    std::string name = absl::StrCat(g, " ", t.layers[g]);
    if (name.size() > 40) name = name.substr(0, 39) + "~";
    absl::StrAppend(
        &s, absl::StrFormat("<text x=\"%.1f\" y=\"%.1f\" "
                            "text-anchor=\"end\">%s</text>\n",
                            left - 8, y + cell_h * 0.7, XmlEscape(name)));
    for (int b = t.min_bits; b <= t.max_bits; ++b) {
      const double x = left + (b - t.min_bits) * cell_w;
      const double p = t.Penalty(g, b);
      absl::StrAppend(
          &s,
          absl::StrFormat("<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                          "height=\"%.1f\" fill=\"%s\" stroke=\"#ddd\"/>\n"
                          "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" "
                          "fill=\"%s\">%.3g</text>\n",
                          x, y, cell_w, cell_h, HeatColor(p), x + cell_w / 2,
                          y + cell_h * 0.7, p > 0.1 ? "white" : "#222", p));
    }
  }
  absl::StrAppend(&s, "</svg>\n");
  return s;
}

}  // namespace autoq::search
