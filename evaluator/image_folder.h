// Image folders in torchvision's ImageFolder layout: ROOT/<class>/<image>,
// classes indexed by sorted folder name, JPEG and PNG images fitted to one
// C x H x W shape (evaluator/image_decode.h) and held as uint8, or, for a
// folder larger than the memory budget, streamed: decoded per batch
// (qat::ImageSource) with a decode cache of bounded size.
//
// Thread-safety: reentrant; ReadImageFolder decodes on its own threads.
#ifndef AUTOQ_EVALUATOR_IMAGE_FOLDER_H_
#define AUTOQ_EVALUATOR_IMAGE_FOLDER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "qat/tensor_dataset.h"

namespace autoq::evaluator {

struct ImageFolderOptions {
  // The shape every image is fitted to.
  int64_t channels = 3, height = 224, width = 224;
  // Skip (and count) files that do not decode instead of failing.
  bool skip_bad = false;
  // Decoding threads; 0 = one per core.
  int threads = 0;
  // A folder whose decoded images would take more than this is streamed
  // (0: always streamed); streamed, at most cache_bytes of decoded images
  // are kept.
  int64_t memory_bytes = int64_t{2} << 30;
  int64_t cache_bytes = int64_t{512} << 20;
};

struct ImageFolderData {
  qat::TensorDataset data;                 // N x C x H x W uint8, labels
  std::vector<std::string> classes;        // sorted folder names = label order
  int64_t skipped = 0;                     // bad images skipped (skip_bad)
  int64_t ignored = 0;                     // files that are not .jpg/.jpeg/.png
  std::vector<std::string> empty_classes;  // class folders with no image
  int64_t decoded_bytes = 0;  // of all images, as uint8 at the fitted shape
};

// Reads `root`. When `classes` is not empty the folder's classes must be
// exactly those (a split of a dataset whose training split set them).
// Errors: NotFound for a missing root; InvalidArgument for no class
// folders or other classes than expected (naming them); DataLoss naming
// the first image that does not decode (unless skip_bad). A streamed
// folder's images are not decoded here unless skip_bad asks for a check
// of every image; one that fails later fails the fine-tune using it,
// naming the file.
absl::StatusOr<ImageFolderData> ReadImageFolder(
    const std::string& root, const ImageFolderOptions& options,
    const std::vector<std::string>& classes = {});

}  // namespace autoq::evaluator

#endif  // AUTOQ_EVALUATOR_IMAGE_FOLDER_H_
