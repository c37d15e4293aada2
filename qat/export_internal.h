// Internal to qat/: the two halves of ExportQuantizedModel (export.h).
#ifndef AUTOQ_QAT_EXPORT_INTERNAL_H_
#define AUTOQ_QAT_EXPORT_INTERNAL_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "qat/quantized_model.h"

namespace autoq::qat::export_internal {

// What the graph says about the activations around each layer.
struct GraphFacts {
  // By graph_index: the layer whose output site feeds this layer's input,
  // found by walking back through shape-only ops (flatten, view, pooling,
  // dropout, ...); -1 when the input comes from elsewhere (the model input,
  // an add, a concat, an If, ...) or differs between call sites.
  std::vector<int> input_site;
  // By graph_index: whether a fake-quant node follows the layer's output.
  std::vector<bool> quantized_output;
};

// The standalone TorchScript archive of `model`, whose module must hold the
// eval-mode fake-quantized weights (weight_states() refreshes them).
// `acts` comes from model.activation_states(); `quantize_acts` says whether
// quantized sites get a fake-quant node.
absl::StatusOr<std::string> BuildTorchScript(
    QuantizedModel& model, const std::vector<ActivationQuantState>& acts,
    bool quantize_acts, GraphFacts* facts);

struct Packed {
  std::string payload;
  std::string manifest_json;
};

// The packed integer layers and their manifest.
absl::StatusOr<Packed> BuildPacked(
    QuantizedModel& model, const std::vector<WeightQuantState>& weights,
    const std::vector<ActivationQuantState>& acts, const GraphFacts& facts);

}  // namespace autoq::qat::export_internal

#endif  // AUTOQ_QAT_EXPORT_INTERNAL_H_
