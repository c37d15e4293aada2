// Reports of the final Pareto front: the comparison with uniform bit-widths,
// a text table for logs, and the files a job leaves in its output folder
// (front.json, front.csv, front.svg).
#ifndef AUTOQ_SEARCH_REPORT_H_
#define AUTOQ_SEARCH_REPORT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace autoq::search {

// One fully fine-tuned configuration. Accuracies are in percent, as the
// float ones of FrontReport; -1 means "not measured".
struct FrontPoint {
  std::string label;       // "front-1" ..., "uniform-4"
  bool uniform = false;    // a uniform configuration (same bits everywhere)
  std::vector<int> wbits;  // per gene (quantizable layer)
  std::vector<int> abits;  // per gene; 0 = float activations
  int64_t size_bytes = 0;
  int64_t bops = 0;
  double search_val_top1 = -1;  // short QAT score during the search
  double val_top1 = -1;         // after the final fine-tune
  double test_top1 = -1;        // after the final fine-tune, held-out split
  // Exported files, relative to the output folder; may be empty.
  std::string torchscript_file, packed_file, manifest_file;
  // The ONNX QDQ model and its encodings; empty when the model has no
  // ONNX form, onnx_error_file then says why.
  std::string onnx_file, encodings_file, onnx_error_file;
  // The final-stage cache key whose artifacts in the result store
  // (model.pt, weights.bin, manifest.json) are this point's exports. Not
  // written to the report files.
  std::string result_key;
};

struct FrontReport {
  std::string job_name;
  std::vector<std::string> layer_names;  // per gene
  double float_val_top1 = 0, float_test_top1 = 0;
  int64_t float_size_bytes = 0;
  std::vector<FrontPoint> front;    // the found front (final fine-tune done)
  std::vector<FrontPoint> uniform;  // uniform configurations, same fine-tune
  // Post-training baselines, no fine-tune ("float16", "int8-ptq-per-tensor",
  // "int8-ptq-per-channel"); not part of the comparison. May be empty.
  std::vector<FrontPoint> baselines;
  // The region of interest: points losing more than this many percentage
  // points of test top-1 against float do not count as beating uniform.
  // 100: every point counts.
  double max_accuracy_drop = 100;
};

struct FrontComparison {
  // NormalizedHypervolume (search/pareto.h) of test top-1 and size, over
  // the whole space (useless low-accuracy points count too).
  double front_hypervolume = 0;
  double uniform_hypervolume = 0;
  // The region users deploy from: test loss <= max_accuracy_drop and size
  // <= region_size_bytes (the largest measured uniform configuration, i.e.
  // uniform 8-bit; float size without one). RegionHypervolume of each set.
  double max_accuracy_drop = 100;
  int64_t region_size_bytes = 0;
  double region_front_hypervolume = 0;
  double region_uniform_hypervolume = 0;
  // The smallest point within 0.5 percentage points of float test top-1,
  // of the front and of the uniform configurations; 0 when none is.
  int64_t front_smallest_near_float = 0;
  int64_t uniform_smallest_near_float = 0;
  // Labels of the front points inside the region that beat every uniform
  // configuration (see CompareWithUniform), in front order.
  std::vector<std::string> beating_points;
  // Inside the region, the front covers more than the uniform
  // configurations and at least one of its points beats them all.
  bool beats_uniform() const {
    return region_front_hypervolume > region_uniform_hypervolume &&
           !beating_points.empty();
  }
};

// How close to float a point must be for the "smallest near float" figure.
inline constexpr double kNearFloatPoints = 0.5;

// Compares the found front with the uniform configurations on the test
// split. A front point p with a measured test top-1 "beats uniform" iff at
// least one uniform configuration was measured and p is strictly smaller
// than every measured uniform configuration u with u.test_top1 >=
// p.test_top1. When no uniform configuration is that accurate, p qualifies:
// it is more accurate than all of them. (Equal sizes do not qualify: the
// point must buy a strictly smaller model at no accuracy cost.) Points
// outside the region (test loss > report.max_accuracy_drop) never qualify.
FrontComparison CompareWithUniform(const FrontReport& report);

// One row of FormatFrontTable.
struct TableRow {
  std::string label;  // may be empty
  int64_t size_bytes = 0;
  double top1 = -1;  // percent; < 0 prints "-"
  std::vector<int> wbits, abits;
};

// Text table for logs, one row per point sorted by size, then a "float"
// reference row. Columns: label (only when some row has one), size in KB,
// compression vs. float, top-1, difference to float in percentage points,
// and the bits: the weight bits per layer ("8,4,4,8"); when every row has the
// same activation bits A everywhere the header says "a A" (or "a float") once,
// otherwise each row adds " a:8,8,0,8" (0 = float activations). Ends with a
// newline.
std::string FormatFrontTable(const std::vector<TableRow>& rows,
                             double float_top1, int64_t float_size_bytes);

// The report files. Render* return a file's contents; Write* write them
// atomically (to path + ".tmp", then renamed), so a reader never sees half a
// report, and their errors name the path.

// front.json: everything in the report plus the comparison, pretty-printed.
// Unmeasured accuracies stay -1, as in FrontPoint. Text that is not valid
// UTF-8 is written with U+FFFD in its place.
std::string RenderFrontJson(const FrontReport& report);
absl::Status WriteFrontJson(const FrontReport& report, const std::string& path);

// front.csv: one row per front and uniform point after a header; the kind
// column says "front" or "uniform"; bits are space-separated inside one
// column ("8 4 4 8") so the file stays plain comma-separated. Unmeasured
// accuracies are empty cells.
std::string RenderFrontCsv(const FrontReport& report);
absl::Status WriteFrontCsv(const FrontReport& report, const std::string& path);

// front.svg, self-contained: test top-1 against size with the front, the
// uniform configurations and the float accuracy; below it, the weight bits
// per layer of every front point. In report_svg.cc.
std::string RenderFrontSvg(const FrontReport& report);
absl::Status WriteFrontSvg(const FrontReport& report, const std::string& path);

// `s` with &, <, >, " and ' as XML entities: text and attribute values of
// the SVG renderers (front.svg, sensitivity.svg).
std::string XmlEscape(absl::string_view s);

}  // namespace autoq::search

#endif  // AUTOQ_SEARCH_REPORT_H_
