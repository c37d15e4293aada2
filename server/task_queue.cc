#include "server/task_queue.h"

#include <algorithm>
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

}  // namespace

struct TaskQueue::Entry {
  struct Waiting {
    std::string job_id;
    Waiter fn;
  };

  bool leased() const { return !row.lease_id.empty(); }

  TaskRow row;  // as stored
  // In Enqueue order; the first one's job is the one the task is served
  // under. Empty for a task loaded by Open that no job enqueued since.
  std::vector<Waiting> waiters;
};

TaskQueue::TaskQueue(ServerStore* store, TaskQueueOptions options)
    : store_(store), options_(options) {
  std::random_device rd;
  std::seed_seq seed{rd(), rd(), rd(), rd(), rd(), rd(), rd(), rd()};
  rng_.seed(seed);
}

TaskQueue::~TaskQueue() = default;

absl::StatusOr<std::unique_ptr<TaskQueue>> TaskQueue::Open(
    ServerStore* store, TaskQueueOptions options, int64_t now_ms) {
  if (store == nullptr) {
    return absl::InvalidArgumentError("task queue needs a server store");
  }
  options.lease_ms = std::clamp(options.lease_ms, kMinLeaseMs, kMaxLeaseMs);
  options.max_attempts = std::clamp(options.max_attempts, 1, kMaxAttempts);
  options.restart_grace_ms =
      std::clamp<int64_t>(options.restart_grace_ms, 0, kMaxLeaseMs);
  std::unique_ptr<TaskQueue> queue(new TaskQueue(store, options));

  ASSIGN_OR_RETURN(std::vector<TaskRow> rows, store->ListTasks());
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
  return queue;
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

absl::Status TaskQueue::RequeueLocked(int64_t id, Entry& e) {
  RETURN_IF_ERROR(store_->ClearLease(id));
  by_lease_.erase(e.row.lease_id);
  e.row.lease_id.clear();
  e.row.worker_id.clear();
  e.row.deadline_ms = 0;
  QueueLocked(id, e);
  return absl::OkStatus();
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
      return EnqueueLocked(spec, std::move(waiter));
    }
  }
  if (waiter) waiter(absl::OkStatus(), *finished);
  return absl::OkStatus();
}

absl::Status TaskQueue::EnqueueLocked(const TaskSpec& spec, Waiter waiter) {
  int64_t id;
  auto found = by_key_.find(spec.key);
  if (found != by_key_.end()) {
    id = found->second;
  } else {
    TaskRow row;
    row.key = spec.key;
    row.job_id = spec.job_id;
    row.stage = spec.stage;
    row.wbits = spec.wbits;
    row.abits = spec.abits;
    ASSIGN_OR_RETURN(row.task_id, store_->InsertTask(row));
    id = row.task_id;
    auto entry = std::make_unique<Entry>();
    entry->row = std::move(row);
    tasks_[id] = std::move(entry);
    by_key_[spec.key] = id;
  }
  Entry& e = *tasks_[id];
  // The first waiter decides the FIFO; re-filing keeps that true when a
  // loaded task gets its first waiter.
  UnqueueLocked(id, e);
  e.waiters.push_back({spec.job_id, std::move(waiter)});
  QueueLocked(id, e);
  waiting_by_job_[spec.job_id].insert(id);
  return absl::OkStatus();
}

absl::StatusOr<std::optional<Lease>> TaskQueue::LeaseNext(
    const std::string& worker_id, int64_t now_ms) {
  if (worker_id.empty()) {
    return absl::InvalidArgumentError("lease request without a worker id");
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (queued_by_job_.empty()) return std::optional<Lease>();
  // Round robin: the first job after the last one served, wrapping around.
  auto job = queued_by_job_.upper_bound(last_job_);
  if (job == queued_by_job_.end()) job = queued_by_job_.begin();
  const int64_t id = *job->second.begin();
  Entry& e = *tasks_[id];

  Lease lease;
  lease.lease_id = NewLeaseIdLocked();
  lease.deadline_ms = now_ms + options_.lease_ms;
  const int attempts = e.row.attempts + 1;
  RETURN_IF_ERROR(store_->SetLease(id, lease.lease_id, worker_id,
                                   lease.deadline_ms, attempts));
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
  return std::optional<Lease>(std::move(lease));
}

absl::StatusOr<int64_t> TaskQueue::Heartbeat(
    const std::string& worker_id, const std::vector<std::string>& lease_ids,
    int64_t now_ms, std::vector<std::string>* lost) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<int64_t> held;
  std::vector<std::string> gone;
  for (const std::string& lease_id : lease_ids) {
    auto it = by_lease_.find(lease_id);
    if (it != by_lease_.end() &&
        tasks_[it->second]->row.worker_id == worker_id) {
      held.push_back(it->second);
    } else {
      gone.push_back(lease_id);
    }
  }
  const int64_t deadline = now_ms + options_.lease_ms;
  RETURN_IF_ERROR(store_->SetDeadlines(held, deadline));
  for (int64_t id : held) tasks_[id]->row.deadline_ms = deadline;
  if (lost != nullptr) *lost = std::move(gone);
  return deadline;
}

absl::StatusOr<TaskQueue::CompleteOutcome> TaskQueue::Complete(
    const std::string& worker_id, const std::string& lease_id, int64_t task_id,
    const std::string& encoded_result,
    const std::function<absl::Status(const TaskRow& task)>& persist) {
  std::vector<Waiter> waiters;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = tasks_.find(task_id);
    if (it == tasks_.end()) return CompleteOutcome::kDuplicate;
    const TaskRow& row = it->second->row;
    if (row.lease_id.empty() || row.lease_id != lease_id ||
        row.worker_id != worker_id) {
      return NotHeld(worker_id, lease_id, task_id);
    }
    // Under the lock, so a lease that expires meanwhile cannot hand the
    // task to a second worker whose result would race this one.
    if (persist) RETURN_IF_ERROR(persist(row));
    RETURN_IF_ERROR(store_->DeleteTask(task_id));
    waiters = EraseLocked(task_id);
  }
  for (Waiter& w : waiters) w(absl::OkStatus(), encoded_result);
  return CompleteOutcome::kAccepted;
}

absl::Status TaskQueue::Fail(const std::string& worker_id,
                             const std::string& lease_id, int64_t task_id,
                             const std::string& error) {
  std::vector<Waiter> waiters;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = tasks_.find(task_id);
    if (it == tasks_.end()) return absl::OkStatus();
    Entry& e = *it->second;
    if (e.row.lease_id.empty() || e.row.lease_id != lease_id ||
        e.row.worker_id != worker_id) {
      return NotHeld(worker_id, lease_id, task_id);
    }
    if (e.row.attempts < options_.max_attempts) {
      return RequeueLocked(task_id, e);
    }
    RETURN_IF_ERROR(store_->DeleteTask(task_id));
    waiters = EraseLocked(task_id);
  }
  for (Waiter& w : waiters) w(absl::InternalError(error), "");
  return absl::OkStatus();
}

std::vector<int64_t> TaskQueue::ExpireLeases(int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<int64_t> expired;
  for (const auto& [lease_id, id] : by_lease_) {
    if (tasks_[id]->row.deadline_ms < now_ms) expired.push_back(id);
  }
  std::vector<int64_t> requeued;
  for (int64_t id : expired) {
    if (RequeueLocked(id, *tasks_[id]).ok()) requeued.push_back(id);
  }
  return requeued;
}

void TaskQueue::ReleaseWorker(const std::string& worker_id) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<int64_t> held;
  for (const auto& [lease_id, id] : by_lease_) {
    if (tasks_[id]->row.worker_id == worker_id) held.push_back(id);
  }
  // A failed write leaves the lease to expire at its deadline instead.
  for (int64_t id : held) RequeueLocked(id, *tasks_[id]).IgnoreError();
}

void TaskQueue::CancelJob(const std::string& job_id) {
  std::vector<Waiter> cancelled;
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
      // Not deleted from the store: stays in memory too, unserved.
      if (store_->DeleteTask(id).ok()) EraseLocked(id);
    }
  }
  absl::Status status =
      absl::CancelledError(absl::StrCat("job ", job_id, " was cancelled"));
  for (Waiter& w : cancelled) w(status, "");
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
