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
#include "qat/model_info.h"

namespace autoq::qat {

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

}  // namespace autoq::qat

#endif  // AUTOQ_QAT_MODEL_ANALYSIS_H_
