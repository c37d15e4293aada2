// Shared helpers of qat/'s LibTorch tests.
#ifndef AUTOQ_QAT_TEST_MODELS_H_
#define AUTOQ_QAT_TEST_MODELS_H_

#include <ATen/ATen.h>
#include <torch/csrc/jit/api/module.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
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

// An ImageSource serving in-memory uint8 images, counting its loads and
// failing (as a decoder would, naming a file) on one index if asked.
class MemorySource : public ImageSource {
 public:
  explicit MemorySource(at::Tensor images, int64_t fail_at = -1)
      : images_(images.contiguous()), fail_at_(fail_at) {}
  std::vector<int64_t> shape() const override {
    return std::vector<int64_t>(images_.sizes().begin() + 1,
                                images_.sizes().end());
  }
  void Load(int64_t index, uint8_t* out) const override {
    if (index == fail_at_) {
      throw std::runtime_error("image" + std::to_string(index) +
                               ".jpg: not a JPEG or PNG image");
    }
    ++loads_;
    const at::Tensor img = images_[index];
    std::memcpy(out, img.data_ptr<uint8_t>(),
                static_cast<size_t>(img.numel()));
  }
  int64_t loads() const { return loads_.load(); }

 private:
  const at::Tensor images_;
  const int64_t fail_at_;
  mutable std::atomic<int64_t> loads_{0};
};

// `data` (uint8 images) as a streamed dataset over a MemorySource.
inline TensorDataset Streamed(const TensorDataset& data,
                              std::shared_ptr<const MemorySource>* source,
                              int64_t fail_at = -1) {
  auto s = std::make_shared<const MemorySource>(data.images, fail_at);
  if (source != nullptr) *source = s;
  TensorDataset out = data;
  out.images = at::Tensor();
  out.source = s;
  out.rows = at::arange(data.size(), at::kLong);
  return out;
}

}  // namespace autoq::qat::test_util

#endif  // AUTOQ_QAT_TEST_MODELS_H_
