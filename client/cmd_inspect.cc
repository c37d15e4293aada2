// `autoq inspect MODEL.pt [--input C,H,W] [--json]`: the quantizable layers.
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/commands.h"
#include "client/common.h"
#include "common/status_macros.h"
#include "qat/cost_model.h"
#include "qat/model_analysis.h"

namespace autoq::client {
namespace {

std::string Shape(const std::vector<int64_t>& s) {
  return absl::StrCat("[", absl::StrJoin(s, ","), "]");
}

void PrintTable(const qat::ModelAnalysis& a) {
  std::printf("%-4s %-4s %-36s %-9s %-16s %9s %-22s %-9s %10s\n", "idx",
              "gene", "parameter", "kind", "weight", "#weights", "folded BN",
              "act", "MACs");
  for (const qat::LayerInfo& l : a.layers) {
    std::printf("%-4d %-4s %-36s %-9s %-16s %9lld %-22s %-9s %10lld%s\n",
                l.graph_index,
                l.masked ? "-" : absl::StrCat(l.gene).c_str(),
                l.weight_path.empty() ? "?" : l.weight_path.c_str(),
                qat::LayerKindName(l.kind).c_str(), Shape(l.weight_shape).c_str(),
                static_cast<long long>(l.num_weights),
                l.bn_path.empty() ? "-" : l.bn_path.c_str(),
                l.activation.empty() ? "-" : l.activation.c_str(),
                static_cast<long long>(l.macs),
                l.masked ? absl::StrCat("  masked: ", l.mask_reason).c_str() : "");
  }
  int folds = 0;
  int64_t qweights = 0;
  for (const qat::LayerInfo& l : a.layers) {
    folds += l.bn_path.empty() ? 0 : 1;
    if (!l.masked) qweights += l.num_weights;
  }
  std::printf(
      "\n%zu layers (%d genes, %zu masked), %d BN folds, input %s\n"
      "%lld quantizable weights of %lld parameters; %.3f MMACs per image\n"
      "float size %.1f KB (%lld bytes); uniform 8-bit (per-tensor) %.1f KB\n",
      a.layers.size(), a.num_genes(), a.layers.size() - a.num_genes(), folds,
      Shape(a.input_shape).c_str(), static_cast<long long>(qweights),
      static_cast<long long>(a.num_parameters), a.total_macs / 1e6,
      a.float_size_bytes / 1024.0, static_cast<long long>(a.float_size_bytes),
      qat::ComputeCost(a, std::vector<qat::LayerBits>(a.num_genes(), {8, 8}),
                       qat::Granularity::kPerTensorAffine)
              .size_bytes /
          1024.0);
}

void PrintJson(const qat::ModelAnalysis& a) {
  std::string out = "{\"layers\":[";
  for (size_t i = 0; i < a.layers.size(); ++i) {
    const qat::LayerInfo& l = a.layers[i];
    absl::StrAppend(
        &out, i ? "," : "", "{\"index\":", l.graph_index, ",\"gene\":",
        l.gene, ",\"masked\":", l.masked ? "true" : "false",
        ",\"mask_reason\":", JsonString(l.mask_reason),
        ",\"parameter\":", JsonString(l.weight_path),
        ",\"module\":", JsonString(l.module_path),
        ",\"kind\":", JsonString(qat::LayerKindName(l.kind)),
        ",\"weight_shape\":", Shape(l.weight_shape),
        ",\"num_weights\":", l.num_weights, ",\"groups\":", l.groups,
        ",\"has_bias\":", l.bias_path.empty() ? "false" : "true",
        ",\"folded_bn\":", l.bn_path.empty() ? "null" : JsonString(l.bn_path),
        ",\"activation\":",
        l.activation.empty() ? "null" : JsonString(l.activation),
        ",\"output_shape\":", Shape(l.output_shape), ",\"macs\":", l.macs, "}");
  }
  absl::StrAppend(&out, "],\"input_shape\":", Shape(a.input_shape),
                  ",\"num_genes\":", a.num_genes(),
                  ",\"num_parameters\":", a.num_parameters,
                  ",\"float_size_bytes\":", a.float_size_bytes,
                  ",\"total_macs\":", a.total_macs,
                  ",\"num_classes\":", a.num_classes, "}\n");
  std::fputs(out.c_str(), stdout);
}

}  // namespace

absl::Status RunInspect(int argc, char** argv) {
  FlagSpec spec{{"input"}, {"json"}};
  AddComputeFlags(&spec);
  ASSIGN_OR_RETURN(Flags flags, Flags::Parse(argc, argv, 2, spec));
  RETURN_IF_ERROR(ApplyThreads(flags));
  if (flags.positional().size() != 1) {
    return absl::InvalidArgumentError(
        "usage: autoq inspect MODEL.pt [--input C,H,W] [--json]");
  }
  ASSIGN_OR_RETURN(std::vector<int64_t> shape,
                   qat::ParseShape(flags.Get("input", "1,28,28")));
  ASSIGN_OR_RETURN(torch::jit::Module module,
                   qat::LoadModel(flags.positional()[0]));
  ASSIGN_OR_RETURN(qat::ModelAnalysis analysis,
                   qat::AnalyzeModel(module, shape));
  if (flags.Has("json")) {
    PrintJson(analysis);
  } else {
    PrintTable(analysis);
  }
  return absl::OkStatus();
}

}  // namespace autoq::client
