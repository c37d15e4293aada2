// Exporting a fine-tuned QuantizedModel for deployment.
//
// Three artifacts describe the same model:
//  * a standalone TorchScript module (plain ATen ops only, no autoq::
//    operators) that computes what QuantizedModel::Forward computes in eval
//    mode: weights hold their fake-quantized values and every quantized
//    activation is followed by aten::fake_quantize_per_tensor_affine with
//    the constants of its EMA range. It loads with torch.jit.load in Python
//    or torch::jit::load in C++.
//  * the deployable integer layers: a packed payload (integer weights at
//    each layer's bit-width, int32 biases, float32 scales, int32 zero
//    points; batch-norms folded into the layers) whose size is exactly the
//    model size of the cost model (ComputeCost), and a JSON manifest that
//    says where each layer's data lies and how to interpret it (see
//    kPackingDescription in export_packed.cc, repeated in the manifest).
//  * an ONNX model (opset 13, QuantizeLinear/DequantizeLinear) for ONNX
//    Runtime and the toolchains that read QDQ graphs (export_onnx.h).
//
// Thread-safety: uses `model` exclusively for the duration of the call.
#ifndef AUTOQ_QAT_EXPORT_H_
#define AUTOQ_QAT_EXPORT_H_

#include <string>

#include "absl/status/statusor.h"
#include "qat/quantized_model.h"

namespace autoq::qat {

inline constexpr int kExportFormatVersion = 1;

struct ExportedModel {
  std::string torchscript;    // a TorchScript archive (torch::jit::save bytes)
  std::string packed;         // the payload (see export_packed.cc)
  std::string manifest_json;  // describes the payload
  // The ONNX QDQ model and its AIMET-style encodings (export_onnx.h); both
  // empty, with the reason in onnx_error, when the model has an op ONNX
  // cannot express here or the build has no ONNX. The other exports stand.
  std::string onnx;
  std::string onnx_encodings_json;
  std::string onnx_error;
};

// Exports `model` as it evaluates now (eval mode, BN running statistics);
// call after RunQat. The model is switched to eval mode for the export and
// returned to its previous mode. Fails with FailedPrecondition when
// activations are quantized but not calibrated, and for a float-mode model
// (nothing to pack).
absl::StatusOr<ExportedModel> ExportQuantizedModel(QuantizedModel& model);

}  // namespace autoq::qat

#endif  // AUTOQ_QAT_EXPORT_H_
