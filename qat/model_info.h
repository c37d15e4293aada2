// What analysis finds in a model: its quantizable layers (LayerInfo) and
// totals (ModelAnalysis). Plain values, no LibTorch: the search, the cost
// model's users and the service read them; qat/model_analysis.h fills them.
#ifndef AUTOQ_QAT_MODEL_INFO_H_
#define AUTOQ_QAT_MODEL_INFO_H_

#include <cstdint>
#include <string>
#include <vector>

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
  std::vector<LayerInfo> layers;     // all found layers, masked ones included
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

// Parses "1,28,28" (channels, height, width; any rank >= 1 accepted).
absl::StatusOr<std::vector<int64_t>> ParseShape(absl::string_view s);

}  // namespace autoq::qat

#endif  // AUTOQ_QAT_MODEL_INFO_H_
