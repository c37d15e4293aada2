// The service's durable state besides the result cache: uploaded models,
// jobs, queued and leased tasks, registered workers. It lives in the same
// SQLite file as the result cache (search/result_store.h), in tables of its
// own, so one file (one volume) holds everything a restarted server needs.
//
// Who calls what: the job manager writes jobs and models; the task queue
// writes tasks and leases and the worker service writes workers, both
// through the server's StoreWriter (server/store_writer.h), which commits
// many of their small writes in one transaction (WriteGroup). A server
// killed at any moment restarts from what was committed.
//
// Thread-safety: all methods may be called from any thread at once (one
// connection, serialized by a mutex).
#ifndef AUTOQ_SERVER_SERVER_STORE_H_
#define AUTOQ_SERVER_SERVER_STORE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

struct sqlite3;
struct sqlite3_stmt;

namespace autoq::server {

struct JobRow {
  std::string job_id;  // "j-" + 16 hex digits
  std::string owner;   // client name of the submitting token
  std::string name;
  std::string spec;  // serialized autoq.JobSpec
  std::string model_sha256;
  int64_t model_bytes = 0;
  int state = 0;             // an autoq::JobState value
  std::string phase;         // "float", "search", "final", "done"
  std::string error;         // set when the job failed
  std::string results;       // serialized autoq.FinalFront once finished
  int64_t submitted_ms = 0;  // Unix time
  int64_t updated_ms = 0;
};

struct TaskRow {
  int64_t task_id = 0;  // assigned by InsertTask
  std::string key;      // result cache key; unique among stored tasks
  std::string job_id;   // the job that first asked for it
  int stage = 0;        // an autoq::TaskStage value
  std::vector<int> wbits, abits;
  std::string lease_id;     // empty: pending
  std::string worker_id;    // holder of the lease
  int64_t deadline_ms = 0;  // lease deadline, Unix time
  int attempts = 0;         // leases handed out so far
};

struct WorkerRow {
  std::string worker_id;
  std::string name;
  std::vector<std::string> devices;
  int64_t registered_ms = 0;
};

class ServerStore {
 public:
  static constexpr int kSchemaVersion = 1;

  // Opens the service tables in the SQLite file at `path`, creating them if
  // absent. Open the file with search::ResultStore::Open first: it is the
  // one that creates the file and refuses files that are not AutoQ
  // databases (a missing file or one without the meta table is refused
  // here too). A file whose service tables were written by a newer AutoQ
  // is refused unmodified. Errors name the path.
  static absl::StatusOr<std::unique_ptr<ServerStore>> Open(
      const std::string& path);

  ~ServerStore();
  ServerStore(const ServerStore&) = delete;
  ServerStore& operator=(const ServerStore&) = delete;

  // --- Models, content-addressed. PutModel of a present hash is a no-op.
  absl::Status PutModel(absl::string_view sha256, absl::string_view bytes);
  absl::StatusOr<std::optional<std::string>> GetModel(absl::string_view sha256);
  absl::StatusOr<bool> HasModel(absl::string_view sha256);

  // --- Jobs.
  // Fails with ALREADY_EXISTS if the id exists.
  absl::Status InsertJob(const JobRow& job);
  // PutModel(job.model_sha256, model_bytes) and InsertJob(job) in one
  // transaction: a failure (a full disk) keeps neither.
  absl::Status InsertJobWithModel(const JobRow& job,
                                  absl::string_view model_bytes);
  // Sets state, phase, error and updated_ms of an existing job (NOT_FOUND
  // if there is none; so does SetJobResults).
  absl::Status UpdateJob(absl::string_view job_id, int state,
                         absl::string_view phase, absl::string_view error,
                         int64_t updated_ms);
  absl::Status SetJobResults(absl::string_view job_id,
                             absl::string_view results);
  absl::StatusOr<std::optional<JobRow>> GetJob(absl::string_view job_id);
  // Jobs of `owner` (all jobs when empty), oldest first.
  absl::StatusOr<std::vector<JobRow>> ListJobs(absl::string_view owner);

  // --- Tasks (queued or leased; a finished task's row is deleted).
  // Returns the new task id (ids grow and are never reused, even across
  // restarts; `task.task_id` is ignored). Fails with ALREADY_EXISTS if a
  // task with the same key exists.
  absl::StatusOr<int64_t> InsertTask(const TaskRow& task);
  // Records a lease (lease_id, worker_id, deadline_ms, attempts) of a task.
  // SetLease, ClearLease and SetDeadlines fail with NOT_FOUND (and change
  // nothing) when a task id is not stored.
  absl::Status SetLease(int64_t task_id, absl::string_view lease_id,
                        absl::string_view worker_id, int64_t deadline_ms,
                        int attempts);
  // Puts a task back in the queue (lease expired or given up).
  absl::Status ClearLease(int64_t task_id);
  absl::Status SetDeadlines(const std::vector<int64_t>& task_ids,
                            int64_t deadline_ms);    // one transaction
  absl::Status DeleteTask(int64_t task_id);          // absent: a no-op
  absl::StatusOr<std::vector<TaskRow>> ListTasks();  // by task id
  // The smallest id that is above every id InsertTask gave or a batch
  // inserted, deleted tasks included: callers that choose ids
  // (Batch::InsertTaskWithId) start there, and ids are still never reused.
  absl::StatusOr<int64_t> NextTaskId();

  // --- Workers. Empty device names are not kept.
  absl::Status PutWorker(const WorkerRow& worker);         // insert or replace
  absl::Status DeleteWorker(absl::string_view worker_id);  // absent: a no-op
  // By registration time, then id.
  absl::StatusOr<std::vector<WorkerRow>> ListWorkers();

  // Takes the database's write lock and lets it go again, for a server's
  // start: UNAVAILABLE naming the path when another process holds it past
  // the busy timeout (5 s), rather than failing later in the middle of
  // restoring state.
  absl::Status CheckWritable();

  // --- Server starts. Adds one to the count of starts kept in the meta
  // table and returns the count before it (0 on a file no server has
  // started on). The job manager bases event sequence numbers on it.
  absl::StatusOr<int64_t> CountStart();

  // --- Group commit. The task and worker writes above, for WriteGroup.
  class Batch {
   public:
    // Inserts `task` under its own `task_id` (> 0, from NextTaskId on):
    // the caller knows the id before the write is committed.
    absl::Status InsertTaskWithId(const TaskRow& task);
    absl::Status SetLease(int64_t task_id, absl::string_view lease_id,
                          absl::string_view worker_id, int64_t deadline_ms,
                          int attempts);
    absl::Status ClearLease(int64_t task_id);
    absl::Status SetDeadlines(const std::vector<int64_t>& task_ids,
                              int64_t deadline_ms);
    absl::Status DeleteTask(int64_t task_id);
    absl::Status PutWorker(const WorkerRow& worker);
    absl::Status DeleteWorker(absl::string_view worker_id);

   private:
    friend class ServerStore;
    explicit Batch(ServerStore* store) : store_(store) {}
    ServerStore* store_;
  };
  // One write of a group: calls on the Batch, all or none of them kept.
  using Write = std::function<absl::Status(Batch&)>;

  // Runs `writes` in order in one transaction, each in a savepoint of its
  // own: a write that fails is undone alone and its status says why; the
  // others are committed together. Returns one status per write. When the
  // transaction cannot begin or commit (or SQLite rolls it back, e.g. on a
  // full disk), every write that was not already failing gets that error
  // and none is kept. One commit for many small writes is what lets the
  // queue keep up with many workers.
  std::vector<absl::Status> WriteGroup(const std::vector<const Write*>& writes);

  const std::string& path() const { return path_; }

 private:
  ServerStore(std::string path, sqlite3* db);

  // The cached prepared statement of `sql` (a string literal: the cache is
  // keyed by its address). Requires mu_ held, or Open before the store is
  // shared.
  absl::StatusOr<sqlite3_stmt*> PrepareLocked(const char* sql);
  // Runs the cached statement `sql` (no rows, no parameters).
  absl::Status RunLocked(const char* sql);

  // The writes; require mu_ held. SetDeadlinesLocked is not atomic by
  // itself: its callers wrap it in a transaction or a savepoint.
  absl::Status PutModelLocked(absl::string_view sha256,
                              absl::string_view bytes);
  absl::Status InsertJobLocked(const JobRow& job);
  absl::Status InsertTaskLocked(const TaskRow& task, bool with_id);
  absl::Status SetLeaseLocked(int64_t task_id, absl::string_view lease_id,
                              absl::string_view worker_id, int64_t deadline_ms,
                              int attempts);
  absl::Status ClearLeaseLocked(int64_t task_id);
  absl::Status SetDeadlinesLocked(const std::vector<int64_t>& task_ids,
                                  int64_t deadline_ms);
  absl::Status DeleteTaskLocked(int64_t task_id);
  absl::Status PutWorkerLocked(const WorkerRow& worker);
  absl::Status DeleteWorkerLocked(absl::string_view worker_id);

  std::string path_;
  std::mutex mu_;
  sqlite3* db_;  // guarded by mu_
  // Reused statements: the queue's writes are small and frequent, and
  // preparing costs as much as running them. Guarded by mu_.
  std::map<const char*, sqlite3_stmt*> stmts_;
};

}  // namespace autoq::server

#endif  // AUTOQ_SERVER_SERVER_STORE_H_
