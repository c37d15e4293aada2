// The jobs of the service: validates and stores submitted jobs, runs each
// one's search (search/job_pipeline.h) on a thread of its own against the
// remote workers (through the TaskQueue), publishes its events, and answers
// the job API's queries. Jobs are isolated by owner: a job of another client
// is NOT_FOUND.
//
// Durable state is in the ServerStore (jobs, models) and the ResultStore
// (results, checkpoints, exports); Recover() restarts every job that was
// queued or running when the server stopped, and they continue from their
// last checkpoint with every finished evaluation answered by the cache.
//
// Thread-safety: all methods may be called from any thread at once.
#ifndef AUTOQ_SERVER_JOB_MANAGER_H_
#define AUTOQ_SERVER_JOB_MANAGER_H_

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/autoq.pb.h"
#include "server/event_feed.h"
#include "server/model_check.h"
#include "server/server_store.h"
#include "server/task_queue.h"

namespace autoq::search {
class ResultStore;
}

namespace autoq::server {

struct JobManagerOptions {
  // Largest model a client may upload. Default 512 MiB; clamped to
  // [1 KiB, 2 GiB - 1] (an SQLite blob's limit).
  int64_t max_model_bytes = int64_t{512} << 20;
  // Jobs a client may have queued or running at once. Default 4; clamped to
  // [1, 10000].
  int max_active_jobs_per_client = 4;
  // How uploaded models are loaded and analyzed: apart from the server, in
  // a child with limits, when model_check.analyzer is set.
  ModelCheckOptions model_check;
  // A job whose writes fail because the database's disk is full waits this
  // long, then resumes from its last checkpoint (its finished evaluations
  // come from the cache), until there is space again. Default 5000 ms;
  // clamped to [10, 600000].
  int disk_full_retry_ms = 5000;
  // Log lines (job accepted, finished, failed); null: silent.
  std::FILE* log = stderr;
};

class JobManager {
 public:
  // The stores and the queue must outlive the manager.
  JobManager(ServerStore* store, search::ResultStore* results,
             TaskQueue* queue, JobManagerOptions options);
  ~JobManager();  // Shutdown() and joins the job threads
  JobManager(const JobManager&) = delete;
  JobManager& operator=(const JobManager&) = delete;

  // Counts this server start in the store, then restarts every stored job
  // that is queued or running. Call once, before serving.
  absl::Status Recover();

  // Validates (spec, model size, TorchScript, layers), stores the model and
  // the job, and starts it. INVALID_ARGUMENT (nothing stored) for a bad
  // spec or model; RESOURCE_EXHAUSTED over the client's job limit;
  // UNAVAILABLE after Shutdown. `warnings` gets the spec's warnings.
  absl::StatusOr<JobStatus> Submit(const std::string& owner,
                                   const JobSpec& spec,
                                   const std::string& model_bytes,
                                   std::vector<std::string>* warnings);

  absl::StatusOr<JobStatus> Get(const std::string& owner,
                                const std::string& job_id);
  absl::StatusOr<std::vector<JobStatus>> List(const std::string& owner);
  // Cancels a queued or running job; a job that already ended is returned
  // as it is.
  absl::StatusOr<JobStatus> Cancel(const std::string& owner,
                                   const std::string& job_id);
  absl::StatusOr<JobResults> Results(const std::string& owner,
                                     const std::string& job_id);
  // The bytes of a finished job's artifact `name` (as listed by Results).
  absl::StatusOr<std::string> Artifact(const std::string& owner,
                                       const std::string& job_id,
                                       const std::string& name);
  // The job's event history and live events.
  absl::StatusOr<std::shared_ptr<EventFeed>> Feed(const std::string& owner,
                                                  const std::string& job_id);

  // Tells the running jobs' watchers that a worker joined or left.
  void BroadcastWorker(const WorkerChange& change);

  // Jobs whose thread runs now: while one does, more tasks come soon.
  int Running() const { return running_.load(); }

  // Stops taking jobs and stops the job threads where they wait, without
  // changing their stored state: a restarted server continues them.
  void Shutdown();

  struct Job;  // defined in job_manager.cc

 private:
  absl::StatusOr<std::shared_ptr<Job>> Find(const std::string& owner,
                                            const std::string& job_id);
  void Start(const std::shared_ptr<Job>& job);
  void RunJobThread(std::shared_ptr<Job> job);
  JobStatus StatusOf(const Job& job) const;

  ServerStore* store_;
  search::ResultStore* results_;
  TaskQueue* queue_;
  JobManagerOptions options_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> running_{0};  // job threads not yet returned
  // Sequence number of each job feed's first event; set by Recover, which
  // runs while the server already listens (hence atomic).
  std::atomic<int64_t> first_seq_{1};
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Job>> jobs_;  // guarded by mu_
  std::vector<std::thread> threads_;                  // guarded by mu_
};

}  // namespace autoq::server

#endif  // AUTOQ_SERVER_JOB_MANAGER_H_
