#include "qat/tensor_dataset.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <vector>

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

// The uint8 images of source rows `rows` (int64, 1-D), decoded in
// parallel on the intra-op pool or on this thread alone.
at::Tensor Decode(const TensorDataset& data, const at::Tensor& rows,
                  bool parallel) {
  const at::Tensor r = rows.to(at::kCPU).contiguous();
  const int64_t n = r.size(0);
  std::vector<int64_t> shape = data.source->shape();
  const int64_t image_bytes = shape[0] * shape[1] * shape[2];
  shape.insert(shape.begin(), n);
  at::Tensor out = at::empty(shape, at::kByte);
  uint8_t* base = out.data_ptr<uint8_t>();
  const int64_t* row = r.data_ptr<int64_t>();
  auto load = [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      data.source->Load(row[i], base + i * image_bytes);
    }
  };
  if (parallel) {
    at::parallel_for(0, n, 1, load);
  } else {
    load(0, n);
  }
  return out;
}

}  // namespace

std::vector<int64_t> ImageShape(const TensorDataset& data) {
  if (data.streamed()) return data.source->shape();
  if (!data.images.defined() || data.images.dim() < 2) return {};
  return std::vector<int64_t>(data.images.sizes().begin() + 1,
                              data.images.sizes().end());
}

TensorDataset Select(const TensorDataset& data, const at::Tensor& index) {
  TensorDataset out = data;
  if (data.streamed()) {
    out.rows = data.rows.index_select(0, index);
  } else {
    out.images = data.images.index_select(0, index);
  }
  out.labels = data.labels.index_select(0, index);
  return out;
}

at::Tensor GatherImages(const TensorDataset& data, const at::Tensor& indices) {
  if (data.streamed()) {
    return Normalize(data,
                     Decode(data, data.rows.index_select(0, indices), true));
  }
  return Normalize(data, data.images.index_select(0, indices));
}

at::Tensor GatherImagesOnThisThread(const TensorDataset& data,
                                    const at::Tensor& indices) {
  if (data.streamed()) {
    return Normalize(data,
                     Decode(data, data.rows.index_select(0, indices), false));
  }
  return Normalize(data, data.images.index_select(0, indices));
}

at::Tensor SliceImages(const TensorDataset& data, int64_t begin, int64_t end) {
  if (data.streamed()) {
    return Normalize(data, Decode(data, data.rows.slice(0, begin, end), true));
  }
  return Normalize(data, data.images.slice(0, begin, end));
}

TensorDataset Head(const TensorDataset& data, int64_t n) {
  if (n <= 0 || n >= data.size()) return data;
  TensorDataset out = data;
  if (data.streamed()) {
    out.rows = data.rows.slice(0, 0, n);
  } else {
    out.images = data.images.slice(0, 0, n);
  }
  out.labels = data.labels.slice(0, 0, n);
  return out;
}

}  // namespace autoq::qat
