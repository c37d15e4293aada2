// The soak's worker process: a no-op autoq-worker that logs every lease and
// the outcome of its completion (see soak.h for the log format). It
// behaves as the real worker does where the soak's faults reach it: every
// call has a deadline, calls that fail in transit are retried with
// backoff (the server may be restarting), an id the server no longer
// knows is registered again, and leases are heartbeated while held.
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/flags.h"
#include "common/rpc_util.h"
#include "evaluator/task.h"
#include "proto/autoq.grpc.pb.h"
#include "server/test_noop_completion.h"
#include "tests/soak/soak.h"

namespace autoq::soak {

int64_t MonoMs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

namespace {

// Set by SIGTERM: finish the task in hand, unregister, exit 0.
std::atomic<bool> g_stop{false};

void OnTerm(int) { g_stop.store(true); }

// Sleeps `ms`, in short steps so SIGTERM is noticed; false once stopping.
bool Nap(int64_t ms) {
  const int64_t until = MonoMs() + ms;
  while (!g_stop.load()) {
    const int64_t left = until - MonoMs();
    if (left <= 0) return true;
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::min<int64_t>(left, 20)));
  }
  return false;
}

// The worker's event log. One write() per line on an O_APPEND descriptor:
// what was written survives a SIGKILL, whole.
class EventLog {
 public:
  absl::Status Open(const std::string& path) {
    fd_ = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0)
      return absl::InternalError(absl::StrCat(path, ": cannot open"));
    return absl::OkStatus();
  }
  void Line(const std::string& text) {
    const std::string line = absl::StrCat(MonoMs(), " ", text, "\n");
    std::lock_guard<std::mutex> lock(mu_);
    // A short write on a local file means a full disk: nothing to do
    // about it here, and the orchestrator's checks will say so.
    (void)!write(fd_, line.data(), line.size());
  }

 private:
  std::mutex mu_;
  int fd_ = -1;
};

// `text` on one log line.
std::string OneLine(std::string text) {
  std::replace(text.begin(), text.end(), '\n', ' ');
  return text;
}

// Exponential backoff between retries of a call the server did not answer.
class Backoff {
 public:
  int64_t Next() {
    const int64_t ms = ms_;
    ms_ = std::min<int64_t>(ms_ * 2, 1000);
    return ms;
  }
  void Reset() { ms_ = 50; }

 private:
  int64_t ms_ = 50;
};

class NoopWorker {
 public:
  NoopWorker(std::shared_ptr<grpc::Channel> channel, std::string token,
             std::string name, int slow_ms, EventLog* log)
      : stub_(WorkerService::NewStub(std::move(channel))),
        token_(std::move(token)),
        name_(std::move(name)),
        slow_ms_(slow_ms),
        log_(log) {}

  int Run() {
    if (!Register()) return Finish();
    std::thread heartbeats([this] { HeartbeatLoop(); });
    Backoff backoff;
    int exit_code = 0;
    while (!g_stop.load()) {
      LeaseTaskRequest request;
      request.set_worker_id(WorkerId());
      request.set_device("cpu");
      LeaseTaskResponse lease;
      grpc::ClientContext ctx;
      PrepareContext(&ctx, token_, std::chrono::seconds(3));
      const int64_t sent = MonoMs();
      const grpc::Status st = stub_->LeaseTask(&ctx, request, &lease);
      if (!st.ok()) {
        if (st.error_code() == grpc::StatusCode::NOT_FOUND) {
          // Dropped by the server (silent for a lease period: stopped).
          if (!Register()) break;
          continue;
        }
        if (IsFatal(st.error_code())) {
          exit_code = Fatal("LeaseTask", st);
          break;
        }
        if (!Nap(backoff.Next())) break;
        continue;
      }
      backoff.Reset();
      if (!lease.has_task()) {
        if (!Nap(std::max(1, lease.retry_after_ms()))) break;
        continue;
      }
      const Task& task = lease.task();
      log_->Line(absl::StrCat("lease ", task.task_id(), " ", task.key(), " ",
                              task.job_id(), " ", TaskStage_Name(task.stage()),
                              " ", sent));
      SetHeld(lease.lease_id());
      // The --slow-ms pause stands for the computation: a stop or a kill
      // then finds the worker holding a lease, as a real one mostly is.
      if (slow_ms_ > 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(slow_ms_));
      }
      CompleteTaskRequest done =
          server::test_util::NoopCompletion(request.worker_id(), lease);
      Complete(done);
      SetHeld("");
    }
    stop_heartbeats_.store(true);
    heartbeats.join();
    {
      grpc::ClientContext ctx;
      PrepareContext(&ctx, token_, std::chrono::seconds(2));
      UnregisterWorkerRequest request;
      request.set_worker_id(WorkerId());
      UnregisterWorkerResponse response;
      (void)stub_->UnregisterWorker(&ctx, request, &response);
    }
    return exit_code != 0 ? exit_code : Finish();
  }

 private:
  static bool IsFatal(grpc::StatusCode code) {
    return code == grpc::StatusCode::UNAUTHENTICATED ||
           code == grpc::StatusCode::PERMISSION_DENIED;
  }

  int Fatal(const char* call, const grpc::Status& st) {
    std::fprintf(stderr, "soak worker %s: %s: %s\n", name_.c_str(), call,
                 st.error_message().c_str());
    return 3;
  }

  int Finish() {
    log_->Line("exit");
    return 0;
  }

  // Registers, retrying while the server is away; false when stopped first.
  bool Register() {
    Backoff backoff;
    while (!g_stop.load()) {
      RegisterWorkerRequest request;
      request.set_name(name_);
      request.add_devices("cpu");
      request.set_version("autoq_soak");
      RegisterWorkerResponse response;
      grpc::ClientContext ctx;
      PrepareContext(&ctx, token_, std::chrono::seconds(3));
      const grpc::Status st = stub_->RegisterWorker(&ctx, request, &response);
      if (st.ok()) {
        {
          std::lock_guard<std::mutex> lock(mu_);
          worker_id_ = response.worker_id();
          heartbeat_ms_ = 1000 * std::max(1, response.heartbeat_seconds());
        }
        log_->Line(absl::StrCat("register ", response.worker_id()));
        return true;
      }
      if (IsFatal(st.error_code())) {
        Fatal("RegisterWorker", st);
        std::_Exit(3);
      }
      if (!Nap(backoff.Next())) return false;
    }
    return false;
  }

  // Sends the completion until the server answers it; logs each try. A
  // SIGTERM lets the call in flight finish, and ends the retries.
  void Complete(const CompleteTaskRequest& request) {
    Backoff backoff;
    const int64_t give_up = MonoMs() + 60000;
    const std::string& id = request.task_id();
    while (true) {
      CompleteTaskResponse response;
      grpc::ClientContext ctx;
      PrepareContext(&ctx, token_, std::chrono::seconds(5));
      const grpc::Status st = stub_->CompleteTask(&ctx, request, &response);
      if (st.ok()) {
        log_->Line(absl::StrCat(response.duplicate() ? "dup " : "done ", id));
        return;
      }
      const int code = static_cast<int>(st.error_code());
      if (!IsTransient(st.error_code())) {
        log_->Line(absl::StrCat("rejected ", id, " ", code, " ",
                                OneLine(st.error_message())));
        return;
      }
      // The message last, for a reader: the checks read the code only.
      log_->Line(absl::StrCat("rpcfail ", id, " ", code, " ",
                              OneLine(st.error_message())));
      // Stopped (the soak ends only once every job has: the task was done
      // by another worker) or the server is gone for good.
      if (g_stop.load() || MonoMs() > give_up) {
        log_->Line(absl::StrCat("abandoned ", id));
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(backoff.Next()));
    }
  }

  // Heartbeats the lease in hand, as autoq-worker does, so a lease expires
  // only when the worker really went silent (stopped or killed).
  void HeartbeatLoop() {
    int64_t next = MonoMs();
    while (!stop_heartbeats_.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      std::string worker_id, lease_id;
      int64_t period = 1000;
      {
        std::lock_guard<std::mutex> lock(mu_);
        worker_id = worker_id_;
        lease_id = held_;
        period = heartbeat_ms_;
      }
      if (MonoMs() < next) continue;
      next = MonoMs() + period;
      if (lease_id.empty()) continue;
      HeartbeatRequest request;
      request.set_worker_id(worker_id);
      request.add_lease_ids(lease_id);
      HeartbeatResponse response;
      grpc::ClientContext ctx;
      PrepareContext(&ctx, token_, std::chrono::seconds(2));
      // Outcomes do not matter here: a lost lease shows in the completion.
      (void)stub_->Heartbeat(&ctx, request, &response);
    }
  }

  std::string WorkerId() {
    std::lock_guard<std::mutex> lock(mu_);
    return worker_id_;
  }
  void SetHeld(const std::string& lease_id) {
    std::lock_guard<std::mutex> lock(mu_);
    held_ = lease_id;
  }

  std::unique_ptr<WorkerService::Stub> stub_;
  const std::string token_;
  const std::string name_;
  const int slow_ms_;
  EventLog* const log_;
  std::atomic<bool> stop_heartbeats_{false};
  std::mutex mu_;
  std::string worker_id_;        // guarded by mu_
  std::string held_;             // guarded by mu_: lease in hand, or empty
  int64_t heartbeat_ms_ = 1000;  // guarded by mu_
};

}  // namespace

int WorkerMain(int argc, char** argv) {
  // First: the orchestrator may stop a worker as soon as its log has its
  // "start" line.
  struct sigaction action {};
  action.sa_handler = OnTerm;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);
  FlagSpec spec;
  spec.with_value = {"target", "token-file", "log", "name", "slow-ms"};
  spec.boolean = {"worker"};
  absl::StatusOr<Flags> flags = Flags::Parse(argc, argv, 1, spec);
  if (!flags.ok()) {
    std::fprintf(stderr, "soak worker: %s\n",
                 std::string(flags.status().message()).c_str());
    return 2;
  }
  absl::StatusOr<int64_t> slow_ms = flags->GetInt("slow-ms", 0);
  absl::StatusOr<std::string> token = ReadTokenFile(flags->Get("token-file"));
  if (!slow_ms.ok() || !token.ok() || !flags->Has("target") ||
      !flags->Has("log")) {
    std::fprintf(stderr, "soak worker: bad arguments\n");
    return 2;
  }

  EventLog log;
  absl::Status opened = log.Open(flags->Get("log"));
  if (!opened.ok()) {
    std::fprintf(stderr, "soak worker: %s\n",
                 std::string(opened.message()).c_str());
    return 2;
  }
  log.Line(absl::StrCat("start ", getpid()));
  ChannelOptions channel;
  channel.target = flags->Get("target");
  absl::StatusOr<std::shared_ptr<grpc::Channel>> ch = MakeChannel(channel);
  if (!ch.ok()) return 2;
  NoopWorker worker(*ch, *token, flags->Get("name", "soak-worker"),
                    static_cast<int>(*slow_ms), &log);
  return worker.Run();
}

}  // namespace autoq::soak
