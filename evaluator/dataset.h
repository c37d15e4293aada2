// Dataset loading for the evaluator: parses a dataset spec string, reads IDX
// (MNIST / Fashion-MNIST), CIFAR-10 binary and PyTorch tensor files into
// qat::TensorDataset, and carves train / val / test splits.
//
// Spec grammar (ParseDataSpec):
//
//   spec    := source { ';' option }
//   source  := 'fashion-mnist'              Debian's dataset-fashion-mnist
//            | 'fashion-mnist:' DIR         IDX files in DIR
//            | 'mnist:' DIR | 'idx:' DIR    same four IDX names in DIR
//            | 'cifar10:' DIR               CIFAR-10 binary version in DIR
//            | 'tensor:' TRAIN [',' TEST]   torch.save({'images','labels'})
//            | 'folder:' ROOT               JPEG/PNG images in class folders
//   option  := 'mean=' floats | 'std=' floats
//            | 'norm=' ('imagenet' | 'cifar')   preset mean and std
//            | 'val=' FILE                  the validation split, a tensor
//                                           file; nothing is carved from
//                                           the training file then
//            | 'size=' INT ['x' INT]        folder: images fitted to H x W
//            | 'channels=' ('1' | '3')      folder: gray or RGB (default 3)
//            | 'skip_bad=1'                 folder: skip and count images
//                                           that do not decode
//            | 'memory_mb=' INT             folder: stream a split whose
//                                           decoded images exceed this
//                                           (default 2048; 0: always)
//            | 'cache_mb=' INT              folder: decoded images kept
//                                           when streaming (default 512)
//   floats  := float { ',' float }          one value, or one per channel
//
// Image folders follow torchvision's ImageFolder: ROOT/<class>/<image>,
// classes indexed by sorted folder name. With subfolders ROOT/train,
// ROOT/val and ROOT/test those are the splits (val and test carved from
// train only when missing); without, ROOT holds the class folders and both
// are carved. Images are resized (shorter side) and center-cropped to the
// size option, or to SplitOptions::input_shape (the model's input).
//
// IDX directories hold train-images-idx3-ubyte, train-labels-idx1-ubyte,
// t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, each optionally with a
// .gz suffix (the gzipped name is preferred when both exist). Paths may not
// contain ';' (nor ',' for tensor files).
//
// Errors are reported as absl::Status naming the offending file; nothing here
// throws (LibTorch exceptions are caught and converted).
//
// Thread-safety: all functions are reentrant and touch no global state (the
// split permutation uses its own seeded RNG, not torch's global generator).
#ifndef AUTOQ_EVALUATOR_DATASET_H_
#define AUTOQ_EVALUATOR_DATASET_H_

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "qat/tensor_dataset.h"

namespace autoq::evaluator {

// Where Debian's dataset-fashion-mnist package installs its IDX files.
inline constexpr char kDebianFashionMnistDir[] =
    "/usr/share/datasets/fashion-mnist";

// A parsed dataset spec. A plain value; see the grammar above.
struct DataSpec {
  // One of "fashion-mnist", "mnist", "idx", "cifar10", "tensor", "folder".
  std::string kind;
  // Directory kinds ("fashion-mnist", "mnist", "idx", "cifar10"): both paths
  // hold the directory. "tensor": the train file and the optional test file
  // (empty when the test split is carved from the train file).
  std::string train_path;
  std::string test_path;
  // A tensor file holding the validation split; empty: carved from the
  // training file (SplitOptions::val_size, seeded by SplitOptions::seed).
  std::string val_path;
  // Normalization copied into every split; both empty, or the same length
  // (1 = all channels, else one per channel), std > 0.
  std::vector<float> mean;
  std::vector<float> std;
  // "folder": the image shape (0 = from SplitOptions::input_shape), and
  // whether undecodable images are skipped.
  int64_t image_height = 0, image_width = 0, image_channels = 0;
  bool skip_bad = false;
  // "folder": a split whose decoded images would take more than this many
  // MB is streamed from disk (0: every split), keeping at most cache_mb
  // of decoded images in memory.
  int64_t memory_mb = 2048;
  int64_t cache_mb = 512;
};

// Parses `spec`. InvalidArgument names the unknown kind / option or the
// malformed value.
absl::StatusOr<DataSpec> ParseDataSpec(std::string_view spec);

// How LoadDataset carves and trims the splits. 0 means "all" for subsets.
struct SplitOptions {
  // Samples moved from the training file into the validation split.
  int64_t val_size = 5000;
  // Keep only the first n samples of each split (0 = all).
  int64_t train_subset = 0;
  int64_t val_subset = 0;
  int64_t test_subset = 0;
  // Seeds the train/val permutation (std::mt19937_64).
  uint64_t seed = 0;
  // Only for tensor specs without a TEST file: samples carved from the train
  // file as the test split (0 = same as val_size). Independent of `seed`, so
  // reported test numbers stay comparable across seeds.
  int64_t test_size = 0;
  // The model's input (C, H, W), for image folders whose spec gives no
  // size; empty when unknown.
  std::vector<int64_t> input_shape;
};

// The three splits. The search scores on `val`; `test` is for final
// reporting only.
struct DatasetSplits {
  qat::TensorDataset train;
  qat::TensorDataset val;
  qat::TensorDataset test;
  // Things a user should hear about (images skipped, empty class folders,
  // a validation split carved from the training files), one line each.
  std::vector<std::string> notes;
  // The validation split was carved out of the training files: a model
  // trained on those same files scores too high on it.
  bool val_carved = false;
};

// Loads the dataset described by `spec` and splits it:
//  - test: the test file (or, for a tensor spec without one, a fixed-seed
//    carve-out of the train file), then trimmed to test_subset;
//  - val: the first val_size samples of a permutation of the (remaining)
//    training samples seeded with options.seed, trimmed to val_subset;
//    or, when the spec names a val file, that file trimmed to val_subset;
//  - train: the rest of that permutation, in permuted order, trimmed to
//    train_subset (with a val file: the whole training file, permuted).
// The same seed gives the same splits. num_classes is 10 for IDX / CIFAR-10
// and max(label) + 1 over train + test for tensor files.
absl::StatusOr<DatasetSplits> LoadDataset(const DataSpec& spec,
                                          const SplitOptions& options);

// Reads an IDX image file (magic 0x00000803, N x H x W uint8) and its IDX
// label file (magic 0x00000801, N uint8), each raw or gzipped. Images come
// back as N x 1 x H x W uint8, labels as N int64 in [0, num_classes).
absl::StatusOr<qat::TensorDataset> ReadIdx(const std::string& images_path,
                                           const std::string& labels_path,
                                           int64_t num_classes);

// Reads and concatenates CIFAR-10 binary batches (records of 1 label byte +
// 3 x 32 x 32 CHW pixels). Images come back as N x 3 x 32 x 32 uint8;
// num_classes = 10.
absl::StatusOr<qat::TensorDataset> ReadCifar10(
    const std::vector<std::string>& files);

// Reads a file written by torch.save({'images': X, 'labels': y}, path) with
// X an N x C x H x W uint8 or float32 tensor and y an N int64 tensor of
// non-negative labels. num_classes = max(y) + 1.
absl::StatusOr<qat::TensorDataset> ReadTensorFile(const std::string& path);

// Checks that `labels` is a 1-D int64 CPU tensor with values in
// [0, num_classes); the error names `source`, the first offending index and
// its value.
absl::Status ValidateLabels(const at::Tensor& labels, int64_t num_classes,
                            std::string_view source);

namespace internal {

// Reads a whole file, gunzipping it when it is gzipped (zlib's gzread passes
// raw files through). NotFound names a missing path; DataLoss a truncated
// gzip stream.
absl::StatusOr<std::string> ReadFileBytes(const std::string& path);

}  // namespace internal
}  // namespace autoq::evaluator

#endif  // AUTOQ_EVALUATOR_DATASET_H_
