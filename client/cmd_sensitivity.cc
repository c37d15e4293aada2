// `autoq sensitivity`: how much each layer's weights tolerate fewer bits,
// measured without training (one eval pass per layer and bit-width on a
// validation subset), and what a size budget buys by that measure alone
// (the "sensitivity + knapsack" configurations, no search).
#include <cstdio>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/commands.h"
#include "client/common.h"
#include "client/recipe_flags.h"
#include "common/file_util.h"
#include "common/status_macros.h"
#include "qat/cost_model.h"
#include "qat/model_analysis.h"
#include "qat/sensitivity.h"
#include "qat/tensor_dataset.h"
#include "search/knapsack.h"
#include "search/sensitivity_report.h"

namespace autoq::client {
namespace {

constexpr char kHelp[] =
    "usage: autoq sensitivity MODEL.pt --data SPEC [options]\n"
    "  --images N          validation images per probe (1000; 0: all)\n"
    "  --min-bits B, --max-bits B   weight bit-widths probed (2, 8)\n"
    "  --scheme per-tensor|per-channel   weight quantization (per-channel)\n"
    "  --range minmax|mse  weight range setting (minmax)\n"
    "  --bn-fold approx|exact|none       BN folding, per-tensor only (approx)\n"
    "  --input C,H,W       model input shape (default: the dataset's)\n"
    "  --knapsack K        also print K configurations chosen from the table\n"
    "                      alone for sizes between all-min and all-max bits\n"
    "                      (activations at --abits, default 8)\n"
    "  --out DIR           write DIR/sensitivity.json and sensitivity.svg\n"
    "  --json              print the table as JSON\n"
    "  --threads N, --device cpu|cuda:N\n"
    "The validation split is carved from the training split with seed 1, as\n"
    "jobs do; --val-size, --val-subset and --data as for eval.\n";

}  // namespace

absl::Status RunSensitivity(int argc, char** argv) {
  FlagSpec spec{{"images", "min-bits", "max-bits", "scheme", "range", "bn-fold",
                 "input", "knapsack", "abits", "out"},
                {"json", "help"}};
  AddComputeFlags(&spec);
  AddDataFlags(&spec);
  ASSIGN_OR_RETURN(Flags flags, Flags::Parse(argc, argv, 2, spec));
  if (flags.Has("help")) {
    std::printf("%s%s", kHelp, kDataFlagsHelp);
    return absl::OkStatus();
  }
  if (flags.positional().size() != 1) {
    return absl::InvalidArgumentError(
        "usage: autoq sensitivity MODEL.pt --data SPEC (see --help)");
  }
  RETURN_IF_ERROR(ApplyThreads(flags));
  ASSIGN_OR_RETURN(c10::Device device, ParseDevice(flags));
  ASSIGN_OR_RETURN(int64_t images, flags.GetInt("images", 1000));
  ASSIGN_OR_RETURN(int64_t min_bits, flags.GetInt("min-bits", qat::kMinBits));
  ASSIGN_OR_RETURN(int64_t max_bits, flags.GetInt("max-bits", qat::kMaxBits));
  ASSIGN_OR_RETURN(int64_t knapsack, flags.GetInt("knapsack", 0));
  ASSIGN_OR_RETURN(int64_t abits, flags.GetInt("abits", 8));
  if (images < 0) {
    return absl::InvalidArgumentError("--images must be >= 0");
  }
  if (min_bits < qat::kMinBits || max_bits > qat::kMaxBits ||
      min_bits >= max_bits) {
    return absl::InvalidArgumentError(
        absl::StrCat("--min-bits and --max-bits must satisfy ", qat::kMinBits,
                     " <= min < max <= ", qat::kMaxBits));
  }
  if (knapsack < 0 || knapsack > 1000) {
    return absl::InvalidArgumentError("--knapsack must be in 0..1000");
  }
  if (abits != 0 && (abits < qat::kMinBits || abits > qat::kMaxBits)) {
    return absl::InvalidArgumentError("--abits must be 0 (float) or 2..8");
  }
  qat::QuantScheme scheme;
  ASSIGN_OR_RETURN(scheme.granularity,
                   qat::ParseGranularity(flags.Get("scheme", "per-channel")));
  ASSIGN_OR_RETURN(scheme.range,
                   qat::ParseRangeMethod(flags.Get("range", "minmax")));
  ASSIGN_OR_RETURN(scheme.bn_fold,
                   qat::ParseBnFold(flags.Get("bn-fold", "approx")));

  ASSIGN_OR_RETURN(torch::jit::Module module,
                   qat::LoadModel(flags.positional()[0]));
  ASSIGN_OR_RETURN(evaluator::DatasetSplits data,
                   DataFromFlags(flags, "fashion-mnist"));
  std::vector<int64_t> shape = qat::ImageShape(data.val);
  if (flags.Has("input")) {
    ASSIGN_OR_RETURN(shape, qat::ParseShape(flags.Get("input")));
  }
  ASSIGN_OR_RETURN(qat::ModelAnalysis analysis,
                   qat::AnalyzeModel(module, shape));
  const qat::TensorDataset probe = qat::Head(data.val, images);

  qat::SensitivityOptions options;
  options.min_bits = static_cast<int>(min_bits);
  options.max_bits = static_cast<int>(max_bits);
  options.device = device;
  const bool json = flags.Has("json");
  if (!json) {
    std::fprintf(
        stderr, "probing %d layers x %lld bit-widths on %lld images...\n",
        analysis.num_genes(), static_cast<long long>(max_bits - min_bits),
        static_cast<long long>(probe.size()));
    options.progress = [](int64_t done, int64_t total) {
      if (done % 10 == 0 || done == total) {
        std::fprintf(stderr, "  %lld/%lld probes\n",
                     static_cast<long long>(done),
                     static_cast<long long>(total));
      }
    };
  }
  ASSIGN_OR_RETURN(
      qat::SensitivityTable table,
      qat::MeasureSensitivity(module, analysis, probe, scheme, options));
  if (flags.Has("out")) {
    const std::string dir = flags.Get("out");
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot create ", dir, ": ", ec.message()));
    }
    RETURN_IF_ERROR(WriteFileAtomic(dir + "/sensitivity.json",
                                    search::RenderSensitivityJson(table)));
    RETURN_IF_ERROR(WriteFileAtomic(dir + "/sensitivity.svg",
                                    search::RenderSensitivitySvg(table)));
  }
  if (json) {
    std::fputs(search::RenderSensitivityJson(table).c_str(), stdout);
    return absl::OkStatus();
  }
  std::printf("model %s: %d quantizable layers, %.1f s\n%s",
              flags.positional()[0].c_str(), analysis.num_genes(),
              table.seconds, search::FormatSensitivityTable(table).c_str());
  if (knapsack > 0) {
    const std::vector<search::LayerChoices> choices =
        search::ChoicesFromSensitivity(analysis, table, scheme.granularity,
                                       static_cast<int>(abits));
    ASSIGN_OR_RETURN(
        std::vector<std::vector<int>> front,
        search::KnapsackFront(choices, static_cast<int>(knapsack)));
    std::printf(
        "\nsensitivity + knapsack (no search): least summed loss increase "
        "per size\n%10s %12s  %s\n",
        "size KB", "sum dloss", "weight bits");
    for (const std::vector<int>& wbits : front) {
      std::vector<qat::LayerBits> bits;
      double penalty = 0;
      for (size_t i = 0; i < wbits.size(); ++i) {
        bits.push_back({wbits[i], static_cast<int>(abits)});
        penalty += table.Penalty(i, wbits[i]);
      }
      const qat::ModelCost cost =
          qat::ComputeCost(analysis, bits, scheme.granularity);
      std::printf("%10.1f %12.4f  %s\n", cost.size_bytes / 1024.0, penalty,
                  absl::StrJoin(wbits, ",").c_str());
    }
  }
  if (flags.Has("out")) {
    std::printf("wrote %s/sensitivity.json and sensitivity.svg\n",
                flags.Get("out").c_str());
  }
  return absl::OkStatus();
}

}  // namespace autoq::client
