// Any bytes as a torch.save file of {'images': X, 'labels': y}:
// ReadTensorFile must answer with a dataset whose shapes and labels it
// checked, or an error, never crash. The zip and pickle parsing is
// LibTorch's (not instrumented; a crash in it still stops the fuzzer).
#include <cstddef>
#include <cstdint>

#include "evaluator/dataset.h"
#include "fuzz/dataset_check.h"
#include "fuzz/fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static autoq::fuzz::MemFile file("tensor-file");
  absl::StatusOr<autoq::qat::TensorDataset> d =
      autoq::evaluator::ReadTensorFile(file.Fill(data, size));
  if (!d.ok()) return 0;
  autoq::fuzz::CheckDataset(*d, /*channels=*/-1, d->num_classes);
  return 0;
}
