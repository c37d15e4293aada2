#include "server/task_queue.h"

#include <algorithm>
#include <future>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace autoq::server {
namespace {

constexpr int64_t kMinLeaseMs = 1000;
constexpr int64_t kMaxLeaseMs = 24LL * 3600 * 1000;
constexpr int kMaxAttempts = 100;

absl::Status NotHeld(const std::string& worker_id, const std::string& lease_id,
                     int64_t task_id) {
  return absl::FailedPreconditionError(absl::StrCat(
      "task ", task_id, " is not leased to worker '", worker_id,
      "' under lease '", lease_id,
      "' (the lease expired, was released, or the task went to another "
      "worker); nothing was recorded"));
}

// Waits for a callback's value: the waiting methods are their *Async
// versions plus this.
template <typename T>
class Await {
 public:
  std::function<void(T)> Callback() {
    return [p = promise_](T value) { p->set_value(std::move(value)); };
  }
  T Get() { return future_.get(); }

 private:
  std::shared_ptr<std::promise<T>> promise_ =
      std::make_shared<std::promise<T>>();
  std::future<T> future_ = promise_->get_future();
};

}  // namespace

struct TaskQueue::Entry {
  struct Waiting {
    std::string job_id;
    Waiter fn;
    // A sync Enqueue that made the task: a failed insert is its return
    // value, not a call of `fn`.
    bool told_by_caller = false;
  };

  bool leased() const { return !row.lease_id.empty(); }

  TaskRow row;  // as in memory; the store follows through the writer
  // In Enqueue order; the first one's job is the one the task is served
  // under. Empty for a task loaded by Open that no job enqueued since.
  std::vector<Waiting> waiters;
  // Its end (a completion, or a last failure) is being written: the lease
  // stays until then, and a second completion waits here for the outcome.
  bool finishing = false;
  std::vector<CompleteDone> also_finishing;
};

TaskQueue::TaskQueue(ServerStore* store, TaskQueueOptions options)
    : store_(store), options_(options) {
  std::random_device rd;
  std::seed_seq seed{rd(), rd(), rd(), rd(), rd(), rd(), rd(), rd()};
  rng_.seed(seed);
}

TaskQueue::~TaskQueue() { own_writer_.reset(); }

absl::StatusOr<std::unique_ptr<TaskQueue>> TaskQueue::Open(
    ServerStore* store, TaskQueueOptions options, int64_t now_ms,
    StoreWriter* writer) {
  if (store == nullptr) {
    return absl::InvalidArgumentError("task queue needs a server store");
  }
  options.lease_ms = std::clamp(options.lease_ms, kMinLeaseMs, kMaxLeaseMs);
  options.max_attempts = std::clamp(options.max_attempts, 1, kMaxAttempts);
  options.restart_grace_ms =
      std::clamp<int64_t>(options.restart_grace_ms, 0, kMaxLeaseMs);
  std::unique_ptr<TaskQueue> queue(new TaskQueue(store, options));

  ASSIGN_OR_RETURN(std::vector<TaskRow> rows, store->ListTasks());
  ASSIGN_OR_RETURN(queue->next_id_, store->NextTaskId());
  std::vector<int64_t> leased;
  for (TaskRow& row : rows) {
    int64_t id = row.task_id;
    if (!row.lease_id.empty()) {
      leased.push_back(id);
      queue->by_lease_[row.lease_id] = id;
    }
    queue->by_key_[row.key] = id;
    auto entry = std::make_unique<Entry>();
    entry->row = std::move(row);
    queue->tasks_[id] = std::move(entry);
  }
  // The workers could not heartbeat while the server was down: give them
  // time to come back.
  const int64_t deadline =
      now_ms + std::max(options.lease_ms, options.restart_grace_ms);
  RETURN_IF_ERROR(store->SetDeadlines(leased, deadline));
  for (int64_t id : leased) queue->tasks_[id]->row.deadline_ms = deadline;
  if (writer == nullptr) {
    queue->own_writer_ = std::make_unique<StoreWriter>(store);
    writer = queue->own_writer_.get();
  }
  queue->writer_ = writer;
  return queue;
}

void TaskQueue::SubmitLocked(StoreWriter::Write write) {
  writer_->Submit(std::move(write));
}

void TaskQueue::QueueLocked(int64_t id, Entry& e) {
  if (e.leased() || e.waiters.empty()) return;
  queued_by_job_[e.waiters.front().job_id].insert(id);
}

void TaskQueue::UnqueueLocked(int64_t id, Entry& e) {
  if (e.waiters.empty()) return;
  auto it = queued_by_job_.find(e.waiters.front().job_id);
  if (it == queued_by_job_.end()) return;
  it->second.erase(id);
  if (it->second.empty()) queued_by_job_.erase(it);
}

void TaskQueue::RequeueLocked(int64_t id, Entry& e,
                              std::function<void(absl::Status)> done) {
  const TaskRow held = e.row;
  by_lease_.erase(e.row.lease_id);
  e.row.lease_id.clear();
  e.row.worker_id.clear();
  e.row.deadline_ms = 0;
  QueueLocked(id, e);
  SubmitLocked({nullptr,
                [id](ServerStore::Batch& b) { return b.ClearLease(id); },
                [this, held, done = std::move(done)](absl::Status st) {
                  if (!st.ok()) {
                    // Not written: the lease is still held in the store, so it
                    // is in memory too, unless the task was leased again or
                    // ended.
                    std::lock_guard<std::mutex> lock(mu_);
                    auto it = tasks_.find(held.task_id);
                    if (it != tasks_.end() && !it->second->leased() &&
                        !it->second->finishing) {
                      Entry& e = *it->second;
                      UnqueueLocked(held.task_id, e);
                      e.row.lease_id = held.lease_id;
                      e.row.worker_id = held.worker_id;
                      e.row.deadline_ms = held.deadline_ms;
                      by_lease_[held.lease_id] = held.task_id;
                    }
                  }
                  if (done) done(std::move(st));
                }});
}

std::vector<TaskQueue::Waiter> TaskQueue::EraseLocked(int64_t id) {
  auto it = tasks_.find(id);
  Entry& e = *it->second;
  UnqueueLocked(id, e);
  if (e.leased()) by_lease_.erase(e.row.lease_id);
  by_key_.erase(e.row.key);
  std::vector<Waiter> fns;
  for (Entry::Waiting& w : e.waiters) {
    auto jt = waiting_by_job_.find(w.job_id);
    if (jt != waiting_by_job_.end()) {
      jt->second.erase(id);
      if (jt->second.empty()) waiting_by_job_.erase(jt);
    }
    if (w.fn) fns.push_back(std::move(w.fn));
  }
  tasks_.erase(it);
  return fns;
}

std::string TaskQueue::NewLeaseIdLocked() {
  for (;;) {
    std::string id = absl::StrCat(absl::Hex(rng_(), absl::kZeroPad16),
                                  absl::Hex(rng_(), absl::kZeroPad16));
    if (by_lease_.count(id) == 0) return id;
  }
}

absl::Status TaskQueue::Enqueue(const TaskSpec& spec, Waiter waiter,
                                const DoneLookup& done) {
  Await<absl::Status> inserted;
  std::function<void(absl::Status)> stored = inserted.Callback();
  RETURN_IF_ERROR(EnqueueImpl(spec, std::move(waiter), done, &stored));
  // Still set: no task was made, nothing to wait for.
  if (stored) return absl::OkStatus();
  return inserted.Get();
}

absl::Status TaskQueue::EnqueueAsync(const TaskSpec& spec, Waiter waiter,
                                     const DoneLookup& done) {
  return EnqueueImpl(spec, std::move(waiter), done, nullptr);
}

absl::Status TaskQueue::EnqueueImpl(const TaskSpec& spec, Waiter waiter,
                                    const DoneLookup& done,
                                    std::function<void(absl::Status)>* stored) {
  if (spec.key.empty() || spec.job_id.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("task of job '", spec.job_id, "' with key '", spec.key,
                     "': key and job id must not be empty"));
  }
  std::optional<std::string> finished;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto found = by_key_.find(spec.key);
    if (found == by_key_.end() && done) {
      ASSIGN_OR_RETURN(finished, done(spec.key));
    }
    if (!finished.has_value()) {
      std::function<void(absl::Status)> told;
      if (stored != nullptr) told = *stored;
      if (EnqueueLocked(spec, std::move(waiter), std::move(told)) &&
          stored != nullptr) {
        *stored = nullptr;  // taken: the insert's outcome goes there
      }
      return absl::OkStatus();
    }
  }
  if (waiter) waiter(absl::OkStatus(), *finished);
  return absl::OkStatus();
}

bool TaskQueue::EnqueueLocked(const TaskSpec& spec, Waiter waiter,
                              std::function<void(absl::Status)> stored) {
  const bool sync = static_cast<bool>(stored);
  int64_t id;
  bool made = false;
  auto found = by_key_.find(spec.key);
  if (found != by_key_.end()) {
    id = found->second;
  } else {
    TaskRow row;
    row.task_id = next_id_++;
    row.key = spec.key;
    row.job_id = spec.job_id;
    row.stage = spec.stage;
    row.wbits = spec.wbits;
    row.abits = spec.abits;
    id = row.task_id;
    SubmitLocked(
        {nullptr,
         [row](ServerStore::Batch& b) { return b.InsertTaskWithId(row); },
         [this, id, stored = std::move(stored)](absl::Status st) {
           Inserted(id, std::move(st), stored);
         }});
    auto entry = std::make_unique<Entry>();
    entry->row = std::move(row);
    tasks_[id] = std::move(entry);
    by_key_[spec.key] = id;
    made = true;
  }
  Entry& e = *tasks_[id];
  // The first waiter decides the FIFO; re-filing keeps that true when a
  // loaded task gets its first waiter.
  UnqueueLocked(id, e);
  e.waiters.push_back({spec.job_id, std::move(waiter), made && sync});
  QueueLocked(id, e);
  waiting_by_job_[spec.job_id].insert(id);
  return made;
}

void TaskQueue::Inserted(int64_t id, absl::Status status,
                         std::function<void(absl::Status)> stored) {
  std::vector<Waiter> fns;
  if (!status.ok()) {
    // Never stored: the task goes, and whoever waits for it hears why. A
    // lease granted meanwhile fails too (its write finds no row).
    std::lock_guard<std::mutex> lock(mu_);
    auto it = tasks_.find(id);
    if (it != tasks_.end()) {
      for (Entry::Waiting& w : it->second->waiters) {
        if (w.told_by_caller) w.fn = nullptr;
      }
      fns = EraseLocked(id);
    }
  }
  for (Waiter& w : fns) w(status, "");
  if (stored) stored(std::move(status));
}

absl::StatusOr<std::optional<Lease>> TaskQueue::LeaseNext(
    const std::string& worker_id, int64_t now_ms) {
  Await<absl::StatusOr<std::optional<Lease>>> lease;
  LeaseNextAsync(worker_id, now_ms, lease.Callback());
  return lease.Get();
}

void TaskQueue::LeaseNextAsync(const std::string& worker_id, int64_t now_ms,
                               LeaseDone done) {
  if (worker_id.empty()) {
    return done(
        absl::InvalidArgumentError("lease request without a worker id"));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!queued_by_job_.empty()) {
      // Round robin: the first job after the last one served, wrapping
      // around.
      auto job = queued_by_job_.upper_bound(last_job_);
      if (job == queued_by_job_.end()) job = queued_by_job_.begin();
      const int64_t id = *job->second.begin();
      Entry& e = *tasks_[id];

      Lease lease;
      lease.lease_id = NewLeaseIdLocked();
      lease.deadline_ms = now_ms + options_.lease_ms;
      const int attempts = e.row.attempts + 1;
      last_job_ = job->first;
      job->second.erase(job->second.begin());
      if (job->second.empty()) queued_by_job_.erase(job);
      e.row.lease_id = lease.lease_id;
      e.row.worker_id = worker_id;
      e.row.deadline_ms = lease.deadline_ms;
      e.row.attempts = attempts;
      by_lease_[lease.lease_id] = id;
      lease.task = e.row;
      lease.task.job_id = last_job_;
      SubmitLocked(
          {nullptr,
           [id, lease_id = lease.lease_id, worker_id,
            deadline = lease.deadline_ms, attempts](ServerStore::Batch& b) {
             return b.SetLease(id, lease_id, worker_id, deadline, attempts);
           },
           [this, lease = std::move(lease),
            done = std::move(done)](absl::Status st) mutable {
             if (st.ok()) return done(std::optional<Lease>(std::move(lease)));
             // Not written: queued again, unless something changed the task
             // since (then that change's write decides).
             {
               std::lock_guard<std::mutex> lock(mu_);
               auto it = tasks_.find(lease.task.task_id);
               if (it == tasks_.end()) {
                 // Its insert failed (a full disk) and took it away: for
                 // the worker there was simply no task.
                 by_lease_.erase(lease.lease_id);
                 st = absl::OkStatus();
               } else if (
                   it->second->row.lease_id == lease.lease_id &&
                   !it->second->finishing) {
                 Entry& e = *it->second;
                 by_lease_.erase(lease.lease_id);
                 e.row.lease_id.clear();
                 e.row.worker_id.clear();
                 e.row.deadline_ms = 0;
                 e.row.attempts = lease.task.attempts - 1;
                 QueueLocked(lease.task.task_id, e);
               }
             }
             if (st.ok()) return done(std::optional<Lease>());
             done(std::move(st));
           }});
      return;
    }
  }
  done(std::optional<Lease>());
}

absl::StatusOr<int64_t> TaskQueue::Heartbeat(
    const std::string& worker_id, const std::vector<std::string>& lease_ids,
    int64_t now_ms, std::vector<std::string>* lost) {
  auto out = std::make_shared<std::vector<std::string>>();
  Await<absl::StatusOr<int64_t>> deadline;
  HeartbeatAsync(worker_id, lease_ids, now_ms,
                 [out, cb = deadline.Callback()](absl::StatusOr<int64_t> d,
                                                 std::vector<std::string> l) {
                   *out = std::move(l);
                   cb(std::move(d));
                 });
  absl::StatusOr<int64_t> result = deadline.Get();
  if (lost != nullptr) *lost = std::move(*out);
  return result;
}

void TaskQueue::HeartbeatAsync(const std::string& worker_id,
                               const std::vector<std::string>& lease_ids,
                               int64_t now_ms, HeartbeatDone done) {
  const int64_t deadline = now_ms + options_.lease_ms;
  std::vector<std::string> gone;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // (task id, lease id, deadline before) of each held lease.
    struct Held {
      int64_t id;
      std::string lease_id;
      int64_t before;
    };
    std::vector<Held> held;
    std::vector<int64_t> ids;
    for (const std::string& lease_id : lease_ids) {
      auto it = by_lease_.find(lease_id);
      if (it != by_lease_.end() &&
          tasks_[it->second]->row.worker_id == worker_id) {
        Entry& e = *tasks_[it->second];
        held.push_back({it->second, lease_id, e.row.deadline_ms});
        ids.push_back(it->second);
        e.row.deadline_ms = deadline;
      } else {
        gone.push_back(lease_id);
      }
    }
    if (!ids.empty()) {
      SubmitLocked(
          {nullptr,
           [ids, deadline](ServerStore::Batch& b) {
             return b.SetDeadlines(ids, deadline);
           },
           [this, held = std::move(held), deadline, gone = std::move(gone),
            done = std::move(done)](absl::Status st) mutable {
             if (st.ok()) return done(deadline, std::move(gone));
             {
               // Not written: the old deadlines stand.
               std::lock_guard<std::mutex> lock(mu_);
               for (const Held& h : held) {
                 auto it = by_lease_.find(h.lease_id);
                 if (it == by_lease_.end()) continue;
                 Entry& e = *tasks_[it->second];
                 if (e.row.deadline_ms == deadline)
                   e.row.deadline_ms = h.before;
               }
             }
             done(std::move(st), {});
           }});
      return;
    }
  }
  done(deadline, std::move(gone));
}

absl::StatusOr<TaskQueue::CompleteOutcome> TaskQueue::Complete(
    const std::string& worker_id, const std::string& lease_id, int64_t task_id,
    const std::string& encoded_result, const Persist& persist) {
  Await<absl::StatusOr<CompleteOutcome>> outcome;
  CompleteAsync(worker_id, lease_id, task_id, encoded_result, persist,
                outcome.Callback());
  return outcome.Get();
}

void TaskQueue::CompleteAsync(const std::string& worker_id,
                              const std::string& lease_id, int64_t task_id,
                              std::string encoded_result, Persist persist,
                              CompleteDone done) {
  absl::StatusOr<CompleteOutcome> now;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = tasks_.find(task_id);
    if (it == tasks_.end()) {
      now = CompleteOutcome::kDuplicate;
    } else {
      Entry& e = *it->second;
      const TaskRow& row = e.row;
      if (row.lease_id.empty() || row.lease_id != lease_id ||
          row.worker_id != worker_id) {
        now = NotHeld(worker_id, lease_id, task_id);
      } else if (e.finishing) {
        // A retried call while the first is being stored: its outcome.
        e.also_finishing.push_back(std::move(done));
        return;
      } else {
        // Marked under the lock, so a lease that expires meanwhile cannot
        // hand the task to a second worker whose result would race this
        // one; the result is stored before the task's row goes.
        e.finishing = true;
        SubmitLocked(
            {[persist = std::move(persist), row = e.row]() -> absl::Status {
               return persist ? persist(row) : absl::OkStatus();
             },
             [task_id](ServerStore::Batch& b) { return b.DeleteTask(task_id); },
             [this, task_id, lease_id, encoded = std::move(encoded_result),
              done = std::move(done)](absl::Status st) mutable {
               Finished(task_id, lease_id, std::move(st), absl::OkStatus(),
                        encoded, std::move(done));
             }});
        return;
      }
    }
  }
  done(std::move(now));
}

void TaskQueue::Finished(int64_t id, const std::string& lease_id,
                         absl::Status status, absl::Status waiters_status,
                         const std::string& encoded_result, CompleteDone done) {
  std::vector<Waiter> waiters;
  std::vector<CompleteDone> others;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = tasks_.find(id);
    if (it != tasks_.end() && it->second->finishing &&
        it->second->row.lease_id == lease_id) {
      Entry& e = *it->second;
      others = std::move(e.also_finishing);
      e.also_finishing.clear();
      if (status.ok()) {
        waiters = EraseLocked(id);
      } else {
        e.finishing = false;  // still leased: the worker may retry
      }
    }
  }
  if (status.ok()) {
    // Waiters first: whoever completes knows the jobs have heard.
    for (Waiter& w : waiters) w(waiters_status, encoded_result);
    if (done) done(CompleteOutcome::kAccepted);
    for (CompleteDone& o : others) o(CompleteOutcome::kDuplicate);
  } else {
    if (done) done(status);
    for (CompleteDone& o : others) o(status);
  }
}

absl::Status TaskQueue::Fail(const std::string& worker_id,
                             const std::string& lease_id, int64_t task_id,
                             const std::string& error) {
  Await<absl::Status> failed;
  FailAsync(worker_id, lease_id, task_id, error, failed.Callback());
  return failed.Get();
}

void TaskQueue::FailAsync(const std::string& worker_id,
                          const std::string& lease_id, int64_t task_id,
                          const std::string& error,
                          std::function<void(absl::Status)> done) {
  absl::Status now;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = tasks_.find(task_id);
    if (it != tasks_.end()) {
      Entry& e = *it->second;
      if (e.row.lease_id.empty() || e.row.lease_id != lease_id ||
          e.row.worker_id != worker_id) {
        now = NotHeld(worker_id, lease_id, task_id);
      } else if (e.finishing) {
        now = absl::FailedPreconditionError(
            absl::StrCat("task ", task_id, " is being completed under lease '",
                         lease_id, "'; its error was not recorded"));
      } else if (e.row.attempts < options_.max_attempts) {
        return RequeueLocked(task_id, e, std::move(done));
      } else {
        // The last attempt: its waiters fail once the task is gone.
        e.finishing = true;
        SubmitLocked(
            {nullptr,
             [task_id](ServerStore::Batch& b) { return b.DeleteTask(task_id); },
             [this, task_id, lease_id, error,
              done = std::move(done)](absl::Status st) mutable {
               Finished(task_id, lease_id, st, absl::InternalError(error), "",
                        [done = std::move(done)](
                            absl::StatusOr<CompleteOutcome> outcome) {
                          done(outcome.status());
                        });
             }});
        return;
      }
    }
  }
  done(std::move(now));
}

std::vector<int64_t> TaskQueue::ExpireLeases(int64_t now_ms) {
  std::vector<std::pair<int64_t, std::future<absl::Status>>> writes;
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<int64_t> expired;
    for (const auto& [lease_id, id] : by_lease_) {
      const Entry& e = *tasks_[id];
      if (e.row.deadline_ms < now_ms && !e.finishing) expired.push_back(id);
    }
    for (int64_t id : expired) {
      auto written = std::make_shared<std::promise<absl::Status>>();
      writes.emplace_back(id, written->get_future());
      RequeueLocked(id, *tasks_[id], [written](absl::Status st) {
        written->set_value(std::move(st));
      });
    }
  }
  std::vector<int64_t> requeued;
  for (auto& [id, written] : writes) {
    if (written.get().ok()) requeued.push_back(id);
  }
  return requeued;
}

void TaskQueue::ReleaseWorker(const std::string& worker_id) {
  Await<bool> released;
  ReleaseWorkerAsync(worker_id, [cb = released.Callback()] { cb(true); });
  released.Get();
}

void TaskQueue::ReleaseWorkerAsync(const std::string& worker_id,
                                   std::function<void()> done) {
  // Calls `done` when the last write's completion is destroyed.
  auto last = std::shared_ptr<void>(nullptr, [done = std::move(done)](void*) {
    if (done) done();
  });
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<int64_t> held;
  for (const auto& [lease_id, id] : by_lease_) {
    const Entry& e = *tasks_[id];
    if (e.row.worker_id == worker_id && !e.finishing) held.push_back(id);
  }
  // A failed write leaves the lease to expire at its deadline instead.
  for (int64_t id : held) {
    RequeueLocked(id, *tasks_[id], [last](absl::Status) {});
  }
}

void TaskQueue::CancelJob(const std::string& job_id) {
  std::vector<Waiter> cancelled;
  std::vector<std::future<absl::Status>> deletes;
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<int64_t> orphans;
    auto waiting = waiting_by_job_.find(job_id);
    if (waiting != waiting_by_job_.end()) {
      std::set<int64_t> ids = std::move(waiting->second);
      waiting_by_job_.erase(waiting);
      for (int64_t id : ids) {
        Entry& e = *tasks_[id];
        UnqueueLocked(id, e);
        auto keep = std::stable_partition(
            e.waiters.begin(), e.waiters.end(),
            [&](const Entry::Waiting& w) { return w.job_id != job_id; });
        for (auto w = keep; w != e.waiters.end(); ++w) {
          if (w->fn) cancelled.push_back(std::move(w->fn));
        }
        e.waiters.erase(keep, e.waiters.end());
        // Served under the next job that waits, if any.
        QueueLocked(id, e);
        if (e.waiters.empty()) orphans.push_back(id);
      }
    }
    // Tasks of the job loaded by Open that it did not enqueue again.
    for (const auto& [id, e] : tasks_) {
      if (e->waiters.empty() && e->row.job_id == job_id) orphans.push_back(id);
    }
    std::sort(orphans.begin(), orphans.end());
    orphans.erase(std::unique(orphans.begin(), orphans.end()), orphans.end());
    for (int64_t id : orphans) {
      if (tasks_[id]->finishing) continue;  // its completion removes it
      EraseLocked(id);
      auto written = std::make_shared<std::promise<absl::Status>>();
      deletes.push_back(written->get_future());
      SubmitLocked(
          {nullptr, [id](ServerStore::Batch& b) { return b.DeleteTask(id); },
           [written](absl::Status st) { written->set_value(std::move(st)); }});
    }
  }
  absl::Status status =
      absl::CancelledError(absl::StrCat("job ", job_id, " was cancelled"));
  for (Waiter& w : cancelled) w(status, "");
  for (std::future<absl::Status>& d : deletes) d.wait();
}

QueueCounts TaskQueue::Counts() const {
  std::lock_guard<std::mutex> lock(mu_);
  QueueCounts c;
  c.leased = static_cast<int64_t>(by_lease_.size());
  c.queued = static_cast<int64_t>(tasks_.size()) - c.leased;
  return c;
}

QueueCounts TaskQueue::CountsForJob(const std::string& job_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  QueueCounts c;
  auto it = waiting_by_job_.find(job_id);
  if (it == waiting_by_job_.end()) return c;
  for (int64_t id : it->second) {
    if (tasks_.at(id)->leased()) {
      ++c.leased;
    } else {
      ++c.queued;
    }
  }
  return c;
}

}  // namespace autoq::server
