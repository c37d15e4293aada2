#include "qat/model_analysis.h"

#include <filesystem>
#include <sstream>
#include <map>

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/serialization/import.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "qat/graph_layers.h"
#include "qat/site_op.h"
#include "qat/torch_errors.h"

namespace autoq::qat {
namespace {

// Records the output shape of every layer site and accumulates its MACs.
class ShapeRecorder : public SiteHook {
 public:
  explicit ShapeRecorder(std::vector<LayerInfo>* layers) : layers_(layers) {}

  at::Tensor OnSite(const at::Tensor& x, int64_t id) override {
    LayerInfo& info = (*layers_)[static_cast<size_t>(id)];
    info.output_shape = x.sizes().vec();
    int64_t per_output = 1;
    // weight [out, in/groups, kh, kw] or [out, in]: MACs per output element
    // are the product of all weight dims but the first.
    for (size_t i = 1; i < info.weight_shape.size(); ++i) {
      per_output *= info.weight_shape[i];
    }
    const int64_t batch = x.dim() > 0 ? x.size(0) : 1;
    info.macs += x.numel() / std::max<int64_t>(batch, 1) * per_output;
    return x;
  }

 private:
  std::vector<LayerInfo>* layers_;
};

}  // namespace

absl::StatusOr<torch::jit::Module> LoadModel(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return absl::NotFoundError(absl::StrCat("model file not found: ", path));
  }
  try {
    return torch::jit::load(path, c10::Device(c10::kCPU));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, " is not a readable TorchScript model (save it with "
              "torch.jit.save of a scripted or traced module): ",
        SummarizeTorchError(e)));
  }
}

absl::StatusOr<torch::jit::Module> LoadModelFromBytes(const std::string& bytes,
                                                      const std::string& what) {
  if (bytes.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is empty"));
  }
  try {
    std::istringstream in(bytes);
    return torch::jit::load(in, c10::Device(c10::kCPU));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " is not a readable TorchScript model (save it with "
              "torch.jit.save of a scripted or traced module): ",
        SummarizeTorchError(e)));
  }
}

absl::StatusOr<ModelAnalysis> AnalyzeModel(
    const torch::jit::Module& module, const std::vector<int64_t>& input_shape) {
  ModelAnalysis analysis;
  analysis.input_shape = input_shape;
  std::shared_ptr<torch::jit::Graph> graph;
  std::vector<GraphLayer> layers;
  try {
    graph = PreparedForwardGraph(module);
    layers = FindLayers(*graph, module);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot analyze the model's forward graph: ", SummarizeTorchError(e)));
  }
  for (const GraphLayer& l : layers) analysis.layers.push_back(l.info);
  if (analysis.num_genes() == 0) {
    return absl::InvalidArgumentError(
        "the model has no quantizable layer (no conv2d or linear with a "
        "weight parameter)");
  }
  for (const at::Tensor& p : module.parameters(/*recurse=*/true)) {
    analysis.num_parameters += p.numel();
    analysis.float_size_bytes += p.numel() * p.element_size();
  }

  InsertSites(*graph, layers);
  torch::jit::GraphFunction probe("autoq_probe", graph, nullptr);
  ShapeRecorder recorder(&analysis.layers);
  torch::jit::Module m = module;
  const bool was_training = m.is_training();
  m.eval();
  std::vector<int64_t> shape = {1};
  shape.insert(shape.end(), input_shape.begin(), input_shape.end());
  absl::Status status;
  try {
    at::NoGradGuard no_grad;
    ScopedSiteHook hook(&recorder);
    c10::IValue out = probe({m._ivalue(), at::zeros(shape)});
    if (out.isTensor() && out.toTensor().dim() >= 1) {
      analysis.num_classes = out.toTensor().size(-1);
    }
  } catch (const std::exception& e) {
    status = absl::InvalidArgumentError(absl::StrCat(
        "the model rejects input shape [", absl::StrJoin(input_shape, ","),
        "] (give the right one with --input C,H,W): ",
        SummarizeTorchError(e)));
  }
  m.train(was_training);
  RETURN_IF_ERROR(status);
  for (const LayerInfo& l : analysis.layers) {
    if (!l.masked) analysis.total_macs += l.macs;
  }
  return analysis;
}

}  // namespace autoq::qat
