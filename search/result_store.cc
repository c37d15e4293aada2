#include "search/result_store.h"

#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "search/sqlite_statement.h"

namespace autoq::search {
namespace {

// Long enough to wait out another process's commit or checkpoint; a write
// that still cannot get the lock reports kUnavailable.
constexpr int kBusyTimeoutMs = 60000;
// Identifies our files in the meta table, beside the schema version.
constexpr char kFormat[] = "autoq-result-store";

constexpr char kSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS results (
  key TEXT PRIMARY KEY,
  value BLOB NOT NULL,
  val_top1 REAL NOT NULL,
  size_bytes INTEGER NOT NULL,
  wall_seconds REAL NOT NULL,
  device TEXT NOT NULL,
  created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE IF NOT EXISTS checkpoints (
  job_key TEXT NOT NULL,
  generation INTEGER NOT NULL,
  state BLOB NOT NULL,
  created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (job_key, generation)
);
CREATE TABLE IF NOT EXISTS artifacts (
  key TEXT NOT NULL,
  name TEXT NOT NULL,
  bytes BLOB NOT NULL,
  PRIMARY KEY (key, name)
);
)sql";

absl::Status NotOurs(const std::string& path, absl::string_view why) {
  return absl::FailedPreconditionError(
      absl::StrCat(path, ": not an AutoQ result database (", why,
                   "); move it away or set output.database to another file"));
}

// All rows of a read-only query, as strings. Used to classify a file that
// may not be ours, so damage or a non-database reads as "not ours".
absl::StatusOr<std::vector<std::vector<std::string>>> Inspect(
    sqlite3* db, const std::string& path, const char* sql) {
  Statement s(db, path);
  absl::Status st = s.Prepare(sql);
  std::vector<std::vector<std::string>> rows;
  while (st.ok()) {
    absl::StatusOr<bool> row = s.Step();
    st = row.status();
    if (!st.ok() || !*row) break;
    std::vector<std::string>& r = rows.emplace_back();
    for (int i = 0; i < s.Columns(); ++i) r.push_back(s.Bytes(i));
  }
  if (st.ok()) return rows;
  int code = s.error_code() & 0xff;
  if (code == SQLITE_NOTADB || code == SQLITE_CORRUPT) {
    return NotOurs(path, s.error_message());
  }
  return st;
}

// Refuses, before SQLite opens it, a path that cannot be ours: a missing
// folder, or an existing file without the SQLite header (SQLite would only
// fail on it later, and must never be the one to write to it).
absl::Status CheckPath(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path parent = fs::path(path).parent_path();
  if (!parent.empty() && !fs::is_directory(parent, ec)) {
    return absl::NotFoundError(absl::StrCat(
        path, ": folder ", parent.string(),
        " does not exist; create it or set output.database to a file in an "
        "existing folder"));
  }
  if (fs::is_directory(path, ec)) {
    return absl::FailedPreconditionError(absl::StrCat(
        path, ": is a folder; set output.database to a file path"));
  }
  const std::string folder = parent.empty() ? "." : parent.string();
  if (access(folder.c_str(), W_OK) != 0) {
    return absl::PermissionDeniedError(absl::StrCat(
        path, ": its folder ", folder, " cannot be written (",
        std::strerror(errno), "); SQLite keeps a write-ahead log beside the "
        "database: make the folder writable or use another file"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::OkStatus();  // new file, or SQLite reports why not
  char header[16] = {};
  in.read(header, sizeof(header));
  if (in.gcount() == 0) return absl::OkStatus();  // empty: SQLite's new file
  if (in.gcount() < static_cast<std::streamsize>(sizeof(header)) ||
      std::memcmp(header, "SQLite format 3", sizeof(header)) != 0) {
    return NotOurs(path, "file is not an SQLite database");
  }
  // SQLite would open a read-only file read-only and fail at the first
  // write with "unable to open database file"; say what is wrong instead.
  if (access(path.c_str(), W_OK) != 0) {
    return absl::PermissionDeniedError(absl::StrCat(
        path, ": the database cannot be written (", std::strerror(errno),
        "); AutoQ stores every result there: make it writable or use "
        "another file"));
  }
  return absl::OkStatus();
}

// The schema version of an open database, 0 when it has no tables yet.
// Only reads: a file found not to be ours is left as it was.
absl::StatusOr<int> ReadSchemaVersion(sqlite3* db, const std::string& path) {
  ASSIGN_OR_RETURN(
      auto tables,
      Inspect(db, path,
              "SELECT name FROM sqlite_master WHERE type = 'table' "
              "ORDER BY name"));
  if (tables.empty()) return 0;
  bool has_meta = false;
  std::vector<std::string> names;
  for (const auto& row : tables) {
    has_meta |= row[0] == "meta";
    if (names.size() < 5) names.push_back(row[0]);
  }
  if (!has_meta) {
    return NotOurs(path, absl::StrCat("an SQLite database with tables ",
                                      absl::StrJoin(names, ", ")));
  }
  ASSIGN_OR_RETURN(auto meta, Inspect(db, path,
                                      "SELECT key, value FROM meta WHERE key "
                                      "IN ('format', 'schema_version')"));
  std::string format;
  int version = 0;
  for (const auto& row : meta) {
    if (row.size() != 2) continue;
    if (row[0] == "format") format = row[1];
    if (row[0] == "schema_version" && !absl::SimpleAtoi(row[1], &version)) {
      version = -1;
    }
  }
  if (format != kFormat || version <= 0) {
    return NotOurs(path, "an SQLite database with a foreign meta table");
  }
  return version;
}

}  // namespace

ResultStore::ResultStore(std::string path, sqlite3* db)
    : path_(std::move(path)), db_(db) {}

ResultStore::~ResultStore() { sqlite3_close_v2(db_); }

absl::StatusOr<std::unique_ptr<ResultStore>> ResultStore::Open(
    const std::string& path) {
  if (path.empty()) {
    return absl::InvalidArgumentError(
        "result database path is empty; set output.database");
  }
  RETURN_IF_ERROR(CheckPath(path));
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  // Owns the connection from here on, so every error path closes it.
  std::unique_ptr<ResultStore> store(new ResultStore(path, db));
  if (rc != SQLITE_OK) return SqlError(db, rc, path, "");
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  // Closing the last connection checkpoints the WAL into the main file. A
  // WAL with frames (another program's crash) is not ours to fold in until
  // the file is known to be ours; an empty one is, and closing removes it.
  std::error_code ec;
  std::uintmax_t wal_size = std::filesystem::file_size(path + "-wal", ec);
  if (!ec && wal_size > 0) {
    sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
  }

  ASSIGN_OR_RETURN(int version, ReadSchemaVersion(db, path));
  if (version > kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        path, ": written by a newer AutoQ (schema version ", version,
        "; this build knows up to ", kSchemaVersion,
        "); upgrade AutoQ or set output.database to another file"));
  }
  // From here the file is ours (or empty) and may be written.
  sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 0, nullptr);
  // WAL lets readers in other processes go on during a write; with
  // synchronous=NORMAL a commit survives a killed process (not a power cut),
  // which is what a cache of recomputable results needs.
  RETURN_IF_ERROR(Exec(db, path, "PRAGMA journal_mode = WAL"));
  RETURN_IF_ERROR(Exec(db, path, "PRAGMA synchronous = NORMAL"));
  if (version == 0) {
    // IMMEDIATE takes the write lock first, and IF NOT EXISTS / OR IGNORE
    // make a second process that raced to create the same file a no-op.
    // A failure leaves the transaction open; closing the connection rolls
    // it back.
    std::string create = absl::StrCat(
        "BEGIN IMMEDIATE;", kSchema,
        "INSERT OR IGNORE INTO meta (key, value) VALUES ('format', '", kFormat,
        "'), ('schema_version', '", kSchemaVersion, "');COMMIT;");
    RETURN_IF_ERROR(Exec(db, path, create.c_str()));
  }
  return store;
}

absl::StatusOr<std::optional<std::string>> ResultStore::Get(
    absl::string_view key) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement s(db_, path_);
  RETURN_IF_ERROR(s.Prepare("SELECT value FROM results WHERE key = ?"));
  s.Text(key);
  ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return std::optional<std::string>();
  return std::optional<std::string>(s.Bytes(0));
}

absl::Status ResultStore::PutLocked(absl::string_view key,
                                    absl::string_view value,
                                    const ResultSummary& summary,
                                    bool* inserted) {
  Statement s(db_, path_);
  RETURN_IF_ERROR(
      s.Prepare("INSERT OR IGNORE INTO results (key, value, val_top1, "
                "size_bytes, wall_seconds, device) VALUES (?, ?, ?, ?, ?, ?)"));
  s.Text(key)
      .Blob(value)
      .Real(summary.val_top1)
      .Int(summary.size_bytes)
      .Real(summary.wall_seconds)
      .Text(summary.device);
  RETURN_IF_ERROR(s.Run());
  if (inserted != nullptr) *inserted = sqlite3_changes(db_) > 0;
  return absl::OkStatus();
}

absl::Status ResultStore::Put(absl::string_view key, absl::string_view value,
                              const ResultSummary& summary, bool* inserted) {
  std::lock_guard<std::mutex> lock(mu_);
  return PutLocked(key, value, summary, inserted);
}

absl::Status ResultStore::PutWithArtifacts(absl::string_view key,
                                           absl::string_view value,
                                           const ResultSummary& summary,
                                           const ArtifactViews& artifacts,
                                           bool* inserted) {
  std::lock_guard<std::mutex> lock(mu_);
  RETURN_IF_ERROR(Exec(db_, path_, "BEGIN IMMEDIATE"));
  absl::Status st;
  for (const auto& [name, bytes] : artifacts) {
    st = PutArtifactLocked(key, name, bytes);
    if (!st.ok()) break;
  }
  if (st.ok()) st = PutLocked(key, value, summary, inserted);
  if (st.ok()) st = Exec(db_, path_, "COMMIT");
  if (!st.ok()) RollbackIfOpen(db_);
  return st;
}

absl::StatusOr<int64_t> ResultStore::CountResults() {
  std::lock_guard<std::mutex> lock(mu_);
  Statement s(db_, path_);
  RETURN_IF_ERROR(s.Prepare("SELECT COUNT(*) FROM results"));
  ASSIGN_OR_RETURN(bool row, s.Step());
  return row ? s.Int64(0) : 0;
}

absl::Status ResultStore::PutCheckpoint(absl::string_view job_key,
                                        int generation,
                                        absl::string_view state) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement s(db_, path_);
  RETURN_IF_ERROR(
      s.Prepare("INSERT OR REPLACE INTO checkpoints (job_key, generation, "
                "state) VALUES (?, ?, ?)"));
  s.Text(job_key).Int(generation).Blob(state);
  return s.Run();
}

absl::StatusOr<std::optional<Checkpoint>> ResultStore::LatestCheckpoint(
    absl::string_view job_key) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement s(db_, path_);
  RETURN_IF_ERROR(
      s.Prepare("SELECT generation, state FROM checkpoints WHERE job_key = ? "
                "ORDER BY generation DESC LIMIT 1"));
  s.Text(job_key);
  ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return std::optional<Checkpoint>();
  return std::optional<Checkpoint>(Checkpoint{
      std::string(job_key), static_cast<int>(s.Int64(0)), s.Bytes(1)});
}

absl::Status ResultStore::PutArtifactLocked(absl::string_view key,
                                            absl::string_view name,
                                            absl::string_view bytes) {
  Statement s(db_, path_);
  RETURN_IF_ERROR(s.Prepare(
      "INSERT OR REPLACE INTO artifacts (key, name, bytes) VALUES (?, ?, ?)"));
  s.Text(key).Text(name).Blob(bytes);
  return s.Run();
}

absl::Status ResultStore::PutArtifact(absl::string_view key,
                                      absl::string_view name,
                                      absl::string_view bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  return PutArtifactLocked(key, name, bytes);
}

absl::StatusOr<std::optional<std::string>> ResultStore::GetArtifact(
    absl::string_view key, absl::string_view name) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement s(db_, path_);
  RETURN_IF_ERROR(
      s.Prepare("SELECT bytes FROM artifacts WHERE key = ? AND name = ?"));
  s.Text(key).Text(name);
  ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return std::optional<std::string>();
  return std::optional<std::string>(s.Bytes(0));
}

absl::StatusOr<std::vector<std::string>> ResultStore::ListArtifacts(
    absl::string_view key) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement s(db_, path_);
  RETURN_IF_ERROR(
      s.Prepare("SELECT name FROM artifacts WHERE key = ? ORDER BY name"));
  s.Text(key);
  std::vector<std::string> names;
  for (;;) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    names.push_back(s.Bytes(0));
  }
  return names;
}

}  // namespace autoq::search
