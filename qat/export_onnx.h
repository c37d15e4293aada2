// Internal to qat/: the ONNX half of ExportQuantizedModel (export.h).
//
// Translates the standalone TorchScript export op by op into an ONNX graph
// (opset 13) in QDQ form:
//  * each gene layer's weight is an integer initializer (int8 for
//    per-channel symmetric codes, uint8 for per-tensor affine ones, values
//    within the layer's 2^wbits levels) behind DequantizeLinear, with the
//    batch-norm folded in as in the packed export;
//  * each quantized activation is Clip (when its range is narrower than 8
//    bits) + QuantizeLinear + DequantizeLinear with the exported scale and
//    zero point;
//  * the true bits of every layer go in metadata_props ("autoq.layers").
// Beside it, an encodings JSON in AIMET's layout (activation_encodings and
// param_encodings: bitwidth, scale, offset, min, max, is_symmetric).
//
// Ops without a translation here (control flow, unusual reshapes, ...)
// fail with InvalidArgument naming the op; the caller keeps the other
// exports.
#ifndef AUTOQ_QAT_EXPORT_ONNX_H_
#define AUTOQ_QAT_EXPORT_ONNX_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "qat/quantized_model.h"

namespace autoq::qat::export_internal {

struct OnnxExport {
  std::string model;           // serialized onnx.ModelProto
  std::string encodings_json;  // AIMET-style encodings
};

// Whether this build can write ONNX (Debian's libonnx-dev was found).
bool OnnxExportAvailable();

// The ONNX form of `torchscript` (BuildTorchScript's archive of `model`),
// checked with onnx::checker. `weights` as for BuildPacked.
absl::StatusOr<OnnxExport> BuildOnnx(
    QuantizedModel& model, const std::string& torchscript,
    const std::vector<WeightQuantState>& weights);

}  // namespace autoq::qat::export_internal

#endif  // AUTOQ_QAT_EXPORT_ONNX_H_
