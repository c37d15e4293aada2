// Image folders in torchvision's ImageFolder layout: ROOT/<class>/<image>,
// classes indexed by sorted folder name, JPEG and PNG images fitted to one
// C x H x W shape (evaluator/image_decode.h) and held as uint8.
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
};

struct ImageFolderData {
  qat::TensorDataset data;                 // N x C x H x W uint8, labels
  std::vector<std::string> classes;        // sorted folder names = label order
  int64_t skipped = 0;                     // bad images skipped (skip_bad)
  int64_t ignored = 0;                     // files that are not .jpg/.jpeg/.png
  std::vector<std::string> empty_classes;  // class folders with no image
};

// Reads `root`. When `classes` is not empty the folder's classes must be
// exactly those (a split of a dataset whose training split set them).
// Errors: NotFound for a missing root; InvalidArgument for no class
// folders or other classes than expected (naming them); DataLoss naming
// the first image that does not decode (unless skip_bad).
absl::StatusOr<ImageFolderData> ReadImageFolder(
    const std::string& root, const ImageFolderOptions& options,
    const std::vector<std::string>& classes = {});

}  // namespace autoq::evaluator

#endif  // AUTOQ_EVALUATOR_IMAGE_FOLDER_H_
