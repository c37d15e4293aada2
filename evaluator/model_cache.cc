#include "evaluator/model_cache.h"

#include <chrono>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/file_util.h"
#include "common/sha256.h"
#include "common/status_macros.h"

namespace autoq::evaluator {

ModelCache::ModelCache(std::string dir,
                       std::function<void(const std::string&)> log)
    : dir_(std::move(dir)), log_(std::move(log)) {}

void ModelCache::Log(const std::string& line) const {
  if (log_) log_(line);
}

std::string ModelCache::PathOf(const std::string& sha256) const {
  return absl::StrCat(dir_, "/", sha256, ".pt");
}

absl::StatusOr<std::string> ModelCache::Ensure(
    const std::string& sha256, const Fetcher& fetch,
    const std::atomic<bool>* cancel) {
  if (!IsSha256Hex(sha256)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the task's model hash '", sha256, "' is not a lowercase hex SHA-256"));
  }
  const std::string path = PathOf(sha256);
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) {
    // Hashed on every use: a file damaged on disk or by another writer
    // must not be trained on silently.
    absl::StatusOr<std::string> bytes = autoq::ReadFile(path);
    if (bytes.ok() && autoq::Sha256Hex(*bytes) == sha256) return path;
    Log(absl::StrCat("cached model ", path,
                     " does not match its hash: fetching it again"));
    std::filesystem::remove(path, ec);
  }
  std::filesystem::create_directories(dir_, ec);
  if (ec) {
    return absl::FailedPreconditionError(absl::StrCat(
        "model cache ", dir_, ": cannot create the folder: ", ec.message()));
  }
  const auto start = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(std::string bytes, fetch(sha256, cancel));
  const std::string got = autoq::Sha256Hex(bytes);
  if (got != sha256) {
    return absl::DataLossError(absl::StrCat(
        "FetchModel ", sha256, ": the bytes received hash to ", got));
  }
  RETURN_IF_ERROR(autoq::WriteFileAtomic(path, bytes));
  ++fetches_;
  Log(absl::StrFormat(
      "fetched model %s (%.1f KB) in %.1f s", sha256.substr(0, 12),
      bytes.size() / 1024.0,
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count()));
  return path;
}

}  // namespace autoq::evaluator
