// Labelled image data, the unit that the QAT loop consumes.
//
// Images are kept as stored (uint8 for IDX/CIFAR files, float32 for tensor
// files) and converted per batch, so a 60k-image set costs 47 MB, not 188 MB.
// A dataset larger than memory is streamed instead: its images come from
// an ImageSource (an image folder's decoder) batch by batch, and only the
// labels and row numbers stay in memory.
// A TensorDataset is a value: copying it shares the underlying tensors.
// Thread-safety: immutable after construction; safe to read from any thread.
#ifndef AUTOQ_QAT_TENSOR_DATASET_H_
#define AUTOQ_QAT_TENSOR_DATASET_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace autoq::qat {

// Images decoded on demand, for datasets streamed from disk. Load is called
// from several threads at once and must be safe so.
class ImageSource {
 public:
  virtual ~ImageSource() = default;
  // The C x H x W shape of every image.
  virtual std::vector<int64_t> shape() const = 0;
  // Writes image `index` (C*H*W uint8 pixels, CHW) to `out`. Throws
  // std::runtime_error naming the file when it cannot be read or decoded.
  virtual void Load(int64_t index, uint8_t* out) const = 0;
};

struct TensorDataset {
  // N x C x H x W; dtype uint8 (raw pixels 0..255) or float32 (already
  // scaled, used as is before normalization). Undefined when streamed.
  at::Tensor images;
  // Streamed datasets: row i is image rows[i] (int64, N) of `source`,
  // uint8. Null for in-memory datasets.
  std::shared_ptr<const ImageSource> source;
  at::Tensor rows;
  // N, int64, each in [0, num_classes).
  at::Tensor labels;
  int64_t num_classes = 0;
  // Per-channel normalization applied after uint8 pixels are scaled to
  // [0, 1]: x = (x - mean[c]) / std[c]. Empty means no normalization.
  std::vector<float> mean;
  std::vector<float> std;

  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
  bool streamed() const { return source != nullptr; }
};

// C, H, W of one image of `data` (in memory or streamed).
std::vector<int64_t> ImageShape(const TensorDataset& data);

// The rows `index` (int64, 1-D) of `data`, in that order; in memory a copy,
// streamed the same source with those rows.
TensorDataset Select(const TensorDataset& data, const at::Tensor& index);

// Returns the normalized float32 batch for `indices` (int64, 1-D) of `data`.
// A streamed dataset's images are decoded on the intra-op threads; the
// decoder's error (naming the file) is thrown as std::runtime_error.
at::Tensor GatherImages(const TensorDataset& data, const at::Tensor& indices);

// GatherImages decoding on the calling thread only: for background
// prefetch threads, which must not compete for the intra-op pool.
at::Tensor GatherImagesOnThisThread(const TensorDataset& data,
                                    const at::Tensor& indices);

// Returns rows [begin, end) as a normalized float32 batch.
at::Tensor SliceImages(const TensorDataset& data, int64_t begin, int64_t end);

// Returns a dataset holding the first `n` samples (or all when n <= 0 or
// n >= size). Shares storage with `data`.
TensorDataset Head(const TensorDataset& data, int64_t n);

}  // namespace autoq::qat

#endif  // AUTOQ_QAT_TENSOR_DATASET_H_
