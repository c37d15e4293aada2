#include "evaluator/image_folder.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/file_util.h"
#include "common/status_macros.h"
#include "evaluator/image_decode.h"

namespace autoq::evaluator {
namespace {

namespace fs = std::filesystem;

struct Entry {
  std::string path;
  int64_t label = 0;
};

// `path` read, decoded and fitted to c x h x w (CHW uint8).
absl::StatusOr<std::vector<uint8_t>> LoadFitted(const std::string& path,
                                                int64_t c, int64_t h,
                                                int64_t w) {
  ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  ASSIGN_OR_RETURN(Image image, DecodeImage(bytes, path));
  if (image.width < 1 || image.height < 1) {
    return absl::DataLossError(absl::StrCat(path, ": empty image"));
  }
  return FitImage(image, c, h, w);
}

// A streamed folder's images: decoded on demand, the first ones decoded
// kept while they fit the cache budget (no eviction: with shuffled epochs
// any cached image saves the same work).
class FolderSource : public qat::ImageSource {
 public:
  FolderSource(std::vector<std::string> paths, int64_t c, int64_t h,
               int64_t w, int64_t cache_bytes)
      : paths_(std::move(paths)),
        c_(c),
        h_(h),
        w_(w),
        cache_bytes_(cache_bytes),
        cache_(paths_.size()) {}

  std::vector<int64_t> shape() const override { return {c_, h_, w_}; }

  void Load(int64_t index, uint8_t* out) const override {
    const size_t i = static_cast<size_t>(index);
    const size_t bytes = static_cast<size_t>(c_ * h_ * w_);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!cache_[i].empty()) {
        std::memcpy(out, cache_[i].data(), bytes);
        return;
      }
    }
    absl::StatusOr<std::vector<uint8_t>> fitted =
        LoadFitted(paths_[i], c_, h_, w_);
    if (!fitted.ok()) throw std::runtime_error(fitted.status().ToString());
    std::memcpy(out, fitted->data(), bytes);
    std::lock_guard<std::mutex> lock(mu_);
    if (cached_bytes_ + static_cast<int64_t>(bytes) <= cache_bytes_ &&
        cache_[i].empty()) {
      cache_[i] = *std::move(fitted);
      cached_bytes_ += static_cast<int64_t>(bytes);
    }
  }

 private:
  const std::vector<std::string> paths_;
  const int64_t c_, h_, w_;
  const int64_t cache_bytes_;
  mutable std::mutex mu_;
  mutable std::vector<std::vector<uint8_t>> cache_;  // guarded by mu_
  mutable int64_t cached_bytes_ = 0;                 // guarded by mu_
};

}  // namespace

absl::StatusOr<ImageFolderData> ReadImageFolder(
    const std::string& root, const ImageFolderOptions& options,
    const std::vector<std::string>& classes) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    return absl::NotFoundError(
        absl::StrCat(root,
                     ": no such image folder (expected ROOT/<class>/"
                     "<image>.jpg|.png)"));
  }
  ImageFolderData out;
  for (const fs::directory_entry& d : fs::directory_iterator(root, ec)) {
    if (d.is_directory()) out.classes.push_back(d.path().filename().string());
  }
  std::sort(out.classes.begin(), out.classes.end());
  if (out.classes.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        root, ": no class folders (expected ROOT/<class>/<image>)"));
  }
  if (!classes.empty() && out.classes != classes) {
    return absl::InvalidArgumentError(
        absl::StrCat(root, ": classes [", absl::StrJoin(out.classes, ", "),
                     "] differ from the training split's [",
                     absl::StrJoin(classes, ", "), "]"));
  }
  std::vector<Entry> entries;
  for (size_t c = 0; c < out.classes.size(); ++c) {
    const fs::path dir = fs::path(root) / out.classes[c];
    std::vector<std::string> files;
    for (const fs::directory_entry& f :
         fs::recursive_directory_iterator(dir, ec)) {
      if (!f.is_regular_file()) continue;
      if (IsImageFileName(f.path().filename().string())) {
        files.push_back(f.path().string());
      } else {
        ++out.ignored;
      }
    }
    if (ec) {
      return absl::DataLossError(
          absl::StrCat(dir.string(), ": cannot list: ", ec.message()));
    }
    if (files.empty()) out.empty_classes.push_back(out.classes[c]);
    std::sort(files.begin(), files.end());
    for (std::string& f : files) {
      entries.push_back({std::move(f), static_cast<int64_t>(c)});
    }
  }
  if (entries.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(root,
                     ": no .jpg, .jpeg or .png images in its class "
                     "folders"));
  }

  // Decode on worker threads straight into the image tensor's rows, or,
  // streamed, only to check them when bad ones are to be skipped.
  const int64_t n = static_cast<int64_t>(entries.size());
  const int64_t c = options.channels, h = options.height, w = options.width;
  out.decoded_bytes = n * c * h * w;
  const bool stream = out.decoded_bytes > options.memory_bytes;
  at::Tensor images =
      at::empty({stream ? 0 : n, c, h, w}, at::kByte);
  uint8_t* base = images.data_ptr<uint8_t>();
  std::vector<char> good(entries.size(), stream && !options.skip_bad);
  std::atomic<int64_t> next{0};
  std::mutex mu;
  absl::Status first_error;  // guarded by mu, of the lowest index
  int64_t first_index = n;
  auto work = [&] {
    for (int64_t i = next++; i < n; i = next++) {
      const Entry& e = entries[static_cast<size_t>(i)];
      absl::StatusOr<std::vector<uint8_t>> fitted = LoadFitted(e.path, c, h, w);
      if (fitted.ok()) {
        if (!stream) {
          std::memcpy(base + i * c * h * w, fitted->data(), fitted->size());
        }
        good[static_cast<size_t>(i)] = 1;
      }
      const absl::Status st = fitted.status();
      if (!st.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        if (i < first_index) {
          first_index = i;
          first_error = st;
        }
      }
    }
  };
  const int threads = options.threads > 0
                          ? options.threads
                          : std::max(1u, std::thread::hardware_concurrency());
  if (!stream || options.skip_bad) {
    std::vector<std::thread> pool;
    for (int t = 1; t < std::min<int64_t>(threads, n); ++t)
      pool.emplace_back(work);
    work();
    for (std::thread& t : pool) t.join();
  }
  if (!first_error.ok() && !options.skip_bad) return first_error;

  std::vector<int64_t> keep, labels;
  for (int64_t i = 0; i < n; ++i) {
    if (good[static_cast<size_t>(i)]) {
      keep.push_back(i);
      labels.push_back(entries[static_cast<size_t>(i)].label);
    }
  }
  out.skipped = n - static_cast<int64_t>(keep.size());
  if (keep.empty()) {
    return absl::DataLossError(
        absl::StrCat(root, ": none of its ", n, " images decode"));
  }
  if (stream) {
    std::vector<std::string> paths;
    for (int64_t i : keep) {
      paths.push_back(std::move(entries[static_cast<size_t>(i)].path));
    }
    out.data.source = std::make_shared<FolderSource>(std::move(paths), c, h,
                                                     w, options.cache_bytes);
    out.data.rows = at::arange(static_cast<int64_t>(keep.size()), at::kLong);
  } else {
    if (out.skipped > 0) {
      images = images.index_select(0, at::tensor(keep, at::kLong));
    }
    out.data.images = images;
  }
  out.data.labels = at::tensor(labels, at::kLong);
  out.data.num_classes = static_cast<int64_t>(out.classes.size());
  return out;
}

}  // namespace autoq::evaluator
