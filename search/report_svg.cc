// RenderFrontSvg: a hand-written, self-contained SVG of the final front, so
// the report opens in any browser without plotting libraries.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "search/report.h"

#include "common/file_util.h"

namespace autoq::search {

std::string XmlEscape(absl::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

namespace {

constexpr const char* kFrontColor = "#1f77b4";
constexpr const char* kUniformColor = "#e6550d";
constexpr const char* kBaselineColor = "#6a3d9a";
// Bar colors of the front points (Tableau 10), reused cyclically.
constexpr const char* kPalette[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2",
                                    "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
                                    "#9c755f", "#bab0ac"};
constexpr size_t kPaletteSize = sizeof(kPalette) / sizeof(kPalette[0]);

// Pixel coordinates: one decimal is plenty.
std::string Px(double v) { return absl::StrFormat("%.1f", v); }

// 1, 2 or 5 times a power of ten, giving about `target` intervals.
double NiceStep(double range, int target) {
  const double raw = range / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double norm = raw / mag;
  return (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
}

struct Axis {
  double lo = 0, hi = 1;
  bool log = false;
  std::vector<double> ticks;
  int decimals = 0;  // of the tick labels

  // Maps `v` from [lo, hi] onto the pixel interval [a, b].
  double Map(double v, double a, double b) const {
    const double t =
        log ? (std::log(v) - std::log(lo)) / (std::log(hi) - std::log(lo))
            : (v - lo) / (hi - lo);
    return a + t * (b - a);
  }
  std::string Label(double v) const {
    return log ? absl::StrFormat("%g", v)
               : absl::StrFormat("%.*f", decimals, v);
  }
};

// Nice ticks that enclose [min, max]; never below 0 when min >= 0.
Axis LinearAxis(double min, double max) {
  if (!(max > min)) {
    const double pad = std::max(std::abs(min) * 0.1, 1.0);
    min -= pad;
    max += pad;
  }
  const double margin = (max - min) * 0.05;
  const bool non_negative = min >= 0;
  min -= margin;
  max += margin;
  if (non_negative) min = std::max(min, 0.0);
  Axis axis;
  const double step = NiceStep(max - min, 5);
  axis.lo = std::floor(min / step) * step;
  axis.hi = std::ceil(max / step) * step;
  axis.decimals =
      std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9)));
  for (int i = 0;; ++i) {
    const double t = axis.lo + i * step;
    if (t > axis.hi + step * 1e-6) break;
    axis.ticks.push_back(t);
  }
  return axis;
}

// For sizes over more than a decade: ticks at 1, 2 and 5 times powers of ten.
Axis LogAxis(double min, double max) {
  Axis axis;
  axis.log = true;
  axis.lo = min / 1.15;
  axis.hi = max * 1.15;
  for (double mag = std::pow(10.0, std::floor(std::log10(axis.lo)));
       mag <= axis.hi; mag *= 10) {
    for (double m : {1.0, 2.0, 5.0}) {
      const double t = m * mag;
      if (t >= axis.lo && t <= axis.hi) axis.ticks.push_back(t);
    }
  }
  return axis;
}

double Kb(int64_t bytes) { return bytes / 1024.0; }

std::vector<const FrontPoint*> Measured(const std::vector<FrontPoint>& list) {
  std::vector<const FrontPoint*> out;
  for (const FrontPoint& p : list) {
    if (p.test_top1 >= 0 && p.size_bytes > 0) out.push_back(&p);
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const FrontPoint* a, const FrontPoint* b) {
                     return a->size_bytes < b->size_bytes;
                   });
  return out;
}

std::string Tooltip(const FrontPoint& p) {
  std::string s = absl::StrFormat("%s: %.1f KB, test top-1 %.2f %%",
                                  p.label, Kb(p.size_bytes), p.test_top1);
  if (!p.wbits.empty()) absl::StrAppend(&s, ", w ", absl::StrJoin(p.wbits, ","));
  if (!p.abits.empty())
    absl::StrAppend(&s, ", a ", absl::StrJoin(p.abits, ","));
  return s;
}

// "4b" for a uniform point with 4-bit weights everywhere.
std::string UniformTag(const FrontPoint& p) {
  if (!p.wbits.empty() &&
      std::all_of(p.wbits.begin(), p.wbits.end(),
                  [&](int b) { return b == p.wbits.front(); })) {
    return absl::StrCat(p.wbits.front(), "b");
  }
  return p.label;
}

// "uniform bits (2b..8b)" from the uniform points present.
std::string UniformLegend(const std::vector<const FrontPoint*>& uniform) {
  int lo = 1 << 30, hi = -1;
  for (const FrontPoint* p : uniform) {
    for (int b : p->wbits) {
      lo = std::min(lo, b);
      hi = std::max(hi, b);
    }
  }
  if (hi < 0) return "uniform bits";
  return lo == hi ? absl::StrCat("uniform bits (", lo, "b)")
                  : absl::StrCat("uniform bits (", lo, "b..", hi, "b)");
}

std::string Text(double x, double y, absl::string_view text,
                 absl::string_view attrs = "") {
  return absl::StrCat("<text x=\"", Px(x), "\" y=\"", Px(y), "\"",
                      attrs.empty() ? "" : " ", attrs, ">", XmlEscape(text),
                      "</text>\n");
}

std::string Line(double x1, double y1, double x2, double y2,
                 absl::string_view attrs) {
  return absl::StrCat("<line x1=\"", Px(x1), "\" y1=\"", Px(y1), "\" x2=\"",
                      Px(x2), "\" y2=\"", Px(y2), "\" ", attrs, "/>\n");
}

// Where everything goes. Plots left, legends in a right column; the
// bottom chart grows with the number of front points (its legend) and
// leaves room below for the rotated layer labels.
struct Layout {
  size_t genes = 0;  // columns of the bit-width chart
  size_t bars = 0;   // front points: one bar each per column
  int max_bits = 8;
  std::vector<std::string> layer_labels;  // "3 layer1.0.conv", per gene
  double width = 0, height = 0;
  double px0 = 0, px1 = 0;  // plot area of both panels
  double top_y0 = 70, top_y1 = 390;
  double bottom_title_y = 0, bot_y0 = 0, bot_y1 = 0;
};

Layout ComputeLayout(const FrontReport& r) {
  Layout l;
  l.genes = r.layer_names.size();
  for (const FrontPoint& p : r.front) {
    l.genes = std::max(l.genes, p.wbits.size());
    for (int b : p.wbits) l.max_bits = std::max(l.max_bits, b);
  }
  l.bars = r.front.size();
  const double min_group = std::max(18.0, l.bars * 6.0 + 8);

  size_t label_chars = 0;
  for (size_t i = 0; i < l.genes; ++i) {
    std::string name =
        i < r.layer_names.size() ? r.layer_names[i] : std::string("layer");
    if (name.size() > 32) name = name.substr(0, 31) + "~";
    l.layer_labels.push_back(absl::StrCat(i, " ", name));
    label_chars = std::max(label_chars, l.layer_labels.back().size());
  }
  // Rotated (-45 degrees) layer labels reach about 4.6 px per character
  // down and to the left; the left margin keeps the first one on the page.
  const double label_reach = label_chars * 4.6;

  const double left = std::max(80.0, label_reach - min_group / 2 + 10);
  const double legend_w = 240;
  l.width = std::max(900.0, left + legend_w + 20 + l.genes * min_group);
  l.px0 = left;
  l.px1 = l.width - legend_w;
  l.bottom_title_y = l.top_y1 + 75;
  l.bot_y0 = l.bottom_title_y + 25;
  l.bot_y1 = l.bot_y0 + std::max(180.0, l.bars * 18.0 + 10);
  l.height = l.bot_y1 + 30 + label_reach + 20;
  return l;
}

std::vector<const FrontPoint*> Concat(const std::vector<const FrontPoint*>& a,
                                      const std::vector<const FrontPoint*>& b) {
  std::vector<const FrontPoint*> out = a;
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

// The size axis of the scatter panel, in KB: logarithmic when the sizes
// span more than a decade.
Axis SizeAxis(const std::vector<const FrontPoint*>& front,
              const std::vector<const FrontPoint*>& uniform) {
  double xmin = INFINITY, xmax = -INFINITY;
  for (const auto* list : {&front, &uniform}) {
    for (const FrontPoint* p : *list) {
      xmin = std::min(xmin, Kb(p->size_bytes));
      xmax = std::max(xmax, Kb(p->size_bytes));
    }
  }
  const bool has_points = xmin <= xmax;
  if (!has_points) {
    xmin = 0;
    xmax = 1;
  }
  return has_points && xmax > 10 * xmin ? LogAxis(xmin, xmax)
                                        : LinearAxis(xmin, xmax);
}

// The accuracy axis of the scatter panel. A collapsed low-bit uniform model
// (say 10 %) would squeeze the front into a sliver, so the axis spans the
// front and the float model, plus the uniform points no farther below the
// front than the front's own distance to float. Lower points are pinned to
// the bottom edge.
Axis AccuracyAxis(const FrontReport& r,
                  const std::vector<const FrontPoint*>& front,
                  const std::vector<const FrontPoint*>& uniform) {
  double ymin = INFINITY, ymax = -INFINITY;
  double reference = r.float_test_top1 > 0 ? r.float_test_top1 : -INFINITY;
  for (const FrontPoint* p : front) {
    ymin = std::min(ymin, p->test_top1);
    ymax = std::max(ymax, p->test_top1);
    reference = std::max(reference, p->test_top1);
  }
  const double cut =
      front.empty() ? -INFINITY : ymin - std::max(reference - ymin, 1.0);
  for (const FrontPoint* p : uniform) {
    if (p->test_top1 < cut) continue;
    ymin = std::min(ymin, p->test_top1);
    ymax = std::max(ymax, p->test_top1);
  }
  if (r.float_test_top1 > 0) {
    ymin = std::min(ymin, r.float_test_top1);
    ymax = std::max(ymax, r.float_test_top1);
  }
  if (!(ymin <= ymax)) {
    ymin = 0;
    ymax = 100;
  }
  return LinearAxis(ymin, ymax);
}

// One rendering of a report: the layout and the scatter panel's axes are
// fixed up front, then each phase appends its elements to the document.
class FrontSvg {
 public:
  explicit FrontSvg(const FrontReport& r)
      : r_(r),
        cmp_(CompareWithUniform(r)),
        front_(Measured(r.front)),
        uniform_(Measured(r.uniform)),
        baselines_(Measured(r.baselines)),
        others_(Concat(uniform_, baselines_)),
        l_(ComputeLayout(r)),
        has_points_(!front_.empty() || !others_.empty()),
        xa_(SizeAxis(front_, others_)),
        ya_(AccuracyAxis(r, front_, others_)) {}

  std::string Render() {
    Header();
    ScatterFrame();
    ScatterPoints();
    ScatterLegend();
    BitsChart();
    absl::StrAppend(&s_, "</svg>\n");
    return std::move(s_);
  }

 private:
  // Scatter panel coordinates. Accuracies below the axis are pinned just
  // above the bottom edge.
  double X(double kb) const { return xa_.Map(kb, l_.px0, l_.px1); }
  double Y(double top1) const {
    return top1 < ya_.lo ? l_.top_y1 - 6 : ya_.Map(top1, l_.top_y1, l_.top_y0);
  }
  // Bit-width chart coordinate.
  double BY(double bits) const {
    return l_.bot_y1 - bits / l_.max_bits * (l_.bot_y1 - l_.bot_y0);
  }

  void Header();
  void ScatterFrame();
  void FloatLine();
  std::string Polyline(const std::vector<const FrontPoint*>& pts,
                       const char* color) const;
  void ScatterPoints();
  void ScatterLegend();
  void BitsChart();
  void BitsGrid();
  void BitsColumn(size_t i, double gw);
  void BitsLegend();

  const FrontReport& r_;
  const FrontComparison cmp_;
  const std::vector<const FrontPoint*> front_, uniform_, baselines_;
  // The uniform points and the baselines: what the axes fit besides the
  // front.
  const std::vector<const FrontPoint*> others_;
  const Layout l_;
  const bool has_points_;  // any measured point in the scatter panel
  const Axis xa_, ya_;
  std::string s_;
};

void FrontSvg::Header() {
  absl::StrAppend(
      &s_, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"", Px(l_.width),
      "\" height=\"", Px(l_.height), "\" viewBox=\"0 0 ", Px(l_.width), " ",
      Px(l_.height),
      "\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n",
      "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
  absl::StrAppend(
      &s_, Text(20, 26, absl::StrCat("AutoQ Pareto front: ", r_.job_name),
                "font-size=\"17\" font-weight=\"bold\""));
  absl::StrAppend(
      &s_, Text(20, 46,
                cmp_.region_size_bytes > 0 && !uniform_.empty()
                    ? absl::StrFormat(
                          "Test top-1 vs. size after the final fine-tune. "
                          "Hypervolume in the deploy region (loss <= %.2f "
                          "pp, size <= %.1f KB): front %.4f, uniform %.4f",
                          cmp_.max_accuracy_drop,
                          Kb(cmp_.region_size_bytes),
                          cmp_.region_front_hypervolume,
                          cmp_.region_uniform_hypervolume)
                    : absl::StrFormat(
                          "Test top-1 vs. size after the final fine-tune. "
                          "Hypervolume (normalized loss x size, ref (1,1)): "
                          "front %.4f, uniform %.4f",
                          cmp_.front_hypervolume, cmp_.uniform_hypervolume),
                "fill=\"#333\""));
}

// Grid, ticks, frame and axis titles of the scatter panel, and the float
// model's accuracy line.
void FrontSvg::ScatterFrame() {
  const double px0 = l_.px0, px1 = l_.px1, top_y0 = l_.top_y0,
               top_y1 = l_.top_y1;
  for (double t : xa_.ticks) {
    absl::StrAppend(
        &s_, Line(X(t), top_y0, X(t), top_y1, "stroke=\"#eee\""),
        Line(X(t), top_y1, X(t), top_y1 + 5, "stroke=\"#333\""),
        Text(X(t), top_y1 + 18, xa_.Label(t), "text-anchor=\"middle\""));
  }
  for (double t : ya_.ticks) {
    absl::StrAppend(
        &s_, Line(px0, Y(t), px1, Y(t), "stroke=\"#eee\""),
        Line(px0 - 5, Y(t), px0, Y(t), "stroke=\"#333\""),
        Text(px0 - 8, Y(t) + 4, ya_.Label(t), "text-anchor=\"end\""));
  }
  absl::StrAppend(
      &s_,
      absl::StrCat("<rect x=\"", Px(px0), "\" y=\"", Px(top_y0), "\" width=\"",
                   Px(px1 - px0), "\" height=\"", Px(top_y1 - top_y0),
                   "\" fill=\"none\" stroke=\"#333\"/>\n"),
      Text((px0 + px1) / 2, top_y1 + 38,
           xa_.log ? "size (KB, log scale)" : "size (KB)",
           "text-anchor=\"middle\""),
      Text(0, 0, "test top-1 (%)",
           absl::StrCat("text-anchor=\"middle\" transform=\"translate(",
                        Px(px0 - 56), ",", Px((top_y0 + top_y1) / 2),
                        ") rotate(-90)\"")));
  if (!has_points_) {
    absl::StrAppend(
        &s_, Text((px0 + px1) / 2, (top_y0 + top_y1) / 2, "no measured points",
                  "text-anchor=\"middle\" fill=\"#888\""));
  }
  FloatLine();
}

void FrontSvg::FloatLine() {
  if (!(r_.float_test_top1 > 0)) return;
  const double y = Y(r_.float_test_top1);
  absl::StrAppend(
      &s_,
      Line(l_.px0, y, l_.px1, y,
           "stroke=\"#555\" stroke-width=\"1.5\" stroke-dasharray=\"6,4\""),
      Text(l_.px1 - 4, y - 5,
           absl::StrFormat("float %.2f %%", r_.float_test_top1),
           "text-anchor=\"end\" fill=\"#555\""));
}

std::string FrontSvg::Polyline(const std::vector<const FrontPoint*>& pts,
                               const char* color) const {
  if (pts.size() < 2) return std::string();
  std::vector<std::string> xy;
  for (const FrontPoint* p : pts) {
    xy.push_back(
        absl::StrCat(Px(X(Kb(p->size_bytes))), ",", Px(Y(p->test_top1))));
  }
  return absl::StrCat("<polyline points=\"", absl::StrJoin(xy, " "),
                      "\" fill=\"none\" stroke=\"", color,
                      "\" stroke-width=\"1.5\"/>\n");
}

// The front (circles) against the uniform configurations (squares), each
// joined by a line in size order; uniform points below the axis carry
// their accuracy in the label.
void FrontSvg::ScatterPoints() {
  absl::StrAppend(&s_, Polyline(uniform_, kUniformColor),
                  Polyline(front_, kFrontColor));
  for (const FrontPoint* p : uniform_) {
    const double x = X(Kb(p->size_bytes)), y = Y(p->test_top1);
    const bool pinned = p->test_top1 < ya_.lo;
    absl::StrAppend(
        &s_,
        absl::StrCat("<rect x=\"", Px(x - 4), "\" y=\"", Px(y - 4),
                     "\" width=\"8\" height=\"8\" fill=\"", kUniformColor,
                     "\"><title>", XmlEscape(Tooltip(*p)), "</title></rect>\n"),
        Text(x + 6, pinned ? y - 8 : y + 15,
             pinned
                 ? absl::StrFormat("%s (%.1f %%)", UniformTag(*p), p->test_top1)
                 : UniformTag(*p),
             absl::StrCat("fill=\"", kUniformColor, "\" font-size=\"11\"")));
  }
  // Post-training baselines: diamonds, labeled.
  for (const FrontPoint* p : baselines_) {
    const double x = X(Kb(p->size_bytes)), y = Y(p->test_top1);
    const bool pinned = p->test_top1 < ya_.lo;
    absl::StrAppend(
        &s_,
        absl::StrCat("<polygon points=\"", Px(x), ",", Px(y - 6), " ",
                     Px(x + 6), ",", Px(y), " ", Px(x), ",", Px(y + 6), " ",
                     Px(x - 6), ",", Px(y), "\" fill=\"", kBaselineColor,
                     "\"><title>", XmlEscape(Tooltip(*p)),
                     "</title></polygon>\n"),
        Text(x + 8, y + 4,
             pinned ? absl::StrFormat("%s (%.1f %%)", p->label, p->test_top1)
                    : p->label,
             absl::StrCat("fill=\"", kBaselineColor, "\" font-size=\"10\"")));
  }
  for (const FrontPoint* p : front_) {
    const double x = X(Kb(p->size_bytes)), y = Y(p->test_top1);
    absl::StrAppend(
        &s_,
        absl::StrCat("<circle cx=\"", Px(x), "\" cy=\"", Px(y),
                     "\" r=\"4.5\" fill=\"", kFrontColor, "\"><title>",
                     XmlEscape(Tooltip(*p)), "</title></circle>\n"),
        Text(x + 6, y - 6, p->label,
             absl::StrCat("fill=\"", kFrontColor, "\" font-size=\"10\"")));
  }
}

// Right of the scatter panel: the three series, then the front points that
// beat every uniform configuration, as many as fit beside the panel.
void FrontSvg::ScatterLegend() {
  const double lx = l_.px1 + 20;
  double ly = l_.top_y0 + 10;
  absl::StrAppend(
      &s_,
      absl::StrCat("<circle cx=\"", Px(lx + 10), "\" cy=\"", Px(ly),
                   "\" r=\"4.5\" fill=\"", kFrontColor, "\"/>\n"),
      Line(lx, ly, lx + 20, ly, absl::StrCat("stroke=\"", kFrontColor, "\"")),
      Text(lx + 28, ly + 4, absl::StrCat("found front (", front_.size(), ")")));
  ly += 22;
  absl::StrAppend(
      &s_,
      absl::StrCat("<rect x=\"", Px(lx + 6), "\" y=\"", Px(ly - 4),
                   "\" width=\"8\" height=\"8\" fill=\"", kUniformColor,
                   "\"/>\n"),
      Line(lx, ly, lx + 20, ly, absl::StrCat("stroke=\"", kUniformColor, "\"")),
      Text(lx + 28, ly + 4, UniformLegend(uniform_)));
  ly += 22;
  absl::StrAppend(&s_,
                  Line(lx, ly, lx + 20, ly,
                       "stroke=\"#555\" stroke-width=\"1.5\" "
                       "stroke-dasharray=\"6,4\""),
                  Text(lx + 28, ly + 4, "float model"));
  if (!baselines_.empty()) {
    ly += 22;
    absl::StrAppend(
        &s_,
        absl::StrCat("<polygon points=\"", Px(lx + 10), ",", Px(ly - 6), " ",
                     Px(lx + 16), ",", Px(ly), " ", Px(lx + 10), ",",
                     Px(ly + 6), " ", Px(lx + 4), ",", Px(ly), "\" fill=\"",
                     kBaselineColor, "\"/>\n"),
        Text(lx + 28, ly + 4, "post-training, no fine-tune"));
  }
  ly += 30;
  if (cmp_.beating_points.empty()) return;
  absl::StrAppend(&s_,
                  Text(lx, ly, "smaller than every uniform",
                       "font-size=\"11\" fill=\"#333\""),
                  Text(lx, ly + 14, "config. at least as accurate:",
                       "font-size=\"11\" fill=\"#333\""));
  ly += 28;
  for (const std::string& label : cmp_.beating_points) {
    if (ly > l_.top_y1) break;
    absl::StrAppend(&s_,
                    Text(lx + 8, ly, label, "font-size=\"11\" fill=\"#333\""));
    ly += 14;
  }
}

// The bottom panel: weight bits per layer of every front point, one group
// of bars per layer.
void FrontSvg::BitsChart() {
  absl::StrAppend(&s_, Text(20, l_.bottom_title_y,
                            "Weight bits per layer of the front points",
                            "font-size=\"15\" font-weight=\"bold\""));
  if (l_.genes == 0 || l_.bars == 0) {
    absl::StrAppend(
        &s_, Text(l_.px0, l_.bot_y0 + 20, "no front points", "fill=\"#888\""));
    return;
  }
  BitsGrid();
  const double gw = (l_.px1 - l_.px0) / l_.genes;
  for (size_t i = 0; i < l_.genes; ++i) BitsColumn(i, gw);
  absl::StrAppend(
      &s_, absl::StrCat("<rect x=\"", Px(l_.px0), "\" y=\"", Px(l_.bot_y0),
                        "\" width=\"", Px(l_.px1 - l_.px0), "\" height=\"",
                        Px(l_.bot_y1 - l_.bot_y0),
                        "\" fill=\"none\" stroke=\"#333\"/>\n"));
  BitsLegend();
}

void FrontSvg::BitsGrid() {
  const int step =
      l_.max_bits <= 10 ? 1 : static_cast<int>(NiceStep(l_.max_bits, 8));
  for (int b = 0; b <= l_.max_bits; b += step) {
    absl::StrAppend(
        &s_, Line(l_.px0, BY(b), l_.px1, BY(b), "stroke=\"#eee\""),
        Text(l_.px0 - 8, BY(b) + 4, absl::StrCat(b), "text-anchor=\"end\""));
  }
  absl::StrAppend(
      &s_,
      Text(0, 0, "weight bits",
           absl::StrCat("text-anchor=\"middle\" transform=\"translate(",
                        Px(l_.px0 - 56), ",", Px((l_.bot_y0 + l_.bot_y1) / 2),
                        ") rotate(-90)\"")));
}

// Layer `i`'s group: one bar per front point, a separator, and the
// layer's label rotated under the chart.
void FrontSvg::BitsColumn(size_t i, double gw) {
  const double g0 = l_.px0 + i * gw;
  const double bw = (gw - 6) / l_.bars;
  for (size_t k = 0; k < l_.bars; ++k) {
    const FrontPoint& p = r_.front[k];
    if (i >= p.wbits.size()) continue;
    const int b = p.wbits[i];
    std::string tip =
        absl::StrCat(p.label, ", layer ", l_.layer_labels[i], ": w", b);
    if (i < p.abits.size()) absl::StrAppend(&tip, " a", p.abits[i]);
    absl::StrAppend(
        &s_, absl::StrCat("<rect x=\"", Px(g0 + 3 + k * bw), "\" y=\"",
                          Px(BY(b)), "\" width=\"", Px(bw), "\" height=\"",
                          Px(l_.bot_y1 - BY(b)), "\" fill=\"",
                          kPalette[k % kPaletteSize], "\"><title>", XmlEscape(tip),
                          "</title></rect>\n"));
  }
  if (i > 0) {
    absl::StrAppend(&s_, Line(g0, l_.bot_y0, g0, l_.bot_y1, "stroke=\"#ddd\""));
  }
  const double cx = g0 + gw / 2;
  absl::StrAppend(&s_, Text(0, 0, l_.layer_labels[i],
                            absl::StrCat("text-anchor=\"end\" font-size=\"11\" "
                                         "transform=\"translate(",
                                         Px(cx + 3), ",", Px(l_.bot_y1 + 12),
                                         ") rotate(-45)\"")));
}

// One swatch per front point, right of the chart.
void FrontSvg::BitsLegend() {
  for (size_t k = 0; k < l_.bars; ++k) {
    const FrontPoint& p = r_.front[k];
    const double ly = l_.bot_y0 + 10 + k * 18;
    absl::StrAppend(
        &s_,
        absl::StrCat("<rect x=\"", Px(l_.px1 + 20), "\" y=\"", Px(ly - 6),
                     "\" width=\"12\" height=\"12\" fill=\"",
                     kPalette[k % kPaletteSize], "\"/>\n"),
        Text(l_.px1 + 38, ly + 4,
             p.test_top1 >= 0
                 ? absl::StrFormat("%s (%.1f KB, %.2f %%)", p.label,
                                   Kb(p.size_bytes), p.test_top1)
                 : absl::StrFormat("%s (%.1f KB)", p.label, Kb(p.size_bytes))));
  }
}

}  // namespace

std::string RenderFrontSvg(const FrontReport& r) {
  return FrontSvg(r).Render();
}

absl::Status WriteFrontSvg(const FrontReport& r, const std::string& path) {
  return WriteFileAtomic(path, RenderFrontSvg(r));
}

}  // namespace autoq::search
