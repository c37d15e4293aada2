// Any bytes as a CIFAR-10 binary batch (raw or gzipped): ReadCifar10 must
// answer with whole records and labels in [0, 10) or an error, never crash.
#include <cstddef>
#include <cstdint>

#include "evaluator/dataset.h"
#include "fuzz/fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static autoq::fuzz::MemFile batch("cifar-batch");
  absl::StatusOr<autoq::qat::TensorDataset> d =
      autoq::evaluator::ReadCifar10({batch.Fill(data, size)});
  if (!d.ok()) return 0;
  if (d->images.dim() != 4 || d->images.size(0) != d->labels.size(0) ||
      d->images.size(1) != 3 || d->labels.min().item<int64_t>() < 0 ||
      d->labels.max().item<int64_t>() >= 10) {
    __builtin_trap();
  }
  return 0;
}
