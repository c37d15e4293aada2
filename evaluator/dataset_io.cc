// The dataset readers' shared file reading and label check, apart from
// dataset.cc so the readers (and their fuzz targets, fuzz/) build without
// the image-folder code.
#include <ATen/ATen.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "evaluator/dataset.h"

namespace autoq::evaluator {
namespace internal {

absl::StatusOr<std::string> ReadFileBytes(const std::string& path) {
  std::error_code ec;
  const auto st = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(st)) {
    return absl::NotFoundError(absl::StrCat(path, ": no such file"));
  }
  if (!std::filesystem::is_regular_file(st)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a regular file"));
  }
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) {
    return absl::PermissionDeniedError(
        absl::StrCat(path, ": cannot open: ", std::strerror(errno)));
  }
  gzbuffer(f, 1 << 16);
  std::string out;
  // gzread takes an unsigned length; read in chunks that grow from 64 KiB
  // to 4 MiB, so a small file costs a small buffer.
  int chunk = 1 << 16;
  for (;;) {
    const size_t old_size = out.size();
    out.resize(old_size + chunk);
    const int n = gzread(f, out.data() + old_size, chunk);
    chunk = std::min(chunk * 2, 1 << 22);
    if (n < 0) {
      int errnum = 0;
      std::string msg = gzerror(f, &errnum);
      gzclose(f);
      return absl::DataLossError(absl::StrCat(path, ": read error: ", msg));
    }
    out.resize(old_size + static_cast<size_t>(n));
    if (n == 0) break;
  }
  // A gzip stream cut short reads as EOF; zlib only reports it here.
  int errnum = Z_OK;
  std::string msg = gzerror(f, &errnum);
  const int close_rc = gzclose(f);
  if (errnum != Z_OK || close_rc != Z_OK) {
    return absl::DataLossError(
        absl::StrCat(path, ": corrupt or truncated gzip stream (",
                     msg.empty() ? "unexpected end of file" : msg, ")"));
  }
  return out;
}

}  // namespace internal

absl::Status ValidateLabels(const at::Tensor& labels, int64_t num_classes,
                            std::string_view source_view) {
  // Debian's Abseil has its own string_view type, distinct from std's.
  const absl::string_view source(source_view.data(), source_view.size());
  if (!labels.defined() || labels.dim() != 1 ||
      labels.scalar_type() != at::kLong) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": labels must be a 1-D int64 tensor"));
  }
  const at::Tensor l = labels.contiguous();
  const int64_t* p = l.data_ptr<int64_t>();
  for (int64_t i = 0, n = l.numel(); i < n; ++i) {
    if (p[i] < 0 || p[i] >= num_classes) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": label ", i, " is ", p[i], ", outside [0, ",
                       num_classes, ")"));
    }
  }
  return absl::OkStatus();
}

}  // namespace autoq::evaluator
