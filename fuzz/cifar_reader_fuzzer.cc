// Any bytes as a CIFAR-10 binary batch (raw or gzipped): ReadCifar10 must
// answer with whole records and labels in [0, 10) or an error, never crash.
#include <cstddef>
#include <cstdint>

#include "evaluator/dataset.h"
#include "fuzz/dataset_check.h"
#include "fuzz/fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static autoq::fuzz::MemFile batch("cifar-batch");
  absl::StatusOr<autoq::qat::TensorDataset> d =
      autoq::evaluator::ReadCifar10({batch.Fill(data, size)});
  if (!d.ok()) return 0;
  autoq::fuzz::CheckDataset(*d, /*channels=*/3, /*num_classes=*/10);
  return 0;
}
