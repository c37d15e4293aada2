#include "qat/export.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "qat/export_internal.h"
#include "qat/export_onnx.h"
#include "qat/torch_errors.h"

namespace autoq::qat {
namespace {

// Puts the model back into the mode it had, on every return path.
class RestoreMode {
 public:
  explicit RestoreMode(QuantizedModel& model)
      : model_(model), training_(model.is_training()) {}
  ~RestoreMode() {
    if (model_.is_training() != training_) model_.Train(training_);
  }

 private:
  QuantizedModel& model_;
  bool training_;
};

}  // namespace

absl::StatusOr<ExportedModel> ExportQuantizedModel(QuantizedModel& model) {
  if (model.options().bits.empty()) {
    return absl::FailedPreconditionError(
        "the model runs in float (no bit-widths): nothing to export as "
        "integers");
  }
  const bool quantize_acts = model.quantizing_activations();
  std::vector<ActivationQuantState> acts;
  std::vector<WeightQuantState> weights;
  RestoreMode restore(model);
  try {
    acts = model.activation_states();
    if (quantize_acts) {
      for (const LayerInfo& l : model.analysis().layers) {
        const ActivationQuantState& a =
            acts.at(static_cast<size_t>(l.graph_index));
        if (a.abits > 0 && !a.calibrated) {
          return absl::FailedPreconditionError(absl::StrCat(
              "cannot export: the ", a.abits, "-bit activation of ",
              l.weight_path,
              " has no calibrated range (run RunQat, or calibrate with "
              "epochs = 0, before exporting)"));
        }
      }
    }
    // Eval mode: BN running statistics, and the module's weights become
    // the eval-mode fake-quantized values the TorchScript export copies.
    model.Train(false);
    weights = model.weight_states();
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("cannot read the model's state: ",
                                            SummarizeTorchError(e)));
  }
  export_internal::GraphFacts facts;
  ExportedModel out;
  auto ts =
      export_internal::BuildTorchScript(model, acts, quantize_acts, &facts);
  if (!ts.ok()) return ts.status();
  out.torchscript = *std::move(ts);
  auto packed = export_internal::BuildPacked(model, weights, acts, facts);
  if (!packed.ok()) return packed.status();
  out.packed = std::move(packed->payload);
  out.manifest_json = std::move(packed->manifest_json);
  auto onnx = export_internal::BuildOnnx(model, out.torchscript, weights);
  if (onnx.ok()) {
    out.onnx = std::move(onnx->model);
    out.onnx_encodings_json = std::move(onnx->encodings_json);
  } else {
    out.onnx_error = std::string(onnx.status().message());
  }
  return out;
}

}  // namespace autoq::qat
