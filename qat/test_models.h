// Shared helpers of qat/'s LibTorch tests.
#ifndef AUTOQ_QAT_TEST_MODELS_H_
#define AUTOQ_QAT_TEST_MODELS_H_

#include <ATen/ATen.h>
#include <torch/csrc/jit/api/module.h>

#include <vector>

#include "qat/graph_layers.h"
#include "qat/model_analysis.h"
#include "qat/tensor_dataset.h"

namespace autoq::qat::test_util {

// Gives every BN non-trivial statistics so folding is actually exercised.
inline void RandomizeBatchNorms(torch::jit::Module& m, const ModelAnalysis& a) {
  at::NoGradGuard no_grad;
  for (const LayerInfo& l : a.layers) {
    if (l.bn_path.empty()) continue;
    torch::jit::Module bn = SubmoduleAt(m, l.bn_path);
    bn.attr("weight").toTensor().uniform_(0.5, 1.5);
    bn.attr("bias").toTensor().uniform_(-0.2, 0.2);
    bn.attr("running_mean").toTensor().uniform_(-0.3, 0.3);
    bn.attr("running_var").toTensor().uniform_(0.5, 2.0);
  }
}

// `n` random uint8 images of `input_shape` (C, H, W) with random labels of
// `classes` classes, from LibTorch's global generator (seed it first).
inline TensorDataset RandomData(const std::vector<int64_t>& input_shape,
                                int64_t n, int64_t classes) {
  TensorDataset d;
  std::vector<int64_t> shape = {n};
  shape.insert(shape.end(), input_shape.begin(), input_shape.end());
  d.images = at::randint(0, 256, shape, at::kByte);
  d.labels = at::randint(0, classes, {n}, at::kLong);
  d.num_classes = classes;
  return d;
}

}  // namespace autoq::qat::test_util

#endif  // AUTOQ_QAT_TEST_MODELS_H_
