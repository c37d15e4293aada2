// Any bytes as an IDX image file and its label file (the input split at a
// point given by its first two bytes), raw or gzipped: ReadIdx must answer
// with a dataset that matches the headers or an error, never crash or read
// out of bounds.
#include <cstddef>
#include <cstdint>

#include "evaluator/dataset.h"
#include "fuzz/dataset_check.h"
#include "fuzz/fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static autoq::fuzz::MemFile images("idx-images"), labels("idx-labels");
  if (size < 2) return 0;
  size_t split = (size_t{data[0]} << 8 | data[1]) % (size - 1);
  data += 2;
  size -= 2;
  const std::string& images_path = images.Fill(data, split);
  const std::string& labels_path = labels.Fill(data + split, size - split);
  absl::StatusOr<autoq::qat::TensorDataset> d =
      autoq::evaluator::ReadIdx(images_path, labels_path, /*num_classes=*/10);
  if (!d.ok()) return 0;
  autoq::fuzz::CheckDataset(*d, /*channels=*/1, /*num_classes=*/10);
  return 0;
}
