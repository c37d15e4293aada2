// The durable result cache of the search: one SQLite file (WAL journal) that
// holds every scored chromosome by cache key, the search checkpoints of each
// job, and the exported files of final-front points.
//
// Who calls what: the cached evaluation (search/evaluation.h) asks Get before
// scoring and Puts every result the moment it arrives; the search driver
// writes a checkpoint after every generation and resumes from
// LatestCheckpoint; the final stage stores exports with PutArtifact, and the
// client reads them back with GetArtifact / ListArtifacts.
//
// Thread-safety: all methods may be called from any thread at once (one
// connection, serialized by a mutex). Several processes may share one file:
// SQLite's WAL locking and a busy timeout serialize their writes, and since a
// key's result never changes, "first result wins" makes racing workers
// harmless.
#ifndef AUTOQ_SEARCH_RESULT_STORE_H_
#define AUTOQ_SEARCH_RESULT_STORE_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

struct sqlite3;

namespace autoq::search {

// Queryable columns stored beside a result's opaque value, so a database can
// be inspected with the sqlite3 shell without decoding values.
struct ResultSummary {
  double val_top1 = 0;
  int64_t size_bytes = 0;
  double wall_seconds = 0;
  std::string device;  // "cpu", "cuda:0"
};

struct Checkpoint {
  std::string job_key;
  int generation = 0;
  std::string state;
};

class ResultStore {
 public:
  // The schema version this code writes; a file with a newer one is refused.
  static constexpr int kSchemaVersion = 1;

  // Opens or creates the database at `path`. The parent folder must exist.
  // A file that is not an AutoQ result database (not SQLite, corrupt, or an
  // SQLite database of something else) or one written by a newer AutoQ is
  // refused with an error naming the path, and is never modified.
  static absl::StatusOr<std::unique_ptr<ResultStore>> Open(
      const std::string& path);

  ~ResultStore();
  ResultStore(const ResultStore&) = delete;
  ResultStore& operator=(const ResultStore&) = delete;

  // The stored value for `key`; nullopt if absent.
  absl::StatusOr<std::optional<std::string>> Get(absl::string_view key);

  // Stores `value` for `key` unless the key is already present, in which case
  // the stored result is kept (first result wins). `*inserted` (may be null)
  // says whether the row is new. Committed, and so safe from a killed
  // process, when this returns.
  absl::Status Put(absl::string_view key, absl::string_view value,
                   const ResultSummary& summary, bool* inserted = nullptr);

  // Put, with the exported files of a final-front point as (name, bytes)
  // artifacts, in one transaction: a failure (a full disk) keeps none of
  // them. The artifacts are written even when the key is present.
  using ArtifactViews =
      std::vector<std::pair<absl::string_view, absl::string_view>>;
  absl::Status PutWithArtifacts(absl::string_view key, absl::string_view value,
                                const ResultSummary& summary,
                                const ArtifactViews& artifacts,
                                bool* inserted = nullptr);

  absl::StatusOr<int64_t> CountResults();

  // Search checkpoints: one row per (job_key, generation); a second write of
  // the same generation replaces the first.
  absl::Status PutCheckpoint(absl::string_view job_key, int generation,
                             absl::string_view state);
  // The checkpoint of `job_key` with the highest generation; nullopt if none.
  absl::StatusOr<std::optional<Checkpoint>> LatestCheckpoint(
      absl::string_view job_key);

  // Exported files of a final-front point, by (key, name); a second write of
  // the same name replaces the first.
  absl::Status PutArtifact(absl::string_view key, absl::string_view name,
                           absl::string_view bytes);
  absl::StatusOr<std::optional<std::string>> GetArtifact(
      absl::string_view key, absl::string_view name);
  // Names of the artifacts of `key`, sorted.
  absl::StatusOr<std::vector<std::string>> ListArtifacts(absl::string_view key);

  const std::string& path() const { return path_; }

 private:
  ResultStore(std::string path, sqlite3* db);

  // Put and PutArtifact; require mu_ held.
  absl::Status PutLocked(absl::string_view key, absl::string_view value,
                         const ResultSummary& summary, bool* inserted);
  absl::Status PutArtifactLocked(absl::string_view key, absl::string_view name,
                                 absl::string_view bytes);

  std::string path_;
  std::mutex mu_;
  sqlite3* db_;  // guarded by mu_ after Open
};

}  // namespace autoq::search

#endif  // AUTOQ_SEARCH_RESULT_STORE_H_
