#include "evaluator/image_folder.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/file_util.h"
#include "evaluator/image_decode.h"

namespace autoq::evaluator {
namespace {

namespace fs = std::filesystem;

struct Entry {
  std::string path;
  int64_t label = 0;
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

  // Decode on worker threads straight into the image tensor's rows.
  const int64_t n = static_cast<int64_t>(entries.size());
  const int64_t c = options.channels, h = options.height, w = options.width;
  at::Tensor images = at::empty({n, c, h, w}, at::kByte);
  uint8_t* base = images.data_ptr<uint8_t>();
  std::vector<char> good(entries.size(), 0);
  std::atomic<int64_t> next{0};
  std::mutex mu;
  absl::Status first_error;  // guarded by mu, of the lowest index
  int64_t first_index = n;
  auto work = [&] {
    for (int64_t i = next++; i < n; i = next++) {
      const Entry& e = entries[static_cast<size_t>(i)];
      absl::Status st;
      absl::StatusOr<std::string> bytes = ReadFile(e.path);
      if (!bytes.ok()) {
        st = bytes.status();
      } else {
        absl::StatusOr<Image> image = DecodeImage(*bytes, e.path);
        if (!image.ok()) {
          st = image.status();
        } else if (image->width < 1 || image->height < 1) {
          st = absl::DataLossError(absl::StrCat(e.path, ": empty image"));
        } else {
          const std::vector<uint8_t> fitted = FitImage(*image, c, h, w);
          std::memcpy(base + i * c * h * w, fitted.data(), fitted.size());
          good[static_cast<size_t>(i)] = 1;
        }
      }
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
  std::vector<std::thread> pool;
  for (int t = 1; t < std::min<int64_t>(threads, n); ++t)
    pool.emplace_back(work);
  work();
  for (std::thread& t : pool) t.join();
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
  if (out.skipped > 0) {
    images = images.index_select(0, at::tensor(keep, at::kLong));
  }
  out.data.images = images;
  out.data.labels = at::tensor(labels, at::kLong);
  out.data.num_classes = static_cast<int64_t>(out.classes.size());
  return out;
}

}  // namespace autoq::evaluator
