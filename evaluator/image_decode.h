// Decoding JPEG and PNG files (Debian's libjpeg-turbo and libpng) and
// fitting a decoded image to a model's input: channel conversion, resize of
// the shorter side, center crop.
//
// Thread-safety: reentrant; every call has its own decoder state.
#ifndef AUTOQ_EVALUATOR_IMAGE_DECODE_H_
#define AUTOQ_EVALUATOR_IMAGE_DECODE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace autoq::evaluator {

// An 8-bit image, rows of width * channels bytes (interleaved, HWC).
struct Image {
  int64_t height = 0, width = 0, channels = 0;  // channels 1, 2, 3 or 4
  std::vector<uint8_t> pixels;
};

// Whether this build links the decoders (libjpeg and libpng were found).
bool ImageDecodingAvailable();

// Whether `name` ends in an image extension this reader decodes (.jpg,
// .jpeg, .png; any case).
bool IsImageFileName(const std::string& name);

// Decodes JPEG or PNG `bytes` (told apart by their signatures; 16-bit PNG
// is reduced to 8 bits, palettes expanded). `name` only labels errors:
// DataLoss "NAME: not a JPEG or PNG image" or the decoder's message; an
// image over 2^26 pixels (8192 x 8192) is refused before its pixels are
// allocated.
absl::StatusOr<Image> DecodeImage(const std::string& bytes,
                                  const std::string& name);

// `image` as `channels` (1 or 3) x `height` x `width`, CHW uint8: gray to
// RGB by repetition, RGB to gray by ITU-R BT.601 luma, alpha dropped; the
// shorter side resized to the target's (bilinear, area-averaged when
// shrinking) and the longer one center-cropped, as torchvision's
// Resize + CenterCrop evaluation transform.
std::vector<uint8_t> FitImage(const Image& image, int64_t channels,
                              int64_t height, int64_t width);

}  // namespace autoq::evaluator

#endif  // AUTOQ_EVALUATOR_IMAGE_DECODE_H_
