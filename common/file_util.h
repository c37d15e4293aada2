// Whole-file reads and atomic writes: the one way AutoQ reads a config, a
// token, a model or a certificate, and writes a report, an export or a
// cached model. Atomic writes go to a unique temporary name beside the
// target, then rename it, so a reader (another worker sharing a cache, a
// user's script) never sees half a file and a crash leaves the old file.
//
// Thread-safety: reentrant; temporary names are unique across threads and
// processes.
#ifndef AUTOQ_COMMON_FILE_UTIL_H_
#define AUTOQ_COMMON_FILE_UTIL_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace autoq {

// The bytes of `path`. NotFound ("PATH: cannot open") when it is missing or
// unreadable, DataLoss when reading fails midway.
absl::StatusOr<std::string> ReadFile(const std::string& path);

// A name beside `path` that no other thread or process uses:
// "PATH.tmp.<pid>.<n>". For writers that stream into it and then call
// RenameIntoPlace (or remove it on failure).
std::string TempPathFor(const std::string& path);

// Renames `tmp` to `path`, removing `tmp` when that fails. The error names
// `path`.
absl::Status RenameIntoPlace(const std::string& tmp, const std::string& path);

// Writes `bytes` to TempPathFor(path) and renames it to `path`. The parent
// folder must exist. Errors name the path and the system's reason; no
// temporary file is left behind.
absl::Status WriteFileAtomic(const std::string& path, absl::string_view bytes);

}  // namespace autoq

#endif  // AUTOQ_COMMON_FILE_UTIL_H_
