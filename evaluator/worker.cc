#include "evaluator/worker.h"

#include <ATen/Parallel.h>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/file_util.h"
#include "common/rpc_util.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "evaluator/completion.h"
#include "evaluator/model_cache.h"
#include "evaluator/task_codec.h"
#include "evaluator/task_runner.h"
#include "evaluator/task_thread.h"
#include "evaluator/worker_job.h"
#include "proto/autoq.grpc.pb.h"
#include "proto/autoq.pb.h"
#include "qat/device.h"

namespace autoq::evaluator {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr char kVersion[] = "autoq-worker/1";
// How often waits look at `stop` and at a running task.
constexpr milliseconds kPollInterval{20};

double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

template <typename T>
T Clamp(T v, T lo, T hi) {
  return std::max(lo, std::min(v, hi));
}

bool IsAuthError(grpc::StatusCode code) {
  return code == grpc::StatusCode::UNAUTHENTICATED ||
         code == grpc::StatusCode::PERMISSION_DENIED;
}

// Waits `d`, or less when `done` turns true first. Returns !done().
bool SleepUnless(milliseconds d, const std::function<bool()>& done) {
  const auto end = Clock::now() + d;
  while (!done()) {
    const auto now = Clock::now();
    if (now >= end) return true;
    std::this_thread::sleep_for(
        std::min<Clock::duration>(end - now, kPollInterval));
  }
  return false;
}

// Exponential backoff with jitter: each wait is drawn in [1/2, 1] of a
// value that doubles from `min` to `max`.
class Backoff {
 public:
  Backoff(milliseconds min, milliseconds max)
      : min_(min), max_(max), rng_(std::random_device{}()) {}
  milliseconds Next() {
    current_ = current_.count() == 0 ? min_ : std::min(current_ * 2, max_);
    std::uniform_int_distribution<int64_t> jitter(current_.count() / 2,
                                                  current_.count());
    return milliseconds(jitter(rng_));
  }
  void Reset() { current_ = milliseconds(0); }

 private:
  milliseconds min_, max_;
  milliseconds current_{0};
  std::mt19937_64 rng_;
};

std::string HostName() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0 || buf[0] == '\0') {
    return "worker";
  }
  return buf;
}

// A task's stage for log lines, whatever the server sent.
const char* TaskStageName(int stage) {
  absl::StatusOr<Stage> s = FromProtoStage(stage);
  return s.ok() ? StageName(*s) : "unknown-stage";
}

// "task T (job J) STAGE BITS", how log lines name a task.
std::string TaskTitle(const autoq::Task& task, const std::string& bits) {
  return absl::StrCat("task ", task.task_id(), " (job ", task.job_id(), ") ",
                      TaskStageName(task.stage()), bits.empty() ? "" : " ",
                      bits);
}

// Fills `request` with the task's outcome; returns its summary for the log.
std::string CompletionRequest(const autoq::LeaseTaskResponse& lease,
                              const EvalTask& eval,
                              const absl::StatusOr<EvalRecord>& result,
                              const std::string& who,
                              autoq::CompleteTaskRequest* request) {
  request->set_lease_id(lease.lease_id());
  request->set_task_id(lease.task().task_id());
  if (!result.ok()) {
    request->set_error(absl::StrCat(who, ": ", result.status().message()));
    return absl::StrCat("error: ", result.status().message());
  }
  const EvalRecord& r = *result;
  request->mutable_result()->ParseFromString(EncodeRecord(r, eval.bits));
  for (const auto& [name, data] : r.artifacts) {
    autoq::NamedBytes* a = request->add_artifacts();
    a->set_name(name);
    a->set_data(data);
  }
  std::string summary = absl::StrFormat("val %.2f%%", r.qat.best_val_top1);
  if (r.qat.test_top1 >= 0) {
    absl::StrAppendFormat(&summary, " test %.2f%%", r.qat.test_top1);
  }
  absl::StrAppendFormat(&summary, " %.1f KB", r.qat.size_bytes / 1024.0);
  if (!r.artifacts.empty()) {
    absl::StrAppend(&summary, ", ", r.artifacts.size(), " exports");
  }
  return summary;
}

absl::StatusOr<EvalTask> ToEvalTask(const autoq::Task& task) {
  EvalTask eval;
  eval.key = task.key();
  absl::StatusOr<Stage> stage = FromProtoStage(task.stage());
  if (!stage.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("task ", task.task_id(), ": ", stage.status().message()));
  }
  eval.stage = *stage;
  if (task.abits_size() != task.wbits_size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("task ", task.task_id(), " has ", task.wbits_size(),
                     " weight bit-widths but ", task.abits_size(),
                     " activation bit-widths"));
  }
  for (int i = 0; i < task.wbits_size(); ++i) {
    eval.bits.push_back(qat::LayerBits{task.wbits(i), task.abits(i)});
  }
  return eval;
}

// The no-op evaluator's answer: a pure function of the stage and the bits,
// shaped like a real result so the service can be tested end to end
// without training. Layer i stands for 1024·(i+1) weights; fewer bits
// cost accuracy quadratically, more in later layers.
EvalRecord NoopRecord(const EvalTask& task) {
  EvalRecord r;
  double val = 90.0;
  int64_t size = 0, bops = 0;
  for (size_t i = 0; i < task.bits.size(); ++i) {
    const qat::LayerBits& b = task.bits[i];
    const double w = 8 - std::min(b.wbits, 8);
    const double a = b.abits == 0 ? 0 : 8 - std::min(b.abits, 8);
    val -= 0.05 * (w * w + 0.5 * a * a) * (1.0 + static_cast<double>(i % 3));
    const int64_t weights = 1024 * static_cast<int64_t>(i + 1);
    size += (weights * b.wbits + 7) / 8 + 4;  // + a float scale
    bops += weights * 16 * b.wbits * (b.abits == 0 ? 32 : b.abits);
  }
  val = std::max(val, 10.0);
  qat::QatResult& q = r.qat;
  q.best_val_top1 = val;
  q.final_val_top1 = val;
  q.best_epoch = 0;
  q.test_top1 = task.stage == Stage::kSearch ? -1.0 : val - 0.5;
  q.size_bytes = size;
  q.bops = bops;
  qat::EpochStats epoch;
  epoch.val_top1 = val;
  epoch.acts_quantized = !task.bits.empty();
  q.curve.push_back(epoch);
  r.device = "noop";
  if (task.stage == Stage::kSensitivity) {
    // The same shape as above: a layer's loss grows with the square of the
    // bits it loses, more in later layers.
    qat::SensitivityTable t;
    t.reference_loss = 0.3;
    t.reference_top1 = 90.0;
    t.images = 1;
    for (size_t i = 0; i < task.bits.size(); ++i) {
      t.layers.push_back(absl::StrCat("layer", i));
      t.loss.emplace_back();
      t.top1.emplace_back();
      for (int b = t.min_bits; b <= t.max_bits; ++b) {
        const double pp = 0.05 * (8 - b) * (8 - b) * (1.0 + i % 3);
        t.loss.back().push_back(t.reference_loss + 0.01 * pp);
        t.top1.back().push_back(90.0 - pp);
      }
    }
    r.sensitivity = std::move(t);
  }
  if (task.stage == Stage::kFinal) {
    std::string bits = qat::FormatBits(task.bits);
    r.artifacts.emplace_back(kTorchScriptArtifact,
                             absl::StrCat("noop model ", bits, "\n"));
    std::string packed;
    for (const qat::LayerBits& b : task.bits) {
      packed.push_back(static_cast<char>(b.wbits));
    }
    r.artifacts.emplace_back(kPackedArtifact, std::move(packed));
    r.artifacts.emplace_back(
        kManifestArtifact,
        absl::StrCat("{\"noop\": true, \"bits\": \"", bits, "\"}\n"));
  }
  return r;
}

}  // namespace

std::string DefaultModelCacheDir() {
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  if (xdg != nullptr && xdg[0] == '/') {
    return absl::StrCat(xdg, "/autoq/models");
  }
  const char* home = std::getenv("HOME");
  if (home != nullptr && home[0] != '\0') {
    return absl::StrCat(home, "/.cache/autoq/models");
  }
  return ".autoq-cache/models";
}

class Worker::Impl {
 public:
  Impl(WorkerOptions options, c10::Device device,
       std::unique_ptr<autoq::WorkerService::Stub> stub)
      : options_(std::move(options)),
        device_(device),
        server_(options_.server),
        stub_(std::move(stub)),
        model_cache_(options_.model_cache_dir,
                     [this](const std::string& line) { Log(line); }) {}

  absl::Status Run(const std::atomic<int>& stop);

  WorkerStats stats() const {
    std::lock_guard<std::mutex> lock(stats_mu_);
    return stats_;
  }
  const WorkerOptions& options() const { return options_; }

 private:
  enum class Ending { kDone, kLeaseLost, kStopped, kFatal };

  void Log(const std::string& line) const;
  void Connected();
  void Disconnected(const grpc::Status& status, const char* call);
  // Where calls go now; any thread. A Stub is thread-safe; holding the
  // shared_ptr keeps it alive across a switch to a new address.
  std::shared_ptr<autoq::WorkerService::Stub> stub() const {
    std::lock_guard<std::mutex> lock(server_mu_);
    return stub_;
  }
  std::string server() const {
    std::lock_guard<std::mutex> lock(server_mu_);
    return server_;
  }
  // Worker thread: re-reads options_.server_file and, when it names another
  // address, sends every later call there.
  void FollowServerFile();
  absl::Status RpcError(const char* call, const grpc::Status& status) const;
  void Count(int64_t WorkerStats::*field) {
    std::lock_guard<std::mutex> lock(stats_mu_);
    ++(stats_.*field);
  }
  void AddTime(double WorkerTimes::*field, double seconds) {
    std::lock_guard<std::mutex> lock(stats_mu_);
    stats_.times.*field += seconds;
  }
  // A finished task's phases, and the rest of its `seconds` as task_other.
  void AddTaskTimes(const qat::QatResult& q, double seconds);

  // Registers (again), retrying while the server is away. OK when
  // registered; CANCELLED when stop reached `level` first; else the
  // server's refusal.
  absl::Status Register(const std::atomic<int>& stop, int level);
  // One LeaseTask call, and the task it brings, or the wait when none is
  // queued. OK to go on; else why the worker must leave.
  absl::Status LeaseAndHandle(const std::atomic<int>& stop, Backoff* backoff,
                              int64_t* handled);
  // One leased task from start to completion. Fails only when the worker
  // must leave (a refused token).
  absl::Status HandleTask(const autoq::LeaseTaskResponse& lease,
                          const std::atomic<int>& stop);
  // Runs `eval` on a task thread and heartbeats `lease_id` until it ends.
  Ending RunHeld(const autoq::Task& task, const EvalTask& eval,
                 const std::string& lease_id, const std::atomic<int>& stop,
                 absl::StatusOr<EvalRecord>* result, absl::Status* fatal);
  // One heartbeat of `lease_id`: kDone while the lease holds, else how the
  // task ends. Sets the time of the next beat.
  Ending Heartbeat(const std::string& lease_id, const std::atomic<int>& stop,
                   Backoff* backoff, Clock::time_point* next_beat,
                   absl::Status* fatal);
  // On the task thread: the model, the job's data, the fine-tune.
  absl::StatusOr<EvalRecord> Execute(const autoq::Task& task,
                                     const EvalTask& eval,
                                     const std::atomic<bool>* cancel);
  // The TaskRunner of the task's job, set up unless it is the last one's.
  absl::Status SetUpJob(const autoq::Task& task,
                        const std::atomic<bool>* cancel);
  // Downloads the model `sha256` (for the model cache), retrying while the
  // server is away.
  absl::StatusOr<std::string> FetchModel(const std::string& sha256,
                                         const std::atomic<bool>* cancel);
  // Sends the outcome until the server takes or refuses it.
  absl::Status Complete(const autoq::LeaseTaskResponse& lease,
                        const EvalTask& eval, absl::StatusOr<EvalRecord> result,
                        const std::atomic<int>& stop, Clock::time_point start);
  // Counts and logs how the completion ended; an error when the worker
  // must leave.
  absl::Status LogCompletion(const std::string& what,
                             const std::string& summary,
                             const CompletionOutcome& out, bool has_result,
                             Clock::time_point start);
  void Unregister();

  const WorkerOptions options_;
  const c10::Device device_;
  mutable std::mutex server_mu_;
  std::string server_;                                // guarded by server_mu_
  std::shared_ptr<autoq::WorkerService::Stub> stub_;  // guarded by server_mu_

  // Worker thread only.
  std::string worker_id_;
  milliseconds heartbeat_interval_{10000};
  bool away_logged_ = false;  // the server is away and the log says so

  ModelCache model_cache_;
  // The last job's runner (its data, its models), used by one task thread
  // at a time (each task's thread is joined before the next one starts).
  std::string job_key_;
  std::unique_ptr<TaskRunner> runner_;
  double last_job_setup_ = 0;  // of the running task, when it set up its job

  mutable std::mutex log_mu_;
  mutable std::mutex stats_mu_;
  WorkerStats stats_;  // guarded by stats_mu_
};

void Worker::Impl::Log(const std::string& line) const {
  if (options_.log == nullptr) return;
  const std::time_t now = std::time(nullptr);
  std::tm tm;
  localtime_r(&now, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
  std::lock_guard<std::mutex> lock(log_mu_);
  std::fprintf(options_.log, "%s %s: %s\n", stamp, options_.name.c_str(),
               line.c_str());
  std::fflush(options_.log);
}

void Worker::Impl::Connected() {
  if (away_logged_) Log(absl::StrCat("server ", server(), " is back"));
  away_logged_ = false;
}

void Worker::Impl::FollowServerFile() {
  if (options_.server_file.empty()) return;
  absl::StatusOr<std::string> now = ReadServerAddressFile(options_.server_file);
  if (!now.ok()) return;  // being rewritten, or gone for now: try later
  const std::string was = server();
  if (*now == was) return;
  autoq::ChannelOptions channel;
  channel.target = *now;
  channel.tls_ca_file = options_.tls_ca_file;
  absl::StatusOr<std::shared_ptr<grpc::Channel>> ch =
      autoq::MakeChannel(channel);
  if (!ch.ok()) {
    Log(absl::StrCat("cannot connect to ", *now, " (from ",
                     options_.server_file, "): ", ch.status().message()));
    return;
  }
  {
    std::lock_guard<std::mutex> lock(server_mu_);
    server_ = *now;
    stub_ = autoq::WorkerService::NewStub(*ch);
  }
  Log(absl::StrCat("server address in ", options_.server_file, " is now ", *now,
                   " (was ", was, ")"));
}

void Worker::Impl::Disconnected(const grpc::Status& status, const char* call) {
  FollowServerFile();
  if (!away_logged_) {
    Log(absl::StrCat("server ", server(), " away (", call, ": ",
                     status.error_message().empty()
                         ? absl::StrCat("code ", status.error_code())
                         : status.error_message(),
                     "); retrying with backoff"));
    away_logged_ = true;
  }
}

absl::Status Worker::Impl::RpcError(const char* call,
                                    const grpc::Status& status) const {
  std::string what = status.error_message();
  if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED) {
    what = absl::StrCat("the server refused the worker token: ", what);
  }
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      absl::StrCat(call, " at ", server(), ": ", what));
}

absl::Status Worker::Impl::Register(const std::atomic<int>& stop, int level) {
  Backoff backoff(options_.backoff_min, options_.backoff_max);
  const auto stopped = [&] { return stop.load() >= level; };
  while (!stopped()) {
    autoq::RegisterWorkerRequest request;
    request.set_name(options_.name);
    request.add_devices(device_.str());
    request.set_version(kVersion);
    autoq::RegisterWorkerResponse response;
    grpc::ClientContext context;
    autoq::PrepareContext(&context, options_.token, options_.rpc_timeout);
    const grpc::Status status =
        stub()->RegisterWorker(&context, request, &response);
    if (status.ok()) {
      Connected();
      worker_id_ = response.worker_id();
      // Heartbeat at the server's pace, but at least twice per lease.
      int64_t beat_ms = int64_t{1000} * response.heartbeat_seconds();
      if (beat_ms <= 0) beat_ms = 10000;
      if (response.lease_seconds() > 0) {
        beat_ms = std::min<int64_t>(beat_ms, 500 * response.lease_seconds());
      }
      heartbeat_interval_ = milliseconds(std::max<int64_t>(beat_ms, 200));
      Count(&WorkerStats::registrations);
      Log(absl::StrCat("registered with ", server(), " as worker ", worker_id_,
                       " (", device_.str(), ", lease ",
                       response.lease_seconds(), " s, heartbeat every ",
                       heartbeat_interval_.count() / 1000.0, " s)"));
      return absl::OkStatus();
    }
    if (!IsTransient(status.error_code())) {
      return RpcError("RegisterWorker", status);
    }
    Disconnected(status, "RegisterWorker");
    SleepUnless(backoff.Next(), stopped);
  }
  return absl::CancelledError("stopped before registering");
}

absl::Status Worker::Impl::Run(const std::atomic<int>& stop) {
  if (!options_.noop) {
    const int cores =
        std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
    at::set_num_threads(options_.threads > 0 ? options_.threads : cores);
  }
  Log(absl::StrCat("starting: server ", server(), ", device ", device_.str(),
                   options_.noop ? std::string(", no-op evaluator")
                                 : absl::StrCat(", model cache ",
                                                options_.model_cache_dir)));
  const auto run_start = Clock::now();
  absl::Status status = Register(stop, kFinishAndLeave);
  AddTime(&WorkerTimes::rpc, Since(run_start));
  if (absl::IsCancelled(status)) return absl::OkStatus();
  if (!status.ok()) return status;

  Backoff backoff(options_.backoff_min, options_.backoff_max);
  int64_t handled = 0;
  while (stop.load() == kKeepRunning &&
         (options_.max_tasks == 0 || handled < options_.max_tasks)) {
    status = LeaseAndHandle(stop, &backoff, &handled);
    if (!status.ok()) break;
  }
  if (status.ok() ||
      !IsAuthError(static_cast<grpc::StatusCode>(status.code()))) {
    Unregister();
  }
  AddTime(&WorkerTimes::wall, Since(run_start));
  const WorkerStats s = stats();
  Log(absl::StrCat("leaving: ", s.completed, " completed, ", s.failed,
                   " failed, ", s.abandoned, " abandoned",
                   status.ok() ? "" : absl::StrCat("; ", status.message())));
  Log(absl::StrCat("summary: ", FormatWorkerSummary(s)));
  return status;
}

absl::Status Worker::Impl::LeaseAndHandle(const std::atomic<int>& stop,
                                          Backoff* backoff, int64_t* handled) {
  const auto stopped = [&] { return stop.load() != kKeepRunning; };
  autoq::LeaseTaskRequest request;
  request.set_worker_id(worker_id_);
  request.set_device(device_.str());
  autoq::LeaseTaskResponse response;
  grpc::ClientContext context;
  autoq::PrepareContext(&context, options_.token, options_.rpc_timeout);
  const auto lease_start = Clock::now();
  const grpc::Status rpc = stub()->LeaseTask(&context, request, &response);
  AddTime(&WorkerTimes::rpc, Since(lease_start));
  const auto wait_start = Clock::now();
  if (rpc.ok()) {
    Connected();
    backoff->Reset();
    if (response.has_task()) {
      ++*handled;
      return HandleTask(response, stop);
    }
    SleepUnless(Clamp<milliseconds>(milliseconds(response.retry_after_ms()),
                                    milliseconds(10), milliseconds(60000)),
                stopped);
    AddTime(&WorkerTimes::idle, Since(wait_start));
    return absl::OkStatus();
  }
  const grpc::StatusCode code = rpc.error_code();
  if (code == grpc::StatusCode::NOT_FOUND) {
    Log(absl::StrCat("the server does not know worker ", worker_id_, " (",
                     rpc.error_message(), "): registering again"));
    absl::Status status = Register(stop, kFinishAndLeave);
    return absl::IsCancelled(status) ? absl::OkStatus() : status;
  }
  if (IsAuthError(code) || code == grpc::StatusCode::INVALID_ARGUMENT ||
      code == grpc::StatusCode::UNIMPLEMENTED) {
    return RpcError("LeaseTask", rpc);
  }
  // Away, or not handing out work right now (e.g. FAILED_PRECONDITION while
  // draining): ask again later.
  Disconnected(rpc, "LeaseTask");
  SleepUnless(backoff->Next(), stopped);
  AddTime(&WorkerTimes::idle, Since(wait_start));
  return absl::OkStatus();
}

absl::Status Worker::Impl::HandleTask(const autoq::LeaseTaskResponse& lease,
                                      const std::atomic<int>& stop) {
  const auto start = Clock::now();
  const autoq::Task& task = lease.task();
  absl::StatusOr<EvalTask> eval = ToEvalTask(task);
  absl::StatusOr<EvalRecord> result = absl::UnknownError("not run");
  if (!eval.ok()) {
    result = eval.status();
  } else if (options_.noop) {
    result = NoopRecord(*eval);
  } else {
    absl::Status fatal;
    const Ending ending =
        RunHeld(task, *eval, lease.lease_id(), stop, &result, &fatal);
    const double run_seconds = Since(start);
    if (result.ok()) {
      AddTaskTimes(result->qat, run_seconds);
    } else {
      AddTime(&WorkerTimes::task_other, run_seconds);
    }
    if (ending != Ending::kDone) {
      Count(&WorkerStats::abandoned);
      Log(absl::StrFormat("%s: abandoned (%s) after %.1f s",
                          TaskTitle(task, qat::FormatBits(eval->bits)),
                          ending == Ending::kLeaseLost ? "lease lost"
                          : ending == Ending::kStopped
                              ? "stopping"
                              : std::string(fatal.message()),
                          Since(start)));
      return ending == Ending::kFatal ? fatal : absl::OkStatus();
    }
  }
  if (!eval.ok()) eval = EvalTask{};
  const auto complete_start = Clock::now();
  absl::Status completed =
      Complete(lease, *eval, std::move(result), stop, start);
  AddTime(&WorkerTimes::rpc, Since(complete_start));
  return completed;
}

void Worker::Impl::AddTaskTimes(const qat::QatResult& q, double seconds) {
  std::lock_guard<std::mutex> lock(stats_mu_);
  WorkerTimes& t = stats_.times;
  t.train += q.train_seconds;
  t.val += q.val_seconds;
  t.calibration += q.calibration_seconds;
  t.test += q.test_seconds;
  t.prepare += q.prepare_seconds;
  t.export_model += q.export_seconds;
  // last_job_setup_ is what Execute spent on the job's setup this time.
  const double phases = q.train_seconds + q.val_seconds +
                        q.calibration_seconds + q.test_seconds +
                        q.prepare_seconds + q.export_seconds;
  t.task_other += std::max(0.0, seconds - phases - last_job_setup_);
}

Worker::Impl::Ending Worker::Impl::RunHeld(const autoq::Task& task,
                                           const EvalTask& eval,
                                           const std::string& lease_id,
                                           const std::atomic<int>& stop,
                                           absl::StatusOr<EvalRecord>* result,
                                           absl::Status* fatal) {
  TaskThread thread([this, &task, &eval](const std::atomic<bool>* cancel) {
    return Execute(task, eval, cancel);
  });
  Ending ending = Ending::kDone;
  Backoff backoff(options_.backoff_min, options_.backoff_max);
  auto next_beat = Clock::now() + heartbeat_interval_;
  while (!thread.WaitUntil(std::min(next_beat, Clock::now() + kPollInterval))) {
    if (stop.load() >= kAbandonAndLeave) {
      ending = Ending::kStopped;
      break;
    }
    if (Clock::now() < next_beat) continue;
    ending = Heartbeat(lease_id, stop, &backoff, &next_beat, fatal);
    if (ending != Ending::kDone) break;
  }
  if (ending != Ending::kDone) thread.Cancel();
  *result = thread.Join();
  return ending;
}

Worker::Impl::Ending Worker::Impl::Heartbeat(const std::string& lease_id,
                                             const std::atomic<int>& stop,
                                             Backoff* backoff,
                                             Clock::time_point* next_beat,
                                             absl::Status* fatal) {
  autoq::HeartbeatRequest request;
  request.set_worker_id(worker_id_);
  request.add_lease_ids(lease_id);
  autoq::HeartbeatResponse response;
  grpc::ClientContext context;
  autoq::PrepareContext(&context, options_.token, options_.rpc_timeout);
  const grpc::Status rpc = stub()->Heartbeat(&context, request, &response);
  if (rpc.ok()) {
    Connected();
    backoff->Reset();
    const auto& lost = response.lost_lease_ids();
    if (std::find(lost.begin(), lost.end(), lease_id) != lost.end()) {
      return Ending::kLeaseLost;
    }
    *next_beat = Clock::now() + heartbeat_interval_;
    return Ending::kDone;
  }
  if (rpc.error_code() == grpc::StatusCode::NOT_FOUND) {
    // The server lost this worker; a fresh registration's next heartbeat
    // tells whether the lease survived.
    Log(absl::StrCat("the server does not know worker ", worker_id_, " (",
                     rpc.error_message(), "): registering again"));
    absl::Status st = Register(stop, kAbandonAndLeave);
    if (absl::IsCancelled(st)) return Ending::kStopped;
    if (!st.ok()) {
      *fatal = st;
      return Ending::kFatal;
    }
    *next_beat = Clock::now();
    return Ending::kDone;
  }
  if (IsAuthError(rpc.error_code())) {
    *fatal = RpcError("Heartbeat", rpc);
    return Ending::kFatal;
  }
  // Keep working: the server keeps leases across a restart, and tells at
  // the next heartbeat if this one was lost meanwhile.
  Disconnected(rpc, "Heartbeat");
  *next_beat = Clock::now() + std::min(backoff->Next(), heartbeat_interval_);
  return Ending::kDone;
}

absl::StatusOr<EvalRecord> Worker::Impl::Execute(
    const autoq::Task& task, const EvalTask& eval,
    const std::atomic<bool>* cancel) {
  last_job_setup_ = 0;
  RETURN_IF_ERROR(SetUpJob(task, cancel));
  if (cancel->load()) return absl::CancelledError("cancelled");
  qat::ProgressOptions progress;
  progress.out = nullptr;  // one line per task, written by the worker
  progress.cancel = cancel;
  return runner_->Run(eval, progress);
}

absl::Status Worker::Impl::SetUpJob(const autoq::Task& task,
                                    const std::atomic<bool>* cancel) {
  const std::string key =
      absl::StrCat(task.job_id(), "\n", task.model_sha256());
  if (runner_ != nullptr && job_key_ == key) return absl::OkStatus();
  const auto start = Clock::now();
  runner_.reset();  // free the last job's dataset before the next one
  job_key_.clear();
  ASSIGN_OR_RETURN(
      std::string model_path,
      model_cache_.Ensure(
          task.model_sha256(),
          [this](const std::string& sha256, const std::atomic<bool>* c) {
            return FetchModel(sha256, c);
          },
          cancel));
  ASSIGN_OR_RETURN(JobConfig config, WorkerJobConfig(task.spec(), model_path));
  ASSIGN_OR_RETURN(std::shared_ptr<JobData> data,
                   BuildJobData(config, model_path));
  Log(absl::StrFormat(
      "job %s: %d layers, %d train / %d val / %d test images (%.1f s)",
      task.job_id(), data->analysis.num_genes(),
      static_cast<int>(data->data.train.size()),
      static_cast<int>(data->data.val.size()),
      static_cast<int>(data->data.test.size()), Since(start)));
  runner_ = std::make_unique<TaskRunner>(std::move(data), device_);
  job_key_ = key;
  last_job_setup_ = Since(start);
  AddTime(&WorkerTimes::job_setup, last_job_setup_);
  return absl::OkStatus();
}

absl::StatusOr<std::string> Worker::Impl::FetchModel(
    const std::string& sha256, const std::atomic<bool>* cancel) {
  Backoff backoff(options_.backoff_min, options_.backoff_max);
  while (true) {
    autoq::FetchModelRequest request;
    request.set_sha256(sha256);
    grpc::ClientContext context;
    autoq::PrepareContext(&context, options_.token, options_.fetch_timeout);
    std::unique_ptr<grpc::ClientReader<autoq::DataChunk>> reader =
        stub()->FetchModel(&context, request);
    std::string bytes, claimed;
    int64_t total = -1;
    autoq::DataChunk chunk;
    for (bool first = true; reader->Read(&chunk); first = false) {
      if (first) {
        total = chunk.total_bytes();
        claimed = chunk.sha256();
        if (total > 0) bytes.reserve(static_cast<size_t>(total));
      }
      bytes += chunk.data();
      if (cancel->load()) {
        context.TryCancel();
        break;
      }
    }
    const grpc::Status rpc = reader->Finish();
    if (cancel->load()) return absl::CancelledError("cancelled");
    if (rpc.ok()) {
      if (!claimed.empty() && claimed != sha256) {
        return absl::DataLossError(absl::StrCat(
            "FetchModel ", sha256, ": the server sent model ", claimed));
      }
      if (total >= 0 && static_cast<int64_t>(bytes.size()) != total) {
        return absl::DataLossError(absl::StrCat("FetchModel ", sha256, ": got ",
                                                bytes.size(), " bytes of ",
                                                total));
      }
      Count(&WorkerStats::model_fetches);
      return bytes;  // the cache checks the hash
    }
    if (!IsTransient(rpc.error_code())) return RpcError("FetchModel", rpc);
    // The worker's thread reports the server as away; just wait here.
    if (!SleepUnless(backoff.Next(), [cancel] { return cancel->load(); })) {
      return absl::CancelledError("cancelled");
    }
  }
}

absl::Status Worker::Impl::Complete(const autoq::LeaseTaskResponse& lease,
                                    const EvalTask& eval,
                                    absl::StatusOr<EvalRecord> result,
                                    const std::atomic<int>& stop,
                                    Clock::time_point start) {
  const std::string what = TaskTitle(lease.task(), qat::FormatBits(eval.bits));
  const std::string who = absl::StrCat(options_.name, " (", device_.str(), ")");
  autoq::CompleteTaskRequest request;
  std::string summary = CompletionRequest(lease, eval, result, who, &request);
  Backoff backoff(options_.backoff_min, options_.backoff_max);
  CompletionHooks hooks;
  hooks.send = [&](autoq::CompleteTaskRequest* r,
                   autoq::CompleteTaskResponse* response) {
    r->set_worker_id(worker_id_);
    grpc::ClientContext context;
    autoq::PrepareContext(&context, options_.token,
                          r->artifacts_size() > 0 ? options_.fetch_timeout
                                                  : options_.rpc_timeout);
    return stub()->CompleteTask(&context, *r, response);
  };
  hooks.register_again = [&] {
    Log(absl::StrCat("the server does not know worker ", worker_id_,
                     ": registering again"));
    return Register(stop, kAbandonAndLeave);
  };
  hooks.wait = [&] {
    return SleepUnless(backoff.Next(),
                       [&] { return stop.load() >= kAbandonAndLeave; });
  };
  hooks.on_transient = [&](const grpc::Status& rpc) {
    Disconnected(rpc, "CompleteTask");
  };
  hooks.rpc_error = [&](const grpc::Status& rpc) {
    return RpcError("CompleteTask", rpc);
  };
  const CompletionOutcome out = SendCompletion(&request, who, hooks);
  if (!out.exports_dropped.empty()) {
    summary = absl::StrCat("error: ", out.exports_dropped);
  }
  return LogCompletion(what, summary, out, request.has_result(), start);
}

absl::Status Worker::Impl::LogCompletion(const std::string& what,
                                         const std::string& summary,
                                         const CompletionOutcome& out,
                                         bool has_result,
                                         Clock::time_point start) {
  switch (out.kind) {
    case CompletionOutcome::kTaken:
      Connected();
      Count(has_result ? &WorkerStats::completed : &WorkerStats::failed);
      Log(absl::StrFormat("%s: %s (%.1f s)%s", what, summary, Since(start),
                          out.duplicate ? " [already complete]" : ""));
      return absl::OkStatus();
    case CompletionOutcome::kFatal:
      Count(&WorkerStats::abandoned);
      return out.status;
    case CompletionOutcome::kRefused:
      Count(&WorkerStats::abandoned);
      Log(absl::StrFormat(
          "%s: the server refused the outcome (%s: %s) after %.1f s: %s", what,
          absl::StatusCodeToString(out.status.code()), out.status.message(),
          Since(start), summary));
      return absl::OkStatus();
    case CompletionOutcome::kAbandoned:
      break;
  }
  Count(&WorkerStats::abandoned);
  Log(absl::StrFormat("%s: abandoned (stopping) after %.1f s: %s", what,
                      Since(start), summary));
  return absl::OkStatus();
}

void Worker::Impl::Unregister() {
  if (worker_id_.empty()) return;
  autoq::UnregisterWorkerRequest request;
  request.set_worker_id(worker_id_);
  autoq::UnregisterWorkerResponse response;
  grpc::ClientContext context;
  // Leaving must not hang on a server that is away: one short attempt (its
  // leases expire on their own otherwise).
  autoq::PrepareContext(&context, options_.token,
                        std::min(options_.rpc_timeout, milliseconds(5000)));
  const grpc::Status rpc =
      stub()->UnregisterWorker(&context, request, &response);
  if (rpc.ok()) {
    Log(absl::StrCat("unregistered worker ", worker_id_));
  } else {
    Log(absl::StrCat("could not unregister worker ", worker_id_, ": ",
                     rpc.error_message()));
  }
}

std::string FormatWorkerSummary(const WorkerStats& stats) {
  const WorkerTimes& t = stats.times;
  const int64_t tasks = stats.completed + stats.failed + stats.abandoned;
  const double busy = t.train + t.val;
  return absl::StrFormat(
      "%d tasks, wall %.1f s, training+validation %.1f s (%.1f%%): train "
      "%.1f s, val %.1f s, calibration %.1f s, test %.1f s, model prep "
      "%.1f s, export %.1f s, other in tasks %.1f s, job setup %.1f s, "
      "rpc %.1f s, waiting for tasks %.1f s",
      tasks, t.wall, busy, t.wall > 0 ? 100.0 * busy / t.wall : 0.0, t.train,
      t.val, t.calibration, t.test, t.prepare, t.export_model, t.task_other,
      t.job_setup, t.rpc, t.idle);
}

absl::StatusOr<std::string> ReadServerAddressFile(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) {
    if (in.is_open() && in.eof()) {
      return absl::InvalidArgumentError(
          absl::StrCat("server address file ", path, " is empty"));
    }
    return absl::NotFoundError(
        absl::StrCat("cannot read the server address file ", path));
  }
  std::string address(absl::StripAsciiWhitespace(line));
  const size_t colon = address.rfind(':');
  if (address.empty() || colon == std::string::npos || colon == 0 ||
      colon + 1 == address.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "server address file ", path, ": '", address, "' is not HOST:PORT"));
  }
  return address;
}

absl::StatusOr<std::unique_ptr<Worker>> Worker::Create(WorkerOptions options) {
  if (options.server.empty() && !options.server_file.empty()) {
    ASSIGN_OR_RETURN(options.server,
                     ReadServerAddressFile(options.server_file));
  }
  if (options.server.empty()) {
    return absl::InvalidArgumentError(
        "no server address (HOST:PORT, or a file holding it)");
  }
  if (options.token.empty()) {
    return absl::InvalidArgumentError("no worker token");
  }
  ASSIGN_OR_RETURN(c10::Device device, qat::ParseDevice(options.device));
  if (options.name.empty()) options.name = HostName();
  if (options.model_cache_dir.empty()) {
    options.model_cache_dir = DefaultModelCacheDir();
  }
  options.threads = std::max(options.threads, 0);
  options.max_tasks = std::max<int64_t>(options.max_tasks, 0);
  options.backoff_min = Clamp<milliseconds>(
      options.backoff_min, milliseconds(1), milliseconds(60000));
  options.backoff_max = Clamp<milliseconds>(
      options.backoff_max, options.backoff_min, milliseconds(600000));
  options.rpc_timeout = Clamp<milliseconds>(
      options.rpc_timeout, milliseconds(100), milliseconds(600000));
  options.fetch_timeout = Clamp<milliseconds>(
      options.fetch_timeout, options.rpc_timeout, milliseconds(86400000));

  autoq::ChannelOptions channel;
  channel.target = options.server;
  channel.tls_ca_file = options.tls_ca_file;
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::Channel> ch,
                   autoq::MakeChannel(channel));
  auto impl = std::make_unique<Impl>(std::move(options), device,
                                     autoq::WorkerService::NewStub(ch));
  return std::unique_ptr<Worker>(new Worker(std::move(impl)));
}

Worker::Worker(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Worker::~Worker() = default;

absl::Status Worker::Run(const std::atomic<int>& stop) {
  return impl_->Run(stop);
}
WorkerStats Worker::stats() const { return impl_->stats(); }
const WorkerOptions& Worker::options() const { return impl_->options(); }

}  // namespace autoq::evaluator
