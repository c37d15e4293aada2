// A worker's cache of fetched models: one file per SHA-256, verified by hash
// whenever it is used and written atomically, so a cache shared by several
// workers, or left behind by a crash, never hands out a wrong or half model.
//
// Thread-safety: Ensure may run on several threads or processes at once for
// the same folder; each writes its own temporary file and renames it.
#ifndef AUTOQ_EVALUATOR_MODEL_CACHE_H_
#define AUTOQ_EVALUATOR_MODEL_CACHE_H_

#include <atomic>
#include <functional>
#include <string>

#include "absl/status/statusor.h"

namespace autoq::evaluator {

class ModelCache {
 public:
  // Downloads the model `sha256`: its bytes, or an error (CANCELLED when
  // `cancel` was set). The cache checks the bytes' hash itself.
  using Fetcher = std::function<absl::StatusOr<std::string>(
      const std::string& sha256, const std::atomic<bool>* cancel)>;

  // `dir` is created on first use; `log` (may be empty) gets one line per
  // fetch or discarded file.
  ModelCache(std::string dir, std::function<void(const std::string&)> log);

  // The local path of the model `sha256`: the cached file when its bytes
  // hash to `sha256`; else (missing or corrupt) `fetch`ed, checked and
  // stored. INVALID_ARGUMENT for a malformed hash, DATA_LOSS when the
  // fetched bytes hash to something else, FAILED_PRECONDITION when the
  // folder cannot be created; the fetcher's errors as they are.
  absl::StatusOr<std::string> Ensure(const std::string& sha256,
                                     const Fetcher& fetch,
                                     const std::atomic<bool>* cancel);

  // Where the model `sha256` lives (whether or not it is there).
  std::string PathOf(const std::string& sha256) const;
  const std::string& dir() const { return dir_; }
  // Models fetched so far (not counting cache hits).
  int64_t fetches() const { return fetches_.load(); }

 private:
  void Log(const std::string& line) const;

  const std::string dir_;
  const std::function<void(const std::string&)> log_;
  std::atomic<int64_t> fetches_{0};
};

}  // namespace autoq::evaluator

#endif  // AUTOQ_EVALUATOR_MODEL_CACHE_H_
