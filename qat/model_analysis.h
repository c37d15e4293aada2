// Loading a TorchScript model and finding its quantizable layers.
//
// A quantizable layer is an aten::conv2d / aten::_convolution / aten::linear
// node anywhere in the inlined forward graph (nested prim::If and prim::Loop
// blocks included) whose weight is a parameter of the module. A batch-norm
// consuming the layer's output is recorded as its fold partner, and an
// activation after that as the point where activations are quantized.
//
// Thread-safety: functions here are reentrant; AnalyzeModel runs one forward
// pass of `module` and must not race with other users of the same module.
#ifndef AUTOQ_QAT_MODEL_ANALYSIS_H_
#define AUTOQ_QAT_MODEL_ANALYSIS_H_

#include <cstdint>
#include <string>
#include <vector>

#include <torch/csrc/jit/api/module.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace autoq::qat {

enum class LayerKind { kConv, kDepthwise, kPointwise, kLinear };
std::string LayerKindName(LayerKind k);

struct LayerInfo {
  int graph_index = 0;      // position among all found layers, graph order
  int gene = -1;            // position in the chromosome; -1 when masked
  std::string module_path;  // e.g. "features.1.conv.0.0"
  std::string weight_path;  // e.g. "features.1.conv.0.0.weight"
  std::string bias_path;    // "" when the layer has no bias parameter
  LayerKind kind = LayerKind::kConv;
  std::vector<int64_t> weight_shape;
  int64_t num_weights = 0;
  int64_t groups = 1;
  std::string bn_path;  // module path of the folded batch-norm, "" if none
  double bn_eps = 1e-5;
  std::string activation;  // "relu", "hardtanh", "hardswish", ... or ""
  std::vector<int64_t> output_shape;  // for a batch of 1
  int64_t macs = 0;                   // per image, all calls summed
  bool masked = false;
  std::string mask_reason;
};

struct ModelAnalysis {
  std::vector<LayerInfo> layers;  // all found layers, masked ones included
  std::vector<int64_t> input_shape;  // without the batch dimension
  int64_t num_parameters = 0;        // every parameter of the model
  int64_t float_size_bytes = 0;      // parameters at their stored dtype
  int64_t total_macs = 0;            // quantizable layers, per image
  int64_t num_classes = 0;           // last dim of the model's output

  // Number of genes: the unmasked layers.
  int num_genes() const;
  // Unmasked layers in chromosome order.
  std::vector<const LayerInfo*> genes() const;
};

// Loads a TorchScript file onto the CPU. Errors name the file and say whether
// it is missing, not TorchScript, or truncated.
absl::StatusOr<torch::jit::Module> LoadModel(const std::string& path);

// Loads a TorchScript model from its file's bytes (an upload) onto the CPU.
// InvalidArgument, naming `what`, when the bytes are not TorchScript.
absl::StatusOr<torch::jit::Module> LoadModelFromBytes(const std::string& bytes,
                                                      const std::string& what);

// Finds the quantizable layers of `module` and runs one eval-mode forward
// pass on a 1 x input_shape tensor to measure output shapes and MACs.
// Fails with InvalidArgument when the model has no quantizable layer or
// rejects the input shape. The module's training flag is left as it was.
absl::StatusOr<ModelAnalysis> AnalyzeModel(
    const torch::jit::Module& module, const std::vector<int64_t>& input_shape);

// Parses "1,28,28" (channels, height, width; any rank >= 1 accepted).
absl::StatusOr<std::vector<int64_t>> ParseShape(absl::string_view s);

}  // namespace autoq::qat

#endif  // AUTOQ_QAT_MODEL_ANALYSIS_H_
