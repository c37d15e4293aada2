// The built-in model of the embedded default job: a small MobileNet-v1-style
// CNN (depthwise-separable blocks with BN and ReLU) for 1x28x28 images,
// built directly as a TorchScript module so it is trained, quantized and
// saved exactly like a user's model.
#ifndef AUTOQ_QAT_BUILTIN_MODEL_H_
#define AUTOQ_QAT_BUILTIN_MODEL_H_

#include <cstdint>

#include <torch/csrc/jit/api/module.h>

namespace autoq::qat {

struct BuiltinModelOptions {
  int64_t in_channels = 1;
  int64_t num_classes = 10;
  // Channel width multiplier (1.0: 32..256 channels).
  double width = 1.0;
  uint64_t seed = 0;  // He-normal weight initialization
};

// 1 stem conv + 5 depthwise-separable blocks (10 convs) + 1 linear = 12
// quantizable layers, 11 BN folds. Returned in training mode.
torch::jit::Module MakeBuiltinModel(const BuiltinModelOptions& options = {});

}  // namespace autoq::qat

#endif  // AUTOQ_QAT_BUILTIN_MODEL_H_
