#include "search/report.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <numeric>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "common/file_util.h"
#include "search/pareto.h"

namespace autoq::search {
namespace {

std::vector<AccuracySize> TestPoints(const std::vector<FrontPoint>& points) {
  std::vector<AccuracySize> out;
  for (const FrontPoint& p : points) {
    out.push_back(AccuracySize{p.test_top1, p.size_bytes});
  }
  return out;
}

// "8,4,4,8"
std::string JoinBits(const std::vector<int>& bits, absl::string_view sep) {
  return absl::StrJoin(bits, sep);
}

// True when `bits` is non-empty and holds one value, stored in *value.
bool AllEqual(const std::vector<int>& bits, int* value) {
  if (bits.empty()) return false;
  for (int b : bits) {
    if (b != bits.front()) return false;
  }
  *value = bits.front();
  return true;
}

std::string ActivationName(int abits) {
  return abits == 0 ? "float" : absl::StrCat(abits);
}

double Compression(int64_t float_size, int64_t size) {
  return size > 0 ? static_cast<double>(float_size) / size : 0;
}

// RFC 4180 quoting, only where needed.
std::string CsvField(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string CsvNumber(double v) { return absl::StrFormat("%.4f", v); }

// Unmeasured accuracies (< 0) stay empty so spreadsheets skip them.
std::string CsvAccuracy(double v) { return v < 0 ? "" : CsvNumber(v); }

}  // namespace

FrontComparison CompareWithUniform(const FrontReport& report) {
  FrontComparison c;
  c.front_hypervolume =
      NormalizedHypervolume(TestPoints(report.front), report.float_test_top1,
                            report.float_size_bytes);
  c.uniform_hypervolume =
      NormalizedHypervolume(TestPoints(report.uniform), report.float_test_top1,
                            report.float_size_bytes);
  c.max_accuracy_drop = report.max_accuracy_drop;
  c.region_size_bytes = report.float_size_bytes;
  bool any_uniform = false;
  for (const FrontPoint& u : report.uniform) {
    if (u.test_top1 < 0) continue;
    c.region_size_bytes = any_uniform
                              ? std::max(c.region_size_bytes, u.size_bytes)
                              : u.size_bytes;
    any_uniform = true;
  }
  c.region_front_hypervolume =
      RegionHypervolume(TestPoints(report.front), report.float_test_top1,
                        report.max_accuracy_drop, c.region_size_bytes);
  c.region_uniform_hypervolume =
      RegionHypervolume(TestPoints(report.uniform), report.float_test_top1,
                        report.max_accuracy_drop, c.region_size_bytes);
  auto smallest_near_float = [&](const std::vector<FrontPoint>& points) {
    int64_t best = 0;
    for (const FrontPoint& p : points) {
      if (p.test_top1 < 0 ||
          p.test_top1 < report.float_test_top1 - kNearFloatPoints) {
        continue;
      }
      if (best == 0 || p.size_bytes < best) best = p.size_bytes;
    }
    return best;
  };
  c.front_smallest_near_float = smallest_near_float(report.front);
  c.uniform_smallest_near_float = smallest_near_float(report.uniform);

  std::vector<const FrontPoint*> measured;
  for (const FrontPoint& u : report.uniform) {
    if (u.test_top1 >= 0) measured.push_back(&u);
  }
  if (measured.empty()) return c;  // nothing to beat
  for (const FrontPoint& p : report.front) {
    if (p.test_top1 < 0) continue;
    if (report.float_test_top1 - p.test_top1 > report.max_accuracy_drop) {
      continue;  // outside the region users deploy from
    }
    const bool beats =
        std::all_of(measured.begin(), measured.end(), [&](const FrontPoint* u) {
          return u->test_top1 < p.test_top1 || p.size_bytes < u->size_bytes;
        });
    if (beats) c.beating_points.push_back(p.label);
  }
  return c;
}

std::string FormatFrontTable(const std::vector<TableRow>& rows,
                             double float_top1, int64_t float_size_bytes) {
  std::vector<const TableRow*> sorted;
  for (const TableRow& r : rows) sorted.push_back(&r);
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const TableRow* a, const TableRow* b) {
                     return a->size_bytes < b->size_bytes;
                   });
  const bool labels =
      std::any_of(rows.begin(), rows.end(),
                  [](const TableRow& r) { return !r.label.empty(); });
  // One activation width for the whole table goes into the header.
  int common_abits = -1;
  bool shared_abits = !rows.empty();
  bool any_abits = false;
  for (const TableRow& r : rows) {
    int a = 0;
    if (r.wbits.empty() && r.abits.empty()) continue;  // e.g. float16
    any_abits = any_abits || !r.abits.empty();
    if (!AllEqual(r.abits, &a) || (common_abits >= 0 && a != common_abits)) {
      shared_abits = false;
      break;
    }
    common_abits = a;
  }
  if (common_abits < 0) shared_abits = false;
  std::string bits_header = "bits (weights)";
  if (shared_abits) {
    bits_header =
        absl::StrCat("bits (weights; a ", ActivationName(common_abits), ")");
  } else if (any_abits) {
    bits_header = "bits (weights a:activations, 0 = float)";
  }

  // Cells, then widths: the header counts too.
  std::vector<std::vector<std::string>> cells;
  cells.push_back(
      {"label", "size KB", "vs float", "top-1 %", "diff pp", bits_header});
  auto accuracy = [&](double top1, std::string* acc, std::string* diff) {
    if (top1 < 0) {
      *acc = "-";
      *diff = "-";
    } else {
      *acc = absl::StrFormat("%.2f", top1);
      *diff =
          float_top1 > 0 ? absl::StrFormat("%+.2f", top1 - float_top1) : "-";
    }
  };
  for (const TableRow* r : sorted) {
    std::vector<std::string> row(6);
    row[0] = r->label;
    row[1] = absl::StrFormat("%.1f", r->size_bytes / 1024.0);
    row[2] = r->size_bytes > 0 && float_size_bytes > 0
                 ? absl::StrFormat("%.1fx",
                                   Compression(float_size_bytes, r->size_bytes))
                 : "-";
    accuracy(r->top1, &row[3], &row[4]);
    row[5] = r->wbits.empty() ? "-" : JoinBits(r->wbits, ",");
    if (!shared_abits && !r->abits.empty()) {
      absl::StrAppend(&row[5], " a:", JoinBits(r->abits, ","));
    }
    cells.push_back(std::move(row));
  }
  if (float_size_bytes > 0 || float_top1 > 0) {
    std::vector<std::string> row(6);
    row[0] = "float";
    row[1] = absl::StrFormat("%.1f", float_size_bytes / 1024.0);
    row[2] = "1.0x";
    accuracy(float_top1 > 0 ? float_top1 : -1, &row[3], &row[4]);
    row[5] = "32";
    cells.push_back(std::move(row));
  }

  const size_t first = labels ? 0 : 1;
  std::vector<size_t> width(6, 0);
  for (const auto& row : cells) {
    for (size_t k = first; k < 6; ++k) {
      width[k] = std::max(width[k], row[k].size());
    }
  }
  std::string out;
  auto emit = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t k = first; k < 6; ++k) {
      if (k > first) line += "  ";
      const std::string pad(width[k] - row[k].size(), ' ');
      // Text columns left-aligned, numbers right-aligned.
      if (k == 0) {
        line += row[k] + pad;
      } else if (k == 5) {
        line += row[k];
      } else {
        line += pad + row[k];
      }
    }
    out += line + "\n";
  };
  emit(cells[0]);
  std::vector<std::string> rule(6);
  for (size_t k = 0; k < 6; ++k) rule[k] = std::string(width[k], '-');
  emit(rule);
  for (size_t i = 1; i < cells.size(); ++i) emit(cells[i]);
  return out;
}

std::string RenderFrontJson(const FrontReport& r) {
  using Json = nlohmann::ordered_json;
  const FrontComparison c = CompareWithUniform(r);
  auto point = [&](const FrontPoint& p, const char* kind) {
    Json j;
    j["label"] = p.label;
    j["kind"] = kind;
    j["uniform"] = p.uniform;
    j["wbits"] = p.wbits;
    j["abits"] = p.abits;
    j["size_bytes"] = p.size_bytes;
    j["compression"] = Compression(r.float_size_bytes, p.size_bytes);
    j["bops"] = p.bops;
    j["search_val_top1"] = p.search_val_top1;
    j["val_top1"] = p.val_top1;
    j["test_top1"] = p.test_top1;
    j["torchscript_file"] = p.torchscript_file;
    j["packed_file"] = p.packed_file;
    j["manifest_file"] = p.manifest_file;
    j["onnx_file"] = p.onnx_file;
    j["encodings_file"] = p.encodings_file;
    if (!p.onnx_error_file.empty()) j["onnx_error_file"] = p.onnx_error_file;
    return j;
  };
  Json j;
  j["job_name"] = r.job_name;
  j["layer_names"] = r.layer_names;
  j["float"] = {{"val_top1", r.float_val_top1},
                {"test_top1", r.float_test_top1},
                {"size_bytes", r.float_size_bytes}};
  j["comparison"] = {
      {"split", "test"},
      {"hypervolume_space",
       "x = (float_top1 - top1) / float_top1, y = size / float_size, "
       "reference (1, 1)"},
      {"front_hypervolume", c.front_hypervolume},
      {"uniform_hypervolume", c.uniform_hypervolume},
      {"region",
       {{"max_accuracy_drop", c.max_accuracy_drop},
        {"size_bytes", c.region_size_bytes},
        {"hypervolume_space",
         "x = max(0, float_top1 - top1) / max_accuracy_drop, y = size / "
         "region size_bytes, reference (1, 1)"},
        {"front_hypervolume", c.region_front_hypervolume},
        {"uniform_hypervolume", c.region_uniform_hypervolume}}},
      {"smallest_within_0_5pp_of_float",
       {{"front_size_bytes", c.front_smallest_near_float},
        {"uniform_size_bytes", c.uniform_smallest_near_float}}},
      {"beating_points", c.beating_points},
      {"beats_uniform", c.beats_uniform()}};
  j["front"] = Json::array();
  for (const FrontPoint& p : r.front) j["front"].push_back(point(p, "front"));
  j["uniform"] = Json::array();
  for (const FrontPoint& p : r.uniform)
    j["uniform"].push_back(point(p, "uniform"));
  // Float32 (the "float" object above) and the post-training baselines:
  // what TFLite-style PTQ gives with no fine-tune, on the same test split.
  // They have no exports: their file fields stay empty.
  j["baselines"] = Json::array();
  for (const FrontPoint& p : r.baselines) {
    j["baselines"].push_back(point(p, "baseline"));
  }
  // Names come from users and models; a stray byte must not lose the report.
  return j.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

absl::Status WriteFrontJson(const FrontReport& r, const std::string& path) {
  return WriteFileAtomic(path, RenderFrontJson(r));
}

std::string RenderFrontCsv(const FrontReport& r) {
  std::string out =
      "kind,label,size_bytes,compression,bops,search_val_top1,val_top1,"
      "test_top1,test_diff_pp,wbits,abits,torchscript_file,packed_file,"
      "manifest_file,onnx_file\n";
  for (const auto* list : {&r.front, &r.uniform, &r.baselines}) {
    for (const FrontPoint& p : *list) {
      const std::vector<std::string> fields = {
          list == &r.uniform     ? "uniform"
          : list == &r.baselines ? "baseline"
                                 : "front",
          CsvField(p.label),
          absl::StrCat(p.size_bytes),
          CsvNumber(Compression(r.float_size_bytes, p.size_bytes)),
          absl::StrCat(p.bops),
          CsvAccuracy(p.search_val_top1),
          CsvAccuracy(p.val_top1),
          CsvAccuracy(p.test_top1),
          p.test_top1 >= 0 ? CsvNumber(p.test_top1 - r.float_test_top1) : "",
          JoinBits(p.wbits, " "),
          JoinBits(p.abits, " "),
          CsvField(p.torchscript_file),
          CsvField(p.packed_file),
          CsvField(p.manifest_file),
          CsvField(p.onnx_file)};
      absl::StrAppend(&out, absl::StrJoin(fields, ","), "\n");
    }
  }
  if (!r.baselines.empty()) {
    // The float model beside its baselines, so the file alone compares.
    absl::StrAppend(
        &out, "float,float32,", r.float_size_bytes, ",", CsvNumber(1), ",0,,",
        CsvAccuracy(r.float_val_top1), ",", CsvAccuracy(r.float_test_top1),
        ",", CsvNumber(0), ",,,,,,\n");
  }
  return out;
}

absl::Status WriteFrontCsv(const FrontReport& r, const std::string& path) {
  return WriteFileAtomic(path, RenderFrontCsv(r));
}

}  // namespace autoq::search
