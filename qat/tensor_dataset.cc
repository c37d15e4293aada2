#include "qat/tensor_dataset.h"

#include <ATen/ATen.h>

namespace autoq::qat {
namespace {

at::Tensor Normalize(const TensorDataset& data, at::Tensor batch) {
  if (batch.scalar_type() != at::kByte && data.mean.empty()) {
    return batch.to(at::kFloat);
  }
  // A float batch is a view of the dataset (SliceImages): normalize a copy,
  // never the stored images.
  at::Tensor x = batch.scalar_type() == at::kByte
                     ? batch.to(at::kFloat).mul_(1.0f / 255.0f)
                     : batch.to(at::kFloat, /*non_blocking=*/false,
                                /*copy=*/true);
  if (data.mean.empty()) return x;
  const int64_t c = x.size(1);
  auto opts = at::TensorOptions().dtype(at::kFloat);
  at::Tensor mean = at::empty({c}, opts);
  at::Tensor stdv = at::empty({c}, opts);
  for (int64_t i = 0; i < c; ++i) {
    // One value broadcasts to every channel.
    size_t j = data.mean.size() == 1 ? 0 : static_cast<size_t>(i);
    mean[i] = data.mean[j];
    stdv[i] = data.std[j];
  }
  return x.sub_(mean.view({1, c, 1, 1})).div_(stdv.view({1, c, 1, 1}));
}

}  // namespace

at::Tensor GatherImages(const TensorDataset& data, const at::Tensor& indices) {
  return Normalize(data, data.images.index_select(0, indices));
}

at::Tensor SliceImages(const TensorDataset& data, int64_t begin, int64_t end) {
  return Normalize(data, data.images.slice(0, begin, end));
}

TensorDataset Head(const TensorDataset& data, int64_t n) {
  if (n <= 0 || n >= data.size()) return data;
  TensorDataset out = data;
  out.images = data.images.slice(0, 0, n);
  out.labels = data.labels.slice(0, 0, n);
  return out;
}

}  // namespace autoq::qat
