#include "server/server_store.h"

#include <sqlite3.h>

#include <filesystem>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "search/sqlite_statement.h"

namespace autoq::server {
namespace {

// Long enough to wait out a commit or checkpoint of the result cache's
// connection (same file); a write that still cannot get the lock reports
// UNAVAILABLE rather than stalling an RPC.
constexpr int kBusyTimeoutMs = 5000;
constexpr char kVersionKey[] = "server_schema_version";
constexpr char kStartsKey[] = "server_starts";

constexpr char kSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS models (
  sha256 TEXT PRIMARY KEY,
  bytes BLOB NOT NULL,
  size INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
  job_id TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  name TEXT NOT NULL,
  spec BLOB NOT NULL,
  model_sha256 TEXT NOT NULL,
  model_bytes INTEGER NOT NULL,
  state INTEGER NOT NULL,
  phase TEXT NOT NULL,
  error TEXT NOT NULL,
  results BLOB NOT NULL,
  submitted_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_owner ON jobs (owner, submitted_ms);
CREATE TABLE IF NOT EXISTS tasks (
  task_id INTEGER PRIMARY KEY AUTOINCREMENT,
  key TEXT NOT NULL UNIQUE,
  job_id TEXT NOT NULL,
  stage INTEGER NOT NULL,
  wbits TEXT NOT NULL,
  abits TEXT NOT NULL,
  lease_id TEXT NOT NULL,
  worker_id TEXT NOT NULL,
  deadline_ms INTEGER NOT NULL,
  attempts INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS workers (
  worker_id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  devices TEXT NOT NULL,
  registered_ms INTEGER NOT NULL
);
)sql";

using search::Exec;
using search::RollbackIfOpen;
using search::SqlError;
using search::Statement;

// Bit-width lists as "8,4,2": readable in the sqlite3 shell.
std::string EncodeInts(const std::vector<int>& v) {
  return absl::StrJoin(v, ",");
}

bool DecodeInts(absl::string_view text, std::vector<int>* out) {
  out->clear();
  if (text.empty()) return true;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    int v = 0;
    if (!absl::SimpleAtoi(part, &v)) return false;
    out->push_back(v);
  }
  return true;
}

// Device names joined by ','; a ',' or '%' inside a name is percent-escaped
// so any name round-trips.
std::string EncodeNames(const std::vector<std::string>& names) {
  std::vector<std::string> escaped;
  for (const std::string& n : names) {
    if (n.empty()) continue;
    escaped.push_back(absl::StrReplaceAll(n, {{"%", "%25"}, {",", "%2C"}}));
  }
  return absl::StrJoin(escaped, ",");
}

std::vector<std::string> DecodeNames(absl::string_view text) {
  std::vector<std::string> names;
  if (text.empty()) return names;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    names.push_back(absl::StrReplaceAll(part, {{"%2C", ","}, {"%25", "%"}}));
  }
  return names;
}

constexpr char kSelectJob[] =
    "SELECT job_id, owner, name, spec, model_sha256, model_bytes, state, "
    "phase, error, results, submitted_ms, updated_ms FROM jobs";

JobRow ReadJob(const Statement& s) {
  JobRow j;
  j.job_id = s.Bytes(0);
  j.owner = s.Bytes(1);
  j.name = s.Bytes(2);
  j.spec = s.Bytes(3);
  j.model_sha256 = s.Bytes(4);
  j.model_bytes = s.Int64(5);
  j.state = static_cast<int>(s.Int64(6));
  j.phase = s.Bytes(7);
  j.error = s.Bytes(8);
  j.results = s.Bytes(9);
  j.submitted_ms = s.Int64(10);
  j.updated_ms = s.Int64(11);
  return j;
}

}  // namespace

ServerStore::ServerStore(std::string path, sqlite3* db)
    : path_(std::move(path)), db_(db) {}

ServerStore::~ServerStore() {
  for (auto& [sql, stmt] : stmts_) sqlite3_finalize(stmt);
  sqlite3_close_v2(db_);
}

absl::StatusOr<sqlite3_stmt*> ServerStore::PrepareLocked(const char* sql) {
  auto it = stmts_.find(sql);
  if (it != stmts_.end()) return it->second;
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt,
                              nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return SqlError(db_, rc, path_, sql);
  }
  stmts_.emplace(sql, stmt);
  return stmt;
}

// Declares `s`, a Statement of the cached `sql`; returns on a prepare error.
#define AUTOQ_STATEMENT_(s, sql)                               \
  ASSIGN_OR_RETURN(sqlite3_stmt* s##_raw, PrepareLocked(sql)); \
  Statement s(db_, path_, sql, s##_raw)

absl::StatusOr<std::unique_ptr<ServerStore>> ServerStore::Open(
    const std::string& path) {
  if (path.empty()) {
    return absl::InvalidArgumentError("server database path is empty");
  }
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return absl::NotFoundError(absl::StrCat(
        path,
        ": no such database file (open it as a result store first, "
        "which creates it)"));
  }
  // No SQLITE_OPEN_CREATE: the result store made the file.
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr);
  // Owns the connection from here on, so every error path closes it.
  std::unique_ptr<ServerStore> store(new ServerStore(path, db));
  if (rc != SQLITE_OK) return SqlError(db, rc, path, "");
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  ServerStore& self = *store;

  // Only reads until the version is known to be ours.
  int version = 0;
  {
    ASSIGN_OR_RETURN(
        sqlite3_stmt * raw,
        self.PrepareLocked("SELECT COUNT(*) FROM sqlite_master "
                           "WHERE type = 'table' AND name = 'meta'"));
    Statement s(db, self.path_, "SELECT COUNT(*) FROM sqlite_master", raw);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row || s.Int64(0) == 0) {
      return absl::FailedPreconditionError(
          absl::StrCat(path,
                       ": not an AutoQ database (no meta table); open it as a "
                       "result store first"));
    }
  }
  {
    constexpr char kSql[] = "SELECT value FROM meta WHERE key = ?";
    ASSIGN_OR_RETURN(sqlite3_stmt * raw, self.PrepareLocked(kSql));
    Statement s(db, self.path_, kSql, raw);
    s.Text(kVersionKey);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (row) {
      std::string value = s.Bytes(0);
      if (!absl::SimpleAtoi(value, &version) || version <= 0) {
        return absl::FailedPreconditionError(
            absl::StrCat(path, ": unreadable ", kVersionKey, " '", value,
                         "' in the meta table; not a file this AutoQ wrote"));
      }
    }
  }
  if (version > kSchemaVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat(path,
                     ": service tables written by a newer AutoQ (server schema "
                     "version ",
                     version, "; this build knows up to ", kSchemaVersion,
                     "); upgrade AutoQ or use another database file"));
  }
  // WAL is the file's mode already (the result store set it); synchronous
  // is per connection: NORMAL makes a commit survive a killed process
  // without an fsync per task write.
  RETURN_IF_ERROR(Exec(db, path, "PRAGMA journal_mode = WAL"));
  RETURN_IF_ERROR(Exec(db, path, "PRAGMA synchronous = NORMAL"));
  if (version == 0) {
    // IMMEDIATE takes the write lock first, and IF NOT EXISTS / OR IGNORE
    // make a second server that raced to create the tables a no-op.
    std::string create = absl::StrCat(
        "BEGIN IMMEDIATE;", kSchema, "INSERT OR IGNORE INTO meta (key, value) ",
        "VALUES ('", kVersionKey, "', '", kSchemaVersion, "');COMMIT;");
    absl::Status st = Exec(db, path, create.c_str());
    if (!st.ok()) {
      RollbackIfOpen(db);
      return st;
    }
  }
  return store;
}

// --- Models.

absl::Status ServerStore::CheckWritable() {
  std::lock_guard<std::mutex> lock(mu_);
  absl::Status st = RunLocked("BEGIN IMMEDIATE");
  if (st.ok()) return RunLocked("ROLLBACK");
  if (absl::IsUnavailable(st)) {
    return absl::UnavailableError(absl::StrCat(
        path_, ": another process holds the database's write lock (another "
        "autoq-server on the same file, or a tool in a write transaction); "
        "gave up after ", kBusyTimeoutMs / 1000, " s"));
  }
  return st;
}

absl::Status ServerStore::PutModelLocked(absl::string_view sha256,
                                         absl::string_view bytes) {
  AUTOQ_STATEMENT_(s,
                   "INSERT OR IGNORE INTO models (sha256, bytes, size) "
                   "VALUES (?, ?, ?)");
  s.Text(sha256).Blob(bytes).Int(static_cast<int64_t>(bytes.size()));
  return s.Run();
}

absl::Status ServerStore::PutModel(absl::string_view sha256,
                                   absl::string_view bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  return PutModelLocked(sha256, bytes);
}

absl::StatusOr<std::optional<std::string>> ServerStore::GetModel(
    absl::string_view sha256) {
  std::lock_guard<std::mutex> lock(mu_);
  AUTOQ_STATEMENT_(s, "SELECT bytes FROM models WHERE sha256 = ?");
  s.Text(sha256);
  ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return std::optional<std::string>();
  return std::optional<std::string>(s.Bytes(0));
}

absl::StatusOr<bool> ServerStore::HasModel(absl::string_view sha256) {
  std::lock_guard<std::mutex> lock(mu_);
  AUTOQ_STATEMENT_(s, "SELECT 1 FROM models WHERE sha256 = ?");
  s.Text(sha256);
  return s.Step();
}

// --- Jobs.

absl::Status ServerStore::InsertJobLocked(const JobRow& job) {
  AUTOQ_STATEMENT_(s,
                   "INSERT INTO jobs (job_id, owner, name, spec, "
                   "model_sha256, model_bytes, state, phase, error, results, "
                   "submitted_ms, updated_ms) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  s.Text(job.job_id)
      .Text(job.owner)
      .Text(job.name)
      .Blob(job.spec)
      .Text(job.model_sha256)
      .Int(job.model_bytes)
      .Int(job.state)
      .Text(job.phase)
      .Text(job.error)
      .Blob(job.results)
      .Int(job.submitted_ms)
      .Int(job.updated_ms);
  return s.Run();
}

absl::Status ServerStore::InsertJob(const JobRow& job) {
  std::lock_guard<std::mutex> lock(mu_);
  return InsertJobLocked(job);
}

absl::Status ServerStore::InsertJobWithModel(const JobRow& job,
                                             absl::string_view model_bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  RETURN_IF_ERROR(RunLocked("BEGIN IMMEDIATE"));
  absl::Status st = PutModelLocked(job.model_sha256, model_bytes);
  if (st.ok()) st = InsertJobLocked(job);
  if (st.ok()) st = RunLocked("COMMIT");
  if (!st.ok()) RollbackIfOpen(db_);
  return st;
}

absl::Status ServerStore::UpdateJob(absl::string_view job_id, int state,
                                    absl::string_view phase,
                                    absl::string_view error,
                                    int64_t updated_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  AUTOQ_STATEMENT_(s,
                   "UPDATE jobs SET state = ?, phase = ?, error = ?, "
                   "updated_ms = ? WHERE job_id = ?");
  s.Int(state).Text(phase).Text(error).Int(updated_ms).Text(job_id);
  RETURN_IF_ERROR(s.Run());
  if (sqlite3_changes(db_) == 0) {
    return absl::NotFoundError(absl::StrCat(path_, ": no job ", job_id));
  }
  return absl::OkStatus();
}

absl::Status ServerStore::SetJobResults(absl::string_view job_id,
                                        absl::string_view results) {
  std::lock_guard<std::mutex> lock(mu_);
  AUTOQ_STATEMENT_(s, "UPDATE jobs SET results = ? WHERE job_id = ?");
  s.Blob(results).Text(job_id);
  RETURN_IF_ERROR(s.Run());
  if (sqlite3_changes(db_) == 0) {
    return absl::NotFoundError(absl::StrCat(path_, ": no job ", job_id));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<JobRow>> ServerStore::GetJob(
    absl::string_view job_id) {
  static const std::string kSql = absl::StrCat(kSelectJob, " WHERE job_id = ?");
  std::lock_guard<std::mutex> lock(mu_);
  AUTOQ_STATEMENT_(s, kSql.c_str());
  s.Text(job_id);
  ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return std::optional<JobRow>();
  return std::optional<JobRow>(ReadJob(s));
}

absl::StatusOr<std::vector<JobRow>> ServerStore::ListJobs(
    absl::string_view owner) {
  static const std::string kAll =
      absl::StrCat(kSelectJob, " ORDER BY submitted_ms, rowid");
  static const std::string kOwned =
      absl::StrCat(kSelectJob, " WHERE owner = ? ORDER BY submitted_ms, rowid");
  std::lock_guard<std::mutex> lock(mu_);
  AUTOQ_STATEMENT_(s, owner.empty() ? kAll.c_str() : kOwned.c_str());
  if (!owner.empty()) s.Text(owner);
  std::vector<JobRow> jobs;
  for (;;) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    jobs.push_back(ReadJob(s));
  }
  return jobs;
}

// --- Tasks.

absl::Status ServerStore::RunLocked(const char* sql) {
  AUTOQ_STATEMENT_(s, sql);
  return s.Run();
}

absl::Status ServerStore::InsertTaskLocked(const TaskRow& task, bool with_id) {
  if (with_id && task.task_id <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("task id ", task.task_id, " is not positive"));
  }
  const std::string wbits = EncodeInts(task.wbits);
  const std::string abits = EncodeInts(task.abits);
  // Without an id, AUTOINCREMENT chooses one.
  AUTOQ_STATEMENT_(s, with_id
                          ? "INSERT INTO tasks (task_id, key, job_id, stage, "
                            "wbits, abits, lease_id, worker_id, deadline_ms, "
                            "attempts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                          : "INSERT INTO tasks (key, job_id, stage, wbits, "
                            "abits, lease_id, worker_id, deadline_ms, "
                            "attempts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
  if (with_id) s.Int(task.task_id);
  s.Text(task.key)
      .Text(task.job_id)
      .Int(task.stage)
      .Text(wbits)
      .Text(abits)
      .Text(task.lease_id)
      .Text(task.worker_id)
      .Int(task.deadline_ms)
      .Int(task.attempts);
  return s.Run();
}

absl::StatusOr<int64_t> ServerStore::InsertTask(const TaskRow& task) {
  std::lock_guard<std::mutex> lock(mu_);
  TaskRow row = task;
  row.task_id = 0;
  RETURN_IF_ERROR(InsertTaskLocked(row, /*with_id=*/false));
  return static_cast<int64_t>(sqlite3_last_insert_rowid(db_));
}

absl::Status ServerStore::SetLeaseLocked(int64_t task_id,
                                         absl::string_view lease_id,
                                         absl::string_view worker_id,
                                         int64_t deadline_ms, int attempts) {
  AUTOQ_STATEMENT_(s,
                   "UPDATE tasks SET lease_id = ?, worker_id = ?, "
                   "deadline_ms = ?, attempts = ? WHERE task_id = ?");
  s.Text(lease_id).Text(worker_id).Int(deadline_ms).Int(attempts).Int(task_id);
  RETURN_IF_ERROR(s.Run());
  if (sqlite3_changes(db_) == 0) {
    return absl::NotFoundError(absl::StrCat(path_, ": no task ", task_id));
  }
  return absl::OkStatus();
}

absl::Status ServerStore::SetLease(int64_t task_id, absl::string_view lease_id,
                                   absl::string_view worker_id,
                                   int64_t deadline_ms, int attempts) {
  std::lock_guard<std::mutex> lock(mu_);
  return SetLeaseLocked(task_id, lease_id, worker_id, deadline_ms, attempts);
}

absl::Status ServerStore::ClearLeaseLocked(int64_t task_id) {
  AUTOQ_STATEMENT_(s,
                   "UPDATE tasks SET lease_id = '', worker_id = '', "
                   "deadline_ms = 0 WHERE task_id = ?");
  s.Int(task_id);
  RETURN_IF_ERROR(s.Run());
  if (sqlite3_changes(db_) == 0) {
    return absl::NotFoundError(absl::StrCat(path_, ": no task ", task_id));
  }
  return absl::OkStatus();
}

absl::Status ServerStore::ClearLease(int64_t task_id) {
  std::lock_guard<std::mutex> lock(mu_);
  return ClearLeaseLocked(task_id);
}

absl::Status ServerStore::SetDeadlinesLocked(
    const std::vector<int64_t>& task_ids, int64_t deadline_ms) {
  AUTOQ_STATEMENT_(s, "UPDATE tasks SET deadline_ms = ? WHERE task_id = ?");
  for (int64_t id : task_ids) {
    s.Int(deadline_ms).Int(id);
    RETURN_IF_ERROR(s.Run());
    if (sqlite3_changes(db_) == 0) {
      return absl::NotFoundError(absl::StrCat(path_, ": no task ", id));
    }
    s.Reset();
  }
  return absl::OkStatus();
}

absl::Status ServerStore::SetDeadlines(const std::vector<int64_t>& task_ids,
                                       int64_t deadline_ms) {
  if (task_ids.empty()) return absl::OkStatus();
  std::lock_guard<std::mutex> lock(mu_);
  // BEGIN IMMEDIATE: take the write lock up front, so a busy file fails
  // here rather than half-way through.
  RETURN_IF_ERROR(RunLocked("BEGIN IMMEDIATE"));
  absl::Status st = SetDeadlinesLocked(task_ids, deadline_ms);
  if (st.ok()) st = RunLocked("COMMIT");
  if (!st.ok()) RollbackIfOpen(db_);
  return st;
}

absl::Status ServerStore::DeleteTaskLocked(int64_t task_id) {
  AUTOQ_STATEMENT_(s, "DELETE FROM tasks WHERE task_id = ?");
  s.Int(task_id);
  return s.Run();
}

absl::Status ServerStore::DeleteTask(int64_t task_id) {
  std::lock_guard<std::mutex> lock(mu_);
  return DeleteTaskLocked(task_id);
}

absl::StatusOr<int64_t> ServerStore::NextTaskId() {
  std::lock_guard<std::mutex> lock(mu_);
  // sqlite_sequence remembers the largest id AUTOINCREMENT ever saw, so
  // deleted tasks' ids count too.
  AUTOQ_STATEMENT_(s,
                   "SELECT MAX(IFNULL((SELECT seq FROM sqlite_sequence "
                   "WHERE name = 'tasks'), 0), "
                   "IFNULL((SELECT MAX(task_id) FROM tasks), 0)) + 1");
  ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return absl::InternalError(absl::StrCat(path_, ": no task id"));
  return s.Int64(0);
}

absl::StatusOr<std::vector<TaskRow>> ServerStore::ListTasks() {
  std::lock_guard<std::mutex> lock(mu_);
  AUTOQ_STATEMENT_(s,
                   "SELECT task_id, key, job_id, stage, wbits, abits, "
                   "lease_id, worker_id, deadline_ms, attempts FROM tasks "
                   "ORDER BY task_id");
  std::vector<TaskRow> tasks;
  for (;;) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    TaskRow& t = tasks.emplace_back();
    t.task_id = s.Int64(0);
    t.key = s.Bytes(1);
    t.job_id = s.Bytes(2);
    t.stage = static_cast<int>(s.Int64(3));
    std::string wbits = s.Bytes(4), abits = s.Bytes(5);
    if (!DecodeInts(wbits, &t.wbits) || !DecodeInts(abits, &t.abits)) {
      return absl::DataLossError(absl::StrCat(path_, ": task ", t.task_id,
                                              " has unreadable bit-widths '",
                                              wbits, "' / '", abits, "'"));
    }
    t.lease_id = s.Bytes(6);
    t.worker_id = s.Bytes(7);
    t.deadline_ms = s.Int64(8);
    t.attempts = static_cast<int>(s.Int64(9));
  }
  return tasks;
}

// --- Workers.

absl::Status ServerStore::PutWorkerLocked(const WorkerRow& worker) {
  const std::string devices = EncodeNames(worker.devices);
  AUTOQ_STATEMENT_(s,
                   "INSERT OR REPLACE INTO workers (worker_id, name, devices, "
                   "registered_ms) VALUES (?, ?, ?, ?)");
  s.Text(worker.worker_id)
      .Text(worker.name)
      .Text(devices)
      .Int(worker.registered_ms);
  return s.Run();
}

absl::Status ServerStore::PutWorker(const WorkerRow& worker) {
  std::lock_guard<std::mutex> lock(mu_);
  return PutWorkerLocked(worker);
}

absl::Status ServerStore::DeleteWorkerLocked(absl::string_view worker_id) {
  AUTOQ_STATEMENT_(s, "DELETE FROM workers WHERE worker_id = ?");
  s.Text(worker_id);
  return s.Run();
}

absl::Status ServerStore::DeleteWorker(absl::string_view worker_id) {
  std::lock_guard<std::mutex> lock(mu_);
  return DeleteWorkerLocked(worker_id);
}

absl::StatusOr<std::vector<WorkerRow>> ServerStore::ListWorkers() {
  std::lock_guard<std::mutex> lock(mu_);
  AUTOQ_STATEMENT_(s,
                   "SELECT worker_id, name, devices, registered_ms FROM "
                   "workers ORDER BY registered_ms, worker_id");
  std::vector<WorkerRow> workers;
  for (;;) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    WorkerRow& w = workers.emplace_back();
    w.worker_id = s.Bytes(0);
    w.name = s.Bytes(1);
    w.devices = DecodeNames(s.Bytes(2));
    w.registered_ms = s.Int64(3);
  }
  return workers;
}

// --- Server starts.

absl::StatusOr<int64_t> ServerStore::CountStart() {
  std::lock_guard<std::mutex> lock(mu_);
  // One statement, so two servers starting on one file count both.
  AUTOQ_STATEMENT_(s,
                   "INSERT INTO meta (key, value) VALUES (?, '1') "
                   "ON CONFLICT (key) DO UPDATE SET "
                   "value = CAST(value AS INTEGER) + 1 "
                   "RETURNING CAST(value AS INTEGER) - 1");
  s.Text(kStartsKey);
  ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return absl::InternalError(absl::StrCat(path_, ": no start count"));
  const int64_t before = s.Int64(0);
  ASSIGN_OR_RETURN(bool more, s.Step());  // completes (commits) the write
  (void)more;
  if (before < 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        path_, ": negative ", kStartsKey, " in the meta table"));
  }
  return before;
}

// --- Group commit.

absl::Status ServerStore::Batch::InsertTaskWithId(const TaskRow& task) {
  return store_->InsertTaskLocked(task, /*with_id=*/true);
}
absl::Status ServerStore::Batch::SetLease(int64_t task_id,
                                          absl::string_view lease_id,
                                          absl::string_view worker_id,
                                          int64_t deadline_ms, int attempts) {
  return store_->SetLeaseLocked(task_id, lease_id, worker_id, deadline_ms,
                                attempts);
}
absl::Status ServerStore::Batch::ClearLease(int64_t task_id) {
  return store_->ClearLeaseLocked(task_id);
}
absl::Status ServerStore::Batch::SetDeadlines(
    const std::vector<int64_t>& task_ids, int64_t deadline_ms) {
  return store_->SetDeadlinesLocked(task_ids, deadline_ms);
}
absl::Status ServerStore::Batch::DeleteTask(int64_t task_id) {
  return store_->DeleteTaskLocked(task_id);
}
absl::Status ServerStore::Batch::PutWorker(const WorkerRow& worker) {
  return store_->PutWorkerLocked(worker);
}
absl::Status ServerStore::Batch::DeleteWorker(absl::string_view worker_id) {
  return store_->DeleteWorkerLocked(worker_id);
}

std::vector<absl::Status> ServerStore::WriteGroup(
    const std::vector<const Write*>& writes) {
  std::vector<absl::Status> out(writes.size());
  if (writes.empty()) return out;
  std::lock_guard<std::mutex> lock(mu_);
  // Marks every write that succeeded so far, and every one not yet run
  // from `from` on, as failed with `why`: none of them is kept.
  auto fail_all = [&](const absl::Status& why, size_t from) {
    for (size_t i = 0; i < out.size(); ++i) {
      if (i >= from || out[i].ok()) out[i] = why;
    }
  };
  absl::Status st = RunLocked("BEGIN IMMEDIATE");
  if (!st.ok()) {
    fail_all(st, 0);
    return out;
  }
  Batch batch(this);
  for (size_t i = 0; i < writes.size(); ++i) {
    st = RunLocked("SAVEPOINT w");
    if (st.ok()) {
      st = (*writes[i])(batch);
      if (sqlite3_get_autocommit(db_) != 0) {
        // SQLite rolled the whole transaction back (full disk, I/O error).
        fail_all(st.ok() ? absl::InternalError(absl::StrCat(
                               path_, ": the transaction was rolled back"))
                         : st,
                 i);
        return out;
      }
      out[i] = st;
      if (!st.ok()) st = RunLocked("ROLLBACK TO w");
      if (st.ok()) st = RunLocked("RELEASE w");
    }
    if (!st.ok() && out[i].ok()) {  // the savepoint itself failed
      RollbackIfOpen(db_);
      fail_all(st, i);
      return out;
    }
  }
  st = RunLocked("COMMIT");
  if (!st.ok()) {
    RollbackIfOpen(db_);
    fail_all(st, writes.size());
  }
  return out;
}

#undef AUTOQ_STATEMENT_

}  // namespace autoq::server
