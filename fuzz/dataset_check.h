// What a training run relies on in a dataset a reader accepted, checked by
// the reader fuzz targets: N x C x H x W images with one label each and
// every label in [0, num_classes). A violation stops the fuzzer
// (__builtin_trap), which keeps the input as a crash.
#ifndef AUTOQ_FUZZ_DATASET_CHECK_H_
#define AUTOQ_FUZZ_DATASET_CHECK_H_

#include <cstdint>

#include "evaluator/dataset.h"

namespace autoq::fuzz {

// `channels` < 0: any channel count.
inline void CheckDataset(const qat::TensorDataset& d, int64_t channels,
                         int64_t num_classes) {
  if (d.images.dim() != 4 || d.images.size(0) != d.labels.size(0) ||
      (channels >= 0 && d.images.size(1) != channels) ||
      d.labels.min().item<int64_t>() < 0 ||
      d.labels.max().item<int64_t>() >= num_classes) {
    __builtin_trap();
  }
}

}  // namespace autoq::fuzz

#endif  // AUTOQ_FUZZ_DATASET_CHECK_H_
