// The queue of evaluation tasks between the jobs' searches and the workers:
// jobs enqueue the chromosomes they need scored, workers lease them one at a
// time, heartbeat while they work and complete them. Every change is
// written to the ServerStore, through a StoreWriter (server/store_writer.h)
// that commits many changes in one transaction, so a server killed at any
// moment restarts (Open) with the same tasks and leases.
//
// A change takes effect in memory at once and its write is submitted under
// the queue's lock, so the store always holds a state the queue went
// through. Whatever a caller is told (a lease, a new deadline, a completion
// accepted, a waiter's result) waits until that write is committed; a
// write that fails undoes its change where nothing has changed the task
// since, and the caller gets the error. The *Async methods never wait
// for the store, so a gRPC reaction can call them: their `done` runs on the
// writer's thread once the write is committed (or at once, on the calling
// thread, when there is nothing to write). The others wait, for threads
// that may block (job threads, the timer, tests); never call them on the
// writer's thread, that is from a `done` or a waiter.
//
// - One task per cache key: a key asked for again (by the same job after a
//   restart, or by another job) while queued or leased gets a second waiter,
//   never a second task. Finished tasks leave the queue; their results are
//   in the result cache, which the jobs consult before enqueueing.
// - Fair between jobs: Lease takes the oldest queued task of the next job in
//   round-robin order, so a job with a huge batch cannot starve the others.
// - A lease not extended by Heartbeat before its deadline expires
//   (ExpireLeases): the task is queued again, and a completion under the
//   old lease is rejected. A task whose worker reports an error is retried
//   until it has been leased `max_attempts` times, then its waiters fail.
//
// Time is passed in (Unix milliseconds) so tests drive it.
//
// Thread-safety: all methods may be called from any thread at once (but see
// above for the waiting ones). Waiter callbacks run after the queue's lock
// is released: on the writer's thread once the change that ends the task
// is committed, or on the thread that cancelled the task or enqueued a key
// found done; they must not block for long.
#ifndef AUTOQ_SERVER_TASK_QUEUE_H_
#define AUTOQ_SERVER_TASK_QUEUE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/server_store.h"
#include "server/store_writer.h"

namespace autoq::server {

struct TaskQueueOptions {
  // A lease lasts this long after its grant or last heartbeat. Default 60 s;
  // clamped to [1 s, 1 day].
  int64_t lease_ms = 60000;
  // Leases of one task before its error is final. Default 3; clamped to
  // [1, 100].
  int max_attempts = 3;
  // After a restart (Open), held leases get this long, or a whole lease if
  // longer: workers retrying with backoff take a while to notice the server
  // is back, and a lease lost to that wait means a task computed twice.
  // Default 30 s; clamped to [0, 1 day].
  int64_t restart_grace_ms = 30000;
};

// A task as a job asks for it.
struct TaskSpec {
  std::string key;     // result cache key
  std::string job_id;  // the asking job
  int stage = 0;       // an autoq::TaskStage value
  std::vector<int> wbits, abits;
};

// A granted lease.
struct Lease {
  // task_id, key, stage, bits, attempts (this lease included), and as
  // job_id the job it is served under: one that waits for it now (the
  // first asker that is still waiting), so its spec and model apply.
  TaskRow task;
  std::string lease_id;  // 32 hex digits, random: unique across restarts
  int64_t deadline_ms = 0;
};

struct QueueCounts {
  int64_t queued = 0;  // not leased (Counts: loaded ones nobody waits for too)
  int64_t leased = 0;
};

class TaskQueue {
 public:
  // Called once when the task is done. OK: the result of the key is in the
  // result cache (stored by the completer's `persist`); `encoded_result` is
  // that value (an autoq.EvalResult). Not OK: the task failed on its last
  // attempt (the worker's error), or its job was cancelled (CANCELLED).
  using Waiter = std::function<void(absl::Status status,
                                    const std::string& encoded_result)>;

  // Loads the stored tasks. Tasks that were leased keep their lease, with a
  // fresh deadline `now_ms + max(lease_ms, restart_grace_ms)` (written to
  // the store): their
  // workers get that long to come back after a server restart. Stored
  // tasks have no waiters until a job enqueues their keys again. `store`
  // must outlive the queue; one queue per store. Writes go through `writer`
  // (a writer of `store`, shared with the worker service's writes); null:
  // the queue makes its own. A shared writer must be destroyed before the
  // queue (its last completions call into the queue).
  static absl::StatusOr<std::unique_ptr<TaskQueue>> Open(
      ServerStore* store, TaskQueueOptions options, int64_t now_ms,
      StoreWriter* writer = nullptr);

  // Drops the queue without telling waiters: what was written stays for the
  // next Open. An own writer first writes everything submitted.
  ~TaskQueue();
  TaskQueue(const TaskQueue&) = delete;
  TaskQueue& operator=(const TaskQueue&) = delete;

  // The finished result of a key (an encoded autoq.EvalResult), or nullopt.
  using DoneLookup = std::function<absl::StatusOr<std::optional<std::string>>(
      const std::string& key)>;

  // Queues `spec` unless a task with its key is queued or leased, and adds
  // `waiter` to that task either way (an empty `waiter` still makes the job
  // wait, but nothing is called). Key and job id must not be empty. Fails
  // only if the store write of a new task fails (or `done` fails); then
  // nothing changed.
  //
  // `done` (may be empty) closes the gap between a job's cache lookup and
  // its Enqueue: when no task has the key, it is asked for the key's
  // result under the queue's lock, which Complete holds from storing a
  // result to removing its task. A result found (another job's task
  // finished meanwhile) goes to `waiter` at once, on this thread, and no
  // task is queued: a key is never run twice.
  absl::Status Enqueue(const TaskSpec& spec, Waiter waiter,
                       const DoneLookup& done = nullptr);
  // Enqueue without waiting for the new task's write: if it fails, the task
  // is dropped and its waiters, `waiter` too, get the error. For a job
  // thread that enqueues a whole batch and waits for the results anyway:
  // the batch's tasks are committed together. Fails at once (nothing
  // changed, `waiter` not called) for empty ids or a failing `done`.
  absl::Status EnqueueAsync(const TaskSpec& spec, Waiter waiter,
                            const DoneLookup& done = nullptr);

  // The next task for `worker_id` (fair across jobs), or nullopt when none
  // is queued. Only tasks that some job waits for are handed out; tasks
  // loaded by Open stay queued until a job enqueues their key.
  absl::StatusOr<std::optional<Lease>> LeaseNext(const std::string& worker_id,
                                                 int64_t now_ms);
  using LeaseDone =
      std::function<void(absl::StatusOr<std::optional<Lease>> lease)>;
  void LeaseNextAsync(const std::string& worker_id, int64_t now_ms,
                      LeaseDone done);

  // Extends the given leases of `worker_id` to `now_ms + lease_ms`. Leases
  // it no longer holds (expired, re-leased, cancelled, finished) are
  // returned in `lost` (may be null). Returns the new deadline. A lease is
  // held until ExpireLeases, ReleaseWorker, CancelJob or its task's end
  // takes it away, even past its deadline.
  absl::StatusOr<int64_t> Heartbeat(const std::string& worker_id,
                                    const std::vector<std::string>& lease_ids,
                                    int64_t now_ms,
                                    std::vector<std::string>* lost);
  // `lost` is empty when `deadline` is an error.
  using HeartbeatDone = std::function<void(absl::StatusOr<int64_t> deadline,
                                           std::vector<std::string> lost)>;
  void HeartbeatAsync(const std::string& worker_id,
                      const std::vector<std::string>& lease_ids, int64_t now_ms,
                      HeartbeatDone done);

  enum class CompleteOutcome {
    kAccepted,   // the result was stored and the waiters told
    kDuplicate,  // the task is already finished: nothing changed
  };
  // Completes the task `task_id` under `lease_id` held by `worker_id`.
  // Only if the lease is still held: the task is marked finishing (its
  // lease can no longer expire or be released), then on the writer's
  // thread `persist` stores the result and artifacts in the result cache
  // and the task's row is deleted; once that is committed the task is
  // removed and the waiters are told with `encoded_result`. A task that is
  // no longer queued or leased at all is a duplicate (a retried call); so
  // is a second completion while the first is being stored (it is answered
  // with the first one's outcome). A lease that is not held (wrong worker,
  // expired, re-leased) fails with FAILED_PRECONDITION and changes nothing.
  // `persist` gets the task (its key says where the result belongs); it
  // may be empty, and must not call the queue. A failing `persist` (or
  // store write) is returned and the task stays leased, so the worker may
  // retry.
  using Persist = std::function<absl::Status(const TaskRow& task)>;
  absl::StatusOr<CompleteOutcome> Complete(const std::string& worker_id,
                                           const std::string& lease_id,
                                           int64_t task_id,
                                           const std::string& encoded_result,
                                           const Persist& persist);
  using CompleteDone =
      std::function<void(absl::StatusOr<CompleteOutcome> outcome)>;
  void CompleteAsync(const std::string& worker_id, const std::string& lease_id,
                     int64_t task_id, std::string encoded_result,
                     Persist persist, CompleteDone done);

  // The worker's task failed with `error`: the lease ends; the task is
  // queued again, or, after max_attempts leases, its waiters get
  // INTERNAL(error) and the task is dropped. Same lease checks as Complete;
  // a task that no longer exists is a retried call: OK, nothing changes.
  absl::Status Fail(const std::string& worker_id, const std::string& lease_id,
                    int64_t task_id, const std::string& error);
  void FailAsync(const std::string& worker_id, const std::string& lease_id,
                 int64_t task_id, const std::string& error,
                 std::function<void(absl::Status)> done);

  // Requeues every lease whose deadline is before `now_ms`. Returns the
  // requeued tasks' ids. A task whose store write fails keeps its lease
  // and is tried again by the next call.
  std::vector<int64_t> ExpireLeases(int64_t now_ms);

  // Drops the leases of a worker that left (SIGTERM, unregistered): their
  // tasks are queued again at once. Returns once that is written.
  void ReleaseWorker(const std::string& worker_id);
  // The same without waiting for the writes; `done` (may be empty) runs
  // once they are committed.
  void ReleaseWorkerAsync(const std::string& worker_id,
                          std::function<void()> done);

  // Removes `job_id`'s waiters; tasks nobody waits for any more are
  // dropped (a leased one is lost to its worker at the next heartbeat), and
  // so are the job's stored tasks that no job enqueued since Open. The
  // removed waiters get CANCELLED. A task whose store delete fails stays
  // stored, and is loaded (unserved) by the next Open. A task being
  // completed is left to its completion. Returns once the deletes are
  // written.
  void CancelJob(const std::string& job_id);

  // All tasks, and the tasks `job_id` waits for.
  QueueCounts Counts() const;
  QueueCounts CountsForJob(const std::string& job_id) const;

 private:
  struct Entry;
  TaskQueue(ServerStore* store, TaskQueueOptions options);

  // Enqueue and EnqueueAsync. `stored` (sync Enqueue) is told the outcome
  // of the new task's write instead of `waiter`; null when no task was
  // made.
  absl::Status EnqueueImpl(const TaskSpec& spec, Waiter waiter,
                           const DoneLookup& done,
                           std::function<void(absl::Status)>* stored);

  // Helpers; all require mu_ held.
  // Enqueue without the lookup: adds the task if its key is new (and
  // submits its insert, whose outcome goes to `stored` if given) and the
  // waiter. Returns whether a task was made.
  bool EnqueueLocked(const TaskSpec& spec, Waiter waiter,
                     std::function<void(absl::Status)> stored);
  // Adds / removes task `id` to / from the FIFO of its first waiter's job
  // (queued_by_job_); only a queued task with waiters is in one.
  void QueueLocked(int64_t id, Entry& e);
  void UnqueueLocked(int64_t id, Entry& e);
  // Ends the lease of `e` and queues it, and submits the write; `done`
  // (may be empty) gets its outcome. A failed write gives the lease back
  // if nobody leased the task since.
  void RequeueLocked(int64_t id, Entry& e,
                     std::function<void(absl::Status)> done);
  // Removes task `id` from memory (not the store); returns its waiters.
  std::vector<Waiter> EraseLocked(int64_t id);
  std::string NewLeaseIdLocked();
  void SubmitLocked(StoreWriter::Write write);

  // Completions on the writer's thread.
  void Inserted(int64_t id, absl::Status status,
                std::function<void(absl::Status)> stored);
  void Finished(int64_t id, const std::string& lease_id, absl::Status status,
                absl::Status waiters_status, const std::string& encoded_result,
                CompleteDone done);

  ServerStore* store_;
  TaskQueueOptions options_;  // clamped; constant after Open
  StoreWriter* writer_ = nullptr;
  mutable std::mutex mu_;
  // Implementation state (indexes by id, key, lease, per-job FIFOs and the
  // round-robin cursor); Entry is defined in task_queue.cc.
  std::map<int64_t, std::unique_ptr<Entry>> tasks_;  // guarded by mu_
  std::map<std::string, int64_t> by_key_;            // guarded by mu_
  std::map<std::string, int64_t> by_lease_;          // guarded by mu_
  // Queued tasks with waiters, under the job of their first waiter, lowest
  // (oldest) task id first: a requeued task goes back to its place.
  std::map<std::string, std::set<int64_t>> queued_by_job_;  // guarded by mu_
  // The tasks each job waits for (queued or leased).
  std::map<std::string, std::set<int64_t>> waiting_by_job_;  // guarded by mu_
  std::string last_job_;  // round-robin cursor; guarded by mu_
  std::mt19937_64 rng_;   // lease ids; guarded by mu_
  int64_t next_id_ = 1;   // the next new task's id; guarded by mu_
  // Last member: destroyed first, so its final completions find the queue.
  std::unique_ptr<StoreWriter> own_writer_;
};

}  // namespace autoq::server

#endif  // AUTOQ_SERVER_TASK_QUEUE_H_
