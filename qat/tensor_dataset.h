// In-memory labelled image data, the unit that the QAT loop consumes.
//
// Images are kept as stored (uint8 for IDX/CIFAR files, float32 for tensor
// files) and converted per batch, so a 60k-image set costs 47 MB, not 188 MB.
// A TensorDataset is a value: copying it shares the underlying tensors.
// Thread-safety: immutable after construction; safe to read from any thread.
#ifndef AUTOQ_QAT_TENSOR_DATASET_H_
#define AUTOQ_QAT_TENSOR_DATASET_H_

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace autoq::qat {

struct TensorDataset {
  // N x C x H x W; dtype uint8 (raw pixels 0..255) or float32 (already
  // scaled, used as is before normalization).
  at::Tensor images;
  // N, int64, each in [0, num_classes).
  at::Tensor labels;
  int64_t num_classes = 0;
  // Per-channel normalization applied after uint8 pixels are scaled to
  // [0, 1]: x = (x - mean[c]) / std[c]. Empty means no normalization.
  std::vector<float> mean;
  std::vector<float> std;

  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
};

// Returns the normalized float32 batch for `indices` (int64, 1-D) of `data`.
at::Tensor GatherImages(const TensorDataset& data, const at::Tensor& indices);

// Returns rows [begin, end) as a normalized float32 batch.
at::Tensor SliceImages(const TensorDataset& data, int64_t begin, int64_t end);

// Returns a dataset holding the first `n` samples (or all when n <= 0 or
// n >= size). Shares storage with `data`.
TensorDataset Head(const TensorDataset& data, int64_t n);

}  // namespace autoq::qat

#endif  // AUTOQ_QAT_TENSOR_DATASET_H_
