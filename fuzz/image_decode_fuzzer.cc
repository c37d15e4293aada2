// Any bytes as an image file: DecodeImage must answer with an image or a
// DataLoss error, never crash, and a decoded image must fit to a model's
// input in both channel counts.
#include <cstddef>
#include <cstdint>
#include <string>

#include "evaluator/image_decode.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<autoq::evaluator::Image> image =
      autoq::evaluator::DecodeImage(bytes, "fuzz");
  if (!image.ok()) return 0;
  // Huge declared sizes are the decoders' to refuse; fitting is bounded.
  if (image->width < 1 || image->height < 1) return 0;
  for (int64_t channels : {1, 3}) {
    const std::vector<uint8_t> fitted =
        autoq::evaluator::FitImage(*image, channels, 7, 5);
    if (fitted.size() != static_cast<size_t>(channels * 7 * 5)) {
      __builtin_trap();
    }
  }
  return 0;
}
