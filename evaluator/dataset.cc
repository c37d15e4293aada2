// Spec parsing, split carving and the small shared helpers of the readers.
// The format readers live in idx_reader.cc, cifar_reader.cc and
// tensor_file_reader.cc to keep the LibTorch-heavy units small.
#include "evaluator/dataset.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <exception>
#include <filesystem>
#include <optional>
#include <random>
#include <system_error>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "common/status_macros.h"
#include "evaluator/image_decode.h"
#include "evaluator/image_folder.h"
#include "qat/torch_errors.h"

namespace autoq::evaluator {
namespace {

// size=H[xW], channels=1|3, skip_bad=0|1, memory_mb=N, cache_mb=N of a
// folder spec.
absl::Status ParseFolderOption(absl::string_view spec, absl::string_view name,
                               absl::string_view value, DataSpec* out) {
  auto bad = [&](const char* expected) {
    return absl::InvalidArgumentError(
        absl::StrCat("data spec '", spec, "': ", name, "='", value,
                     "' (expected ", expected, ")"));
  };
  if (name == "size") {
    std::vector<absl::string_view> hw = absl::StrSplit(value, 'x');
    int64_t h = 0, w = 0;
    if (hw.size() > 2 || !absl::SimpleAtoi(hw[0], &h) ||
        !absl::SimpleAtoi(hw.back(), &w) || h < 1 || w < 1 || h > 8192 ||
        w > 8192) {
      return bad("a size in pixels, N or HxW, at most 8192");
    }
    out->image_height = h;
    out->image_width = w;
  } else if (name == "channels") {
    if (value != "1" && value != "3") return bad("1 or 3");
    out->image_channels = value == "1" ? 1 : 3;
  } else if (name == "memory_mb" || name == "cache_mb") {
    int64_t mb = 0;
    if (!absl::SimpleAtoi(value, &mb) || mb < 0 || mb > (int64_t{1} << 30)) {
      return bad("megabytes, >= 0");
    }
    (name == "memory_mb" ? out->memory_mb : out->cache_mb) = mb;
  } else {
    if (value != "0" && value != "1") return bad("0 or 1");
    out->skip_bad = value == "1";
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<float>> ParseFloats(absl::string_view name,
                                               absl::string_view value) {
  std::vector<float> out;
  for (absl::string_view part : absl::StrSplit(value, ',')) {
    part = absl::StripAsciiWhitespace(part);
    float v = 0;
    if (!absl::SimpleAtof(part, &v) || !std::isfinite(v)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "data spec: ", name, "=", value, ": '", part, "' is not a number"));
    }
    out.push_back(v);
  }
  return out;
}

// The IDX file `name` in `dir`, preferring the gzipped one.
absl::StatusOr<std::string> ResolveIdxFile(const std::string& dir,
                                           const std::string& name) {
  const std::string gz = absl::StrCat(dir, "/", name, ".gz");
  const std::string raw = absl::StrCat(dir, "/", name);
  std::error_code ec;
  if (std::filesystem::exists(gz, ec)) return gz;
  if (std::filesystem::exists(raw, ec)) return raw;
  return absl::NotFoundError(
      absl::StrCat("no such file: ", gz, " (nor ", raw, ")"));
}

absl::StatusOr<qat::TensorDataset> ReadIdxDir(const std::string& dir,
                                              const std::string& prefix) {
  ASSIGN_OR_RETURN(std::string images,
                   ResolveIdxFile(dir, prefix + "-images-idx3-ubyte"));
  ASSIGN_OR_RETURN(std::string labels,
                   ResolveIdxFile(dir, prefix + "-labels-idx1-ubyte"));
  return ReadIdx(images, labels, 10);
}

absl::Status ReadCifarDir(const std::string& dir, qat::TensorDataset* train,
                          qat::TensorDataset* test) {
  std::vector<std::string> train_files;
  std::error_code ec;
  for (int i = 1; i <= 5; ++i) {
    std::string f = absl::StrCat(dir, "/data_batch_", i, ".bin");
    if (std::filesystem::exists(f, ec)) train_files.push_back(std::move(f));
  }
  if (train_files.empty()) {
    return absl::NotFoundError(
        absl::StrCat("no CIFAR-10 training batch in ", dir, " (expected ", dir,
                     "/data_batch_1.bin .. data_batch_5.bin)"));
  }
  ASSIGN_OR_RETURN(*train, ReadCifar10(train_files));
  ASSIGN_OR_RETURN(*test, ReadCifar10({dir + "/test_batch.bin"}));
  return absl::OkStatus();
}

// Deterministic Fisher-Yates permutation of [0, n). std::shuffle and
// std::uniform_int_distribution differ between standard libraries, so the
// draw is spelled out; the modulo bias is below n / 2^64.
std::vector<int64_t> Permutation(int64_t n, uint64_t seed) {
  std::vector<int64_t> perm(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) perm[static_cast<size_t>(i)] = i;
  std::mt19937_64 rng(seed);
  for (int64_t i = n - 1; i > 0; --i) {
    const auto j = static_cast<int64_t>(rng() % static_cast<uint64_t>(i + 1));
    std::swap(perm[static_cast<size_t>(i)], perm[static_cast<size_t>(j)]);
  }
  return perm;
}

// Rows `idx[begin, begin + count)` of `data` (a copy, in that order).
qat::TensorDataset Select(const qat::TensorDataset& data,
                          const std::vector<int64_t>& idx, size_t begin,
                          size_t count) {
  std::vector<int64_t> rows(idx.begin() + begin, idx.begin() + begin + count);
  at::Tensor index = at::tensor(rows, at::TensorOptions().dtype(at::kLong));
  return qat::Select(data, index);
}

int64_t Trimmed(int64_t subset, int64_t size) {
  return subset > 0 ? std::min(subset, size) : size;
}

// Arbitrary fixed seed for carving a test split out of a tensor train file.
constexpr uint64_t kTestCarveSeed = 0x7e57'5eed'0000'0001ULL;

// Moves a fixed-seed test split (options.test_size, else val_size samples)
// out of `train`, for sources without a test file.
absl::Status CarveTest(const DataSpec& spec, const SplitOptions& options,
                       qat::TensorDataset* train, qat::TensorDataset* test) {
  const int64_t n = train->size();
  const int64_t test_size =
      options.test_size > 0 ? options.test_size : options.val_size;
  if (test_size <= 0 || test_size >= n) {
    return absl::InvalidArgumentError(
        absl::StrCat(spec.train_path, ": cannot carve a test split of ",
                     test_size, " from ", n, " samples"));
  }
  const std::vector<int64_t> perm = Permutation(n, kTestCarveSeed);
  *test = Select(*train, perm, 0, static_cast<size_t>(test_size));
  *train = Select(*train, perm, static_cast<size_t>(test_size),
                  static_cast<size_t>(n - test_size));
  return absl::OkStatus();
}

// The splits of an image folder: ROOT/train, ROOT/val and ROOT/test when
// ROOT/train exists (val and test left unset when missing), else ROOT's
// class folders as the training data.
absl::Status ReadFolderSplits(const DataSpec& spec, const SplitOptions& options,
                              qat::TensorDataset* train,
                              std::optional<qat::TensorDataset>* val,
                              qat::TensorDataset* test,
                              std::vector<std::string>* notes) {
  if (!ImageDecodingAvailable()) {
    return absl::UnimplementedError(
        absl::StrCat(spec.train_path,
                     ": this build cannot decode images (install "
                     "libjpeg-dev and libpng-dev, then rebuild)"));
  }
  ImageFolderOptions o;
  const std::vector<int64_t>& shape = options.input_shape;
  o.channels = spec.image_channels > 0 ? spec.image_channels
               : shape.size() == 3     ? shape[0]
                                       : 3;
  if (spec.image_height > 0) {
    o.height = spec.image_height;
    o.width = spec.image_width;
  } else if (shape.size() == 3) {
    o.height = shape[1];
    o.width = shape[2];
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "data spec 'folder:", spec.train_path,
        "': give the image size (;size=HxW) or the model's input_shape"));
  }
  if (o.channels != 1 && o.channels != 3) {
    return absl::InvalidArgumentError(absl::StrCat(
        spec.train_path, ": images can be fitted to 1 or 3 channels, not ",
        o.channels));
  }
  o.skip_bad = spec.skip_bad;
  o.memory_bytes = spec.memory_mb << 20;
  o.cache_bytes = spec.cache_mb << 20;
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path root(spec.train_path);
  const bool split_dirs = fs::is_directory(root / "train", ec);
  auto read = [&](const fs::path& dir, const char* what,
                  const std::vector<std::string>& classes,
                  std::vector<std::string>* found)
      -> absl::StatusOr<qat::TensorDataset> {
    ASSIGN_OR_RETURN(ImageFolderData d,
                     ReadImageFolder(dir.string(), o, classes));
    if (d.skipped > 0) {
      notes->push_back(absl::StrCat(dir.string(), ": skipped ", d.skipped,
                                    " image(s) that do not decode (", what,
                                    " split)"));
    }
    if (!d.empty_classes.empty()) {
      notes->push_back(absl::StrCat(dir.string(), ": no images for class(es) ",
                                    absl::StrJoin(d.empty_classes, ", ")));
    }
    if (d.data.streamed()) {
      notes->push_back(absl::StrFormat(
          "%s: %d images (%.0f MB decoded, over memory_mb=%d) streamed from "
          "disk per batch, with a %d MB decode cache (%s split)",
          dir.string(), d.data.size(), d.decoded_bytes / 1048576.0,
          spec.memory_mb, spec.cache_mb, what));
    }
    if (found != nullptr) *found = d.classes;
    return d.data;
  };
  std::vector<std::string> classes;
  ASSIGN_OR_RETURN(*train, read(split_dirs ? root / "train" : root, "training",
                                {}, &classes));
  if (!split_dirs) return absl::OkStatus();
  if (fs::is_directory(root / "val", ec)) {
    ASSIGN_OR_RETURN(qat::TensorDataset v,
                     read(root / "val", "validation", classes, nullptr));
    *val = std::move(v);
  }
  if (fs::is_directory(root / "test", ec)) {
    ASSIGN_OR_RETURN(*test, read(root / "test", "test", classes, nullptr));
  }
  return absl::OkStatus();
}

absl::StatusOr<DatasetSplits> LoadDatasetImpl(const DataSpec& spec,
                                              const SplitOptions& options) {
  if (options.val_size < 0 || options.train_subset < 0 ||
      options.val_subset < 0 || options.test_subset < 0 ||
      options.test_size < 0) {
    return absl::InvalidArgumentError(
        "split options: sizes and subsets must be >= 0");
  }
  if (spec.mean.size() != spec.std.size()) {
    return absl::InvalidArgumentError(
        "data spec: mean and std must have the same length");
  }
  qat::TensorDataset full_train, test;
  std::optional<qat::TensorDataset> given_val;  // not carved from train
  std::vector<std::string> notes;
  if (spec.kind == "folder") {
    RETURN_IF_ERROR(ReadFolderSplits(spec, options, &full_train, &given_val,
                                     &test, &notes));
    if (test.size() == 0) {
      // No ROOT/test: a fixed-seed carve-out, as for tensor files.
      RETURN_IF_ERROR(CarveTest(spec, options, &full_train, &test));
    }
  } else if (spec.kind == "fashion-mnist" || spec.kind == "mnist" ||
             spec.kind == "idx") {
    ASSIGN_OR_RETURN(full_train, ReadIdxDir(spec.train_path, "train"));
    ASSIGN_OR_RETURN(test, ReadIdxDir(spec.test_path, "t10k"));
  } else if (spec.kind == "cifar10") {
    RETURN_IF_ERROR(ReadCifarDir(spec.train_path, &full_train, &test));
  } else if (spec.kind == "tensor") {
    ASSIGN_OR_RETURN(full_train, ReadTensorFile(spec.train_path));
    if (!spec.test_path.empty()) {
      ASSIGN_OR_RETURN(test, ReadTensorFile(spec.test_path));
    } else {
      RETURN_IF_ERROR(CarveTest(spec, options, &full_train, &test));
    }
    const int64_t num_classes =
        std::max(full_train.num_classes, test.num_classes);
    full_train.num_classes = num_classes;
    test.num_classes = num_classes;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("data spec: unknown kind '", spec.kind, "'"));
  }

  // A model trained on one image shape cannot be tested (or validated) on
  // another.
  auto same_shape = [&](const qat::TensorDataset& d, const std::string& path,
                        const char* what) {
    const std::vector<int64_t> train_shape = qat::ImageShape(full_train);
    if (qat::ImageShape(d) == train_shape) return absl::OkStatus();
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", what, " images are ",
                     absl::StrJoin(qat::ImageShape(d), "x"),
                     " but training images are ",
                     absl::StrJoin(train_shape, "x")));
  };
  RETURN_IF_ERROR(same_shape(test, spec.test_path, "test"));
  const int64_t channels = qat::ImageShape(full_train).at(0);
  if (!spec.mean.empty() && spec.mean.size() != 1 &&
      static_cast<int64_t>(spec.mean.size()) != channels) {
    return absl::InvalidArgumentError(
        absl::StrCat("data spec: mean/std have ", spec.mean.size(),
                     " values but the images have ", channels, " channels"));
  }

  const int64_t n = full_train.size();
  DatasetSplits splits;
  if (!spec.val_path.empty()) {
    ASSIGN_OR_RETURN(qat::TensorDataset val, ReadTensorFile(spec.val_path));
    RETURN_IF_ERROR(same_shape(val, spec.val_path, "validation"));
    RETURN_IF_ERROR(
        ValidateLabels(val.labels, full_train.num_classes, spec.val_path));
    given_val = std::move(val);
  }
  if (given_val.has_value()) {
    // The user's own validation split: the whole training file trains.
    qat::TensorDataset val = *std::move(given_val);
    val.num_classes = full_train.num_classes;
    splits.val = qat::Head(val, options.val_subset);
    splits.train =
        Select(full_train, Permutation(n, options.seed), 0,
               static_cast<size_t>(Trimmed(options.train_subset, n)));
  } else {
    if (options.val_size >= n) {
      return absl::InvalidArgumentError(
          absl::StrCat(spec.train_path, ": val_size ", options.val_size,
                       " leaves no training samples out of ", n));
    }
    const std::vector<int64_t> perm = Permutation(n, options.seed);
    const int64_t val_n = Trimmed(options.val_subset, options.val_size);
    const int64_t train_n = Trimmed(options.train_subset, n - options.val_size);
    splits.val = Select(full_train, perm, 0, static_cast<size_t>(val_n));
    splits.train =
        Select(full_train, perm, static_cast<size_t>(options.val_size),
               static_cast<size_t>(train_n));
    splits.val_carved = true;
  }
  splits.notes = std::move(notes);
  splits.test = qat::Head(test, options.test_subset);
  for (qat::TensorDataset* d : {&splits.train, &splits.val, &splits.test}) {
    d->mean = spec.mean;
    d->std = spec.std;
  }
  return splits;
}

}  // namespace

absl::StatusOr<DataSpec> ParseDataSpec(std::string_view spec_view) {
  // Debian's Abseil has its own string_view type, distinct from std's.
  const absl::string_view spec(spec_view.data(), spec_view.size());
  std::vector<absl::string_view> parts = absl::StrSplit(spec, ';');
  const absl::string_view source = absl::StripAsciiWhitespace(parts[0]);
  DataSpec out;
  const size_t colon = source.find(':');
  out.kind = std::string(source.substr(0, colon));
  const std::string path = colon == absl::string_view::npos
                               ? std::string()
                               : std::string(source.substr(colon + 1));
  if (colon != absl::string_view::npos && path.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "data spec '", spec, "': empty path after '", out.kind, ":'"));
  }
  if (out.kind == "fashion-mnist" || out.kind == "mnist" || out.kind == "idx" ||
      out.kind == "cifar10") {
    if (path.empty() && out.kind != "fashion-mnist") {
      return absl::InvalidArgumentError(
          absl::StrCat("data spec '", spec, "': '", out.kind,
                       "' needs a directory, as in ", out.kind, ":DIR"));
    }
    out.train_path = path.empty() ? kDebianFashionMnistDir : path;
    out.test_path = out.train_path;
  } else if (out.kind == "tensor") {
    std::vector<std::string> files = absl::StrSplit(path, ',');
    if (path.empty() || files.size() > 2 || files[0].empty() ||
        (files.size() == 2 && files[1].empty())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "data spec '", spec, "': expected tensor:TRAIN.pt[,TEST.pt]"));
    }
    out.train_path = files[0];
    if (files.size() == 2) out.test_path = files[1];
  } else if (out.kind == "folder") {
    if (path.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("data spec '", spec,
                       "': expected folder:ROOT (ROOT/<class>/<image>)"));
    }
    out.train_path = path;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "data spec '", spec, "': unknown dataset kind '", out.kind,
        "' (expected fashion-mnist, mnist, idx, cifar10, tensor or folder)"));
  }

  bool has_mean = false, has_std = false;
  for (size_t i = 1; i < parts.size(); ++i) {
    const absl::string_view opt = absl::StripAsciiWhitespace(parts[i]);
    if (opt.empty()) continue;  // Tolerates a trailing ';'.
    const size_t eq = opt.find('=');
    const absl::string_view name = opt.substr(0, eq);
    const absl::string_view value = eq == absl::string_view::npos
                                        ? absl::string_view()
                                        : opt.substr(eq + 1);
    if (name == "val") {
      if (value.empty() || !out.val_path.empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "data spec '", spec, "': option 'val' needs one file, given once"));
      }
      out.val_path = std::string(value);
      continue;
    }
    if (name == "size" || name == "channels" || name == "skip_bad" ||
        name == "memory_mb" || name == "cache_mb") {
      if (out.kind != "folder") {
        return absl::InvalidArgumentError(
            absl::StrCat("data spec '", spec, "': option '", name,
                         "' applies to folder: datasets only"));
      }
      RETURN_IF_ERROR(ParseFolderOption(spec, name, value, &out));
      continue;
    }
    if (name == "norm") {
      if (has_mean || has_std) {
        return absl::InvalidArgumentError(absl::StrCat(
            "data spec '", spec, "': give norm= or mean=/std=, not both"));
      }
      if (value == "imagenet") {
        out.mean = {0.485f, 0.456f, 0.406f};
        out.std = {0.229f, 0.224f, 0.225f};
      } else if (value == "cifar") {
        out.mean = {0.4914f, 0.4822f, 0.4465f};
        out.std = {0.2470f, 0.2435f, 0.2616f};
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("data spec '", spec, "': norm '", value,
                         "' (expected imagenet or cifar)"));
      }
      has_mean = has_std = true;
      continue;
    }
    if (name != "mean" && name != "std") {
      return absl::InvalidArgumentError(absl::StrCat(
          "data spec '", spec, "': unknown option '", name,
          "' (expected mean=, std=, norm=, val=, and for folders size=, "
          "channels=, skip_bad=, memory_mb=, cache_mb=)"));
    }
    bool& seen = name == "mean" ? has_mean : has_std;
    if (seen) {
      return absl::InvalidArgumentError(absl::StrCat(
          "data spec '", spec, "': option '", name, "' given twice"));
    }
    seen = true;
    ASSIGN_OR_RETURN(std::vector<float> values, ParseFloats(name, value));
    (name == "mean" ? out.mean : out.std) = std::move(values);
  }
  if (has_mean != has_std || out.mean.size() != out.std.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "data spec '", spec,
        "': mean and std must be given together with the same number of "
        "values"));
  }
  for (float s : out.std) {
    if (s <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("data spec '", spec, "': std values must be > 0"));
    }
  }
  return out;
}

absl::StatusOr<DatasetSplits> LoadDataset(const DataSpec& spec,
                                          const SplitOptions& options) {
  try {
    return LoadDatasetImpl(spec, options);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("loading ", spec.train_path, ": ",
                                            qat::SummarizeTorchError(e)));
  }
}

}  // namespace autoq::evaluator
