// The task loop of `autoq-worker`: one process per device that pulls
// evaluation tasks from the server's WorkerService and runs them.
//
//   register -> lease -> (fetch the model by hash unless cached) -> run the
//   task on a task thread while this thread heartbeats the lease -> complete
//   -> lease again ... -> unregister
//
// The server going away is the normal case (restarts, rolling updates):
// every call that fails because the server is unreachable is retried with
// exponential backoff and jitter, and a finished result is held until the
// server takes it, since the server keeps leases across restarts. A server
// that lost this worker (NOT_FOUND) gets a fresh registration. A wrong token
// (UNAUTHENTICATED) or a refused registration ends the loop with that error:
// it never fixes itself.
//
// Thread-safety: Create from any thread; Run once, from one thread. `stop`
// may be set from any thread or a signal handler.
#ifndef AUTOQ_EVALUATOR_WORKER_H_
#define AUTOQ_EVALUATOR_WORKER_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace autoq::evaluator {

struct WorkerOptions {
  // The server's address, "host:port". Required unless server_file is set.
  std::string server;
  // A file whose first line is the server's "host:port" (what
  // deploy/slurm's server job writes). Read by Create when `server` is
  // empty, and again each time the server is away, so a server that comes
  // back on another node is found without restarting the worker. Default
  // empty: the address is fixed.
  std::string server_file;
  // The device the tasks run on: "cpu" or "cuda:N". Default "cpu"; must
  // exist on this machine.
  std::string device = "cpu";
  // The worker token (the token itself, not its file). Required.
  std::string token;
  // How the server shows this worker to people. Default: the host name.
  std::string name;
  // Fetched models, one file per SHA-256, written atomically and verified
  // by hash when read. Default: $XDG_CACHE_HOME/autoq/models, else
  // $HOME/.cache/autoq/models.
  std::string model_cache_dir;
  // PEM file of the CA that signed the server's certificate; empty: plain
  // TCP.
  std::string tls_ca_file;
  // LibTorch intra-op threads, set process-wide by Run; 0 (default): one
  // per core. Clamped to >= 0.
  int threads = 0;
  // No-op evaluator, for testing the service alone: never fetches a model
  // or reads a dataset; answers each task at once with a deterministic
  // synthetic result computed from its bits (see worker.cc).
  bool noop = false;
  // Leave after this many tasks (completed, failed or abandoned); 0
  // (default): no limit. Clamped to >= 0.
  int64_t max_tasks = 0;
  // Wait between attempts while the server is away: doubles from
  // backoff_min up to backoff_max, each wait drawn in [1/2, 1] of the
  // current value so workers restarted together spread out. Defaults 200 ms
  // and 10 s; backoff_min is clamped to [1 ms, 60 s], backoff_max to
  // [backoff_min, 10 min].
  std::chrono::milliseconds backoff_min{200};
  std::chrono::milliseconds backoff_max{10000};
  // Deadline of each unary call. Default 30 s; clamped to [100 ms, 10 min].
  std::chrono::milliseconds rpc_timeout{30000};
  // Deadline of one model download. Default 10 min; clamped to
  // [rpc_timeout, 1 day].
  std::chrono::milliseconds fetch_timeout{600000};
  // One line per task and per connection change; nullptr: silent. Default
  // stderr.
  std::FILE* log = stderr;
};

// Values of Run's `stop`.
inline constexpr int kKeepRunning = 0;
inline constexpr int kFinishAndLeave = 1;   // finish the current task
inline constexpr int kAbandonAndLeave = 2;  // drop the current task now

// Where a Worker's wall time went, in seconds. The task phases add up the
// tasks' own QatResult times; the rest is measured by the worker.
struct WorkerTimes {
  double wall = 0;          // Run, from start to leaving
  double train = 0;         // training steps
  double val = 0;           // validation passes
  double calibration = 0;   // activation calibration before training
  double test = 0;          // test passes of final and float tasks
  double prepare = 0;       // per-task model preparation
  double export_model = 0;  // exports of final tasks
  double task_other = 0;    // the rest of running tasks (data, bookkeeping)
  double job_setup = 0;     // once per job: model fetch, dataset, analysis
  double rpc = 0;           // register, lease and complete calls
  double idle = 0;          // waiting: no task queued, or the server away
};

// Counts of the tasks a Worker has handled.
struct WorkerStats {
  int64_t completed = 0;  // a result the server accepted (or had already)
  int64_t failed = 0;     // reported to the server as an error
  int64_t abandoned = 0;  // lease lost, stop, or a result the server refused
  int64_t registrations = 0;
  int64_t model_fetches = 0;
  WorkerTimes times;
};

// One line: tasks, wall time, the share in training + validation passes,
// then each phase, e.g. "12 tasks, wall 80.1 s, training+validation
// 70.2 s (87.6%): train 55.0 s, val 15.2 s, ...".
std::string FormatWorkerSummary(const WorkerStats& stats);

class Worker {
 public:
  // Checks `options` (an address or a readable server_file, a token, a
  // device valid here) and clamps them. Connects lazily, in Run.
  static absl::StatusOr<std::unique_ptr<Worker>> Create(WorkerOptions options);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Serves tasks until `stop` becomes kFinishAndLeave (after the current
  // task) or kAbandonAndLeave (at once; the current task's lease is given
  // back by unregistering), or max_tasks tasks are done; then unregisters.
  // Returns OK then. Fails with UNAUTHENTICATED or PERMISSION_DENIED when
  // the server refuses the token, and with the server's error when it
  // refuses the registration itself (INVALID_ARGUMENT, UNIMPLEMENTED).
  absl::Status Run(const std::atomic<int>& stop);

  // Counts so far; meant for after Run.
  WorkerStats stats() const;
  const WorkerOptions& options() const;

 private:
  class Impl;  // keeps gRPC and LibTorch out of this header
  explicit Worker(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The first line of `path` as "host:port", trimmed. NOT_FOUND when the file
// cannot be read, INVALID_ARGUMENT when it holds no address.
absl::StatusOr<std::string> ReadServerAddressFile(const std::string& path);

// $XDG_CACHE_HOME/autoq/models, else $HOME/.cache/autoq/models, else
// ./.autoq-cache/models.
std::string DefaultModelCacheDir();

}  // namespace autoq::evaluator

#endif  // AUTOQ_EVALUATOR_WORKER_H_
