// Load bench of the service alone: an autoq-server (in process on loopback,
// or an external one) driven by many no-op workers and many WatchJob
// streams. The workers answer every task at once with a synthetic result
// computed from its bits, so what is measured is the service itself: the
// task queue, its SQLite writes, the job threads and the gRPC paths.
//
// Prints tasks dispatched per second, lease latency percentiles and events
// delivered to watchers per second, then checks that every job finished,
// that no task was leased twice or lost, that no completion was refused and
// that every watcher saw its job's whole history up to `ended`. Exits 1 if
// a check fails.
#include <google/protobuf/util/json_util.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/flags.h"
#include "common/file_util.h"
#include "common/rpc_util.h"
#include "evaluator/task.h"
#include "proto/autoq.grpc.pb.h"
#include "search/result_store.h"
#include "server/auth.h"
#include "server/server.h"
#include "server/test_noop_completion.h"

namespace autoq::bench {
namespace {

using Clock = std::chrono::steady_clock;
using autoq::PrepareContext;

constexpr char kUsage[] =
    "usage: service_load_bench [--smoke] [flags]\n"
    "  --workers N              no-op workers, one thread and channel each "
    "(64)\n"
    "  --watchers N             WatchJob streams, spread over the jobs (100)\n"
    "  --jobs N                 jobs submitted (2)\n"
    "  --population N           NSGA-II population of each job (512)\n"
    "  --generations N          generations of each job (8)\n"
    "  --model PATH             TorchScript model (default: the fixture\n"
    "                           $AUTOQ_FIXTURES/small_dscnn.pt)\n"
    "  --lease-seconds N        in-process server's lease (60)\n"
    "  --work-threads N         in-process server's work pool (4)\n"
    "  --timeout-seconds N      give up after this long (1800)\n"
    "  --server HOST:PORT       bench an external autoq-server (plain TCP)\n"
    "  --client-token-file F    its client token (file with the token)\n"
    "  --worker-token-file F    its worker token\n"
    "  --smoke                  8 workers, 4 watchers, 1 job, population 16,\n"
    "                           2 generations (flags given still apply)\n";

struct Options {
  int workers = 64;
  int watchers = 100;
  int jobs = 2;
  int population = 512;
  int generations = 8;
  std::string model;
  int lease_seconds = 60;
  int work_threads = 4;
  int timeout_seconds = 1800;
  std::string server;  // empty: in process
  std::string client_token_file, worker_token_file;
};

absl::StatusOr<Options> ParseOptions(int argc, char** argv) {
  autoq::FlagSpec spec;
  spec.with_value = {"workers",       "watchers",          "jobs",
                     "population",    "generations",       "model",
                     "lease-seconds", "work-threads",      "timeout-seconds",
                     "server",        "client-token-file", "worker-token-file"};
  spec.boolean = {"smoke", "help"};
  absl::StatusOr<autoq::Flags> flags = autoq::Flags::Parse(argc, argv, 1, spec);
  if (!flags.ok()) return flags.status();
  if (flags->Has("help")) {
    std::fputs(kUsage, stdout);
    std::exit(0);
  }
  if (!flags->positional().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("unexpected argument ", flags->positional().front()));
  }
  Options o;
  if (flags->Has("smoke")) {
    o.workers = 8;
    o.watchers = 4;
    o.jobs = 1;
    o.population = 16;
    o.generations = 2;
    o.timeout_seconds = 120;
  }
  struct IntFlag {
    const char* name;
    int* value;
    int min;
  };
  for (const IntFlag& f :
       {IntFlag{"workers", &o.workers, 1}, IntFlag{"watchers", &o.watchers, 0},
        IntFlag{"jobs", &o.jobs, 1}, IntFlag{"population", &o.population, 8},
        IntFlag{"generations", &o.generations, 0},
        IntFlag{"lease-seconds", &o.lease_seconds, 2},
        IntFlag{"work-threads", &o.work_threads, 1},
        IntFlag{"timeout-seconds", &o.timeout_seconds, 1}}) {
    absl::StatusOr<int> v = flags->GetIntIn(f.name, *f.value, f.min, 1000000);
    if (!v.ok()) return v.status();
    *f.value = *v;
  }
  const char* fixtures = std::getenv("AUTOQ_FIXTURES");
  o.model = flags->Get(
      "model", absl::StrCat(fixtures != nullptr ? fixtures : "build/fixtures",
                            "/small_dscnn.pt"));
  o.server = flags->Get("server");
  o.client_token_file = flags->Get("client-token-file");
  o.worker_token_file = flags->Get("worker-token-file");
  if (!o.server.empty() &&
      (o.client_token_file.empty() || o.worker_token_file.empty())) {
    return absl::InvalidArgumentError(
        "--server needs --client-token-file and --worker-token-file");
  }
  return o;
}

// A channel with a connection of its own: gRPC otherwise shares one TCP
// connection between channels of equal arguments, and 64 workers or 100
// watchers would then be one connection, unlike the separate processes
// they stand for.
std::shared_ptr<grpc::Channel> OwnChannel(const std::string& target) {
  autoq::ChannelOptions options;
  options.target = target;
  options.own_connection = true;
  return *autoq::MakeChannel(options);  // plain TCP to a non-empty target
}

// CPU seconds (user + system) of this process so far.
double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto s = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  return s(u.ru_utime) + s(u.ru_stime);
}

// Milliseconds between two steady-clock points.
double Ms(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

// Nearest-rank percentile of sorted values (q in [0, 1]); 0 when empty.
double Percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  size_t rank = static_cast<size_t>(q * static_cast<double>(sorted.size()));
  if (rank >= sorted.size()) rank = sorted.size() - 1;
  return sorted[rank];
}

// Everything the workers and watchers observed.
struct Tally {
  std::mutex mu;
  // Every lease of a key: "task T of job J, STAGE" (more than one: the
  // key was run twice).
  std::map<std::string, std::vector<std::string>> leases_by_key;  // by mu
  std::map<std::string, int> leases_by_task;          // guarded by mu
  std::map<std::string, int64_t> leases_by_job;       // guarded by mu
  std::vector<double> task_lease_ms, empty_lease_ms;  // guarded by mu
  std::vector<double> complete_ms;                    // guarded by mu
  int64_t completed = 0;   // guarded by mu: accepted, not duplicate
  int64_t duplicates = 0;  // guarded by mu
  int64_t rejected = 0;    // guarded by mu: CompleteTask not OK
  int64_t rpc_errors = 0;  // guarded by mu: Register / LeaseTask not OK
  std::vector<std::string> errors;  // guarded by mu: the first few
  bool any_lease = false;           // guarded by mu
  Clock::time_point first_lease, last_completion;  // guarded by mu

  void Error(const std::string& what) {
    std::lock_guard<std::mutex> lock(mu);
    if (errors.size() < 10) errors.push_back(what);
  }
};

struct Stop {
  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;  // guarded by mu

  // Sleeps up to `ms`; false once stopped.
  bool Sleep(int ms) {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait_for(lock, std::chrono::milliseconds(ms), [&] { return stop; });
    return !stop;
  }
  bool stopped() {
    std::lock_guard<std::mutex> lock(mu);
    return stop;
  }
  void Set() {
    std::lock_guard<std::mutex> lock(mu);
    stop = true;
    cv.notify_all();
  }
};

void RunWorker(int index, const std::string& target, const std::string& token,
               Tally* tally, Stop* stop) {
  auto stub = WorkerService::NewStub(OwnChannel(target));
  const auto rpc_timeout = std::chrono::seconds(60);
  std::string worker_id;
  {
    grpc::ClientContext ctx;
    PrepareContext(&ctx, token, rpc_timeout);
    RegisterWorkerRequest request;
    request.set_name(absl::StrCat("noop-", index));
    request.add_devices("cpu");
    request.set_version("service_load_bench");
    RegisterWorkerResponse response;
    grpc::Status st = stub->RegisterWorker(&ctx, request, &response);
    if (!st.ok()) {
      tally->Error(absl::StrCat("RegisterWorker: ", st.error_message()));
      std::lock_guard<std::mutex> lock(tally->mu);
      ++tally->rpc_errors;
      return;
    }
    worker_id = response.worker_id();
  }
  // Per thread, merged at the end: no shared lock per call.
  std::vector<double> task_ms, empty_ms, complete_ms;
  while (!stop->stopped()) {
    LeaseTaskRequest request;
    request.set_worker_id(worker_id);
    request.set_device("cpu");
    LeaseTaskResponse lease;
    grpc::ClientContext ctx;
    PrepareContext(&ctx, token, rpc_timeout);
    const Clock::time_point t0 = Clock::now();
    grpc::Status st = stub->LeaseTask(&ctx, request, &lease);
    const Clock::time_point t1 = Clock::now();
    if (!st.ok()) {
      tally->Error(absl::StrCat("LeaseTask: ", st.error_message()));
      {
        std::lock_guard<std::mutex> lock(tally->mu);
        ++tally->rpc_errors;
      }
      if (!stop->Sleep(100)) break;
      continue;
    }
    if (!lease.has_task()) {
      empty_ms.push_back(Ms(t0, t1));
      if (!stop->Sleep(std::max(1, lease.retry_after_ms()))) break;
      continue;
    }
    task_ms.push_back(Ms(t0, t1));
    {
      std::lock_guard<std::mutex> lock(tally->mu);
      tally->leases_by_key[lease.task().key()].push_back(absl::StrCat(
          "task ", lease.task().task_id(), " of ", lease.task().job_id(), ", ",
          TaskStage_Name(lease.task().stage())));
      ++tally->leases_by_task[lease.task().task_id()];
      ++tally->leases_by_job[lease.task().job_id()];
      if (!tally->any_lease || t0 < tally->first_lease) {
        tally->first_lease = t0;
      }
      tally->any_lease = true;
    }
    const CompleteTaskRequest done =
        server::test_util::NoopCompletion(worker_id, lease);
    CompleteTaskResponse response;
    grpc::ClientContext cctx;
    PrepareContext(&cctx, token, rpc_timeout);
    st = stub->CompleteTask(&cctx, done, &response);
    const Clock::time_point t2 = Clock::now();
    complete_ms.push_back(Ms(t1, t2));
    std::lock_guard<std::mutex> lock(tally->mu);
    if (!st.ok()) {
      ++tally->rejected;
      if (tally->errors.size() < 10) {
        tally->errors.push_back(absl::StrCat("CompleteTask of task ",
                                             lease.task().task_id(), ": ",
                                             st.error_message()));
      }
    } else if (response.duplicate()) {
      ++tally->duplicates;
    } else {
      ++tally->completed;
    }
    if (t2 > tally->last_completion) tally->last_completion = t2;
  }
  {
    grpc::ClientContext ctx;
    PrepareContext(&ctx, token, std::chrono::seconds(5));
    UnregisterWorkerRequest request;
    request.set_worker_id(worker_id);
    UnregisterWorkerResponse response;
    (void)stub->UnregisterWorker(&ctx, request, &response);
  }
  std::lock_guard<std::mutex> lock(tally->mu);
  tally->task_lease_ms.insert(tally->task_lease_ms.end(), task_ms.begin(),
                              task_ms.end());
  tally->empty_lease_ms.insert(tally->empty_lease_ms.end(), empty_ms.begin(),
                               empty_ms.end());
  tally->complete_ms.insert(tally->complete_ms.end(), complete_ms.begin(),
                            complete_ms.end());
}

struct WatchOutcome {
  int64_t events = 0;
  int64_t messages = 0;
  std::map<JobEvent::EventCase, int64_t> by_kind;
  bool saw_ended = false;
  JobState ended_state = JOB_STATE_UNSPECIFIED;
  bool in_order = true;  // seq 1, 2, 3, ... with no gap
  grpc::Status status;
  Clock::time_point end;
};

// One WatchJob stream, read with gRPC's callback API: a hundred blocking
// readers would cost this process a thread wake-up per event, CPU the
// server under test would not get on a small machine.
class Watcher : public grpc::ClientReadReactor<JobEvents> {
 public:
  Watcher(const std::string& target, const std::string& token,
          const std::string& job_id, int timeout_seconds)
      : stub_(JobService::NewStub(OwnChannel(target))) {
    PrepareContext(&ctx_, token, std::chrono::seconds(timeout_seconds));
    request_.set_job_id(job_id);
  }

  void Start() {
    stub_->async()->WatchJob(&ctx_, &request_, this);
    StartRead(&batch_);
    StartCall();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // OnDone follows
    WatchOutcome& o = out_;
    ++o.messages;
    for (const JobEvent& event : batch_.events()) {
      ++o.events;
      ++o.by_kind[event.event_case()];
      if (event.seq() != expect_) o.in_order = false;
      expect_ = event.seq() + 1;
      if (event.has_ended()) {
        o.saw_ended = true;
        o.ended_state = event.ended().state();
      }
    }
    StartRead(&batch_);
  }

  void OnDone(const grpc::Status& status) override {
    std::lock_guard<std::mutex> lock(mu_);
    out_.status = status;
    out_.end = Clock::now();
    done_ = true;
    cv_.notify_all();
  }

  // Blocks until the stream ended; then the outcome is final.
  const WatchOutcome& Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return done_; });
    return out_;
  }

 private:
  std::unique_ptr<JobService::Stub> stub_;
  grpc::ClientContext ctx_;
  WatchJobRequest request_;
  JobEvents batch_;
  int64_t expect_ = 1;
  WatchOutcome out_;  // written by the reactions, one at a time
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;  // guarded by mu_
};

absl::StatusOr<std::string> SubmitJob(JobService::Stub* stub,
                                      const std::string& token,
                                      const Options& o, int index,
                                      const std::string& model) {
  const std::string json = absl::StrCat(R"({
    "name": "load-bench-)",
                                        index, R"(",
    "model": {"path": "model.pt"},
    "dataset": {"spec": "fashion-mnist", "val_subset": 100,
                "test_subset": 100},
    "search": {"population": )",
                                        o.population, R"(,
               "generations": )",
                                        o.generations, R"(,
               "seed": )",
                                        index + 1, R"(,
               "qat": {"epochs": 1, "train_subset": 64}},
    "final_front": {"recipe": {"epochs": 1, "train_subset": 64},
                    "compare_uniform": false}})");
  JobSpec spec;
  auto parsed = google::protobuf::util::JsonStringToMessage(json, &spec);
  if (!parsed.ok()) {
    return absl::InternalError(
        absl::StrCat("job spec: ", parsed.message().as_string()));
  }
  grpc::ClientContext ctx;
  PrepareContext(&ctx, token, std::chrono::seconds(120));
  SubmitJobResponse response;
  std::unique_ptr<grpc::ClientWriter<SubmitJobRequest>> writer =
      stub->SubmitJob(&ctx, &response);
  SubmitJobRequest request;
  *request.mutable_spec() = spec;
  bool ok = writer->Write(request);
  for (size_t at = 0; ok && at < model.size(); at += autoq::kChunkBytes) {
    SubmitJobRequest chunk;
    chunk.set_model_chunk(model.substr(at, autoq::kChunkBytes));
    ok = writer->Write(chunk);
  }
  writer->WritesDone();
  grpc::Status st = writer->Finish();
  if (!st.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(st.error_code()),
                        absl::StrCat("SubmitJob: ", st.error_message()));
  }
  return response.status().job_id();
}

absl::StatusOr<JobStatus> GetJob(JobService::Stub* stub,
                                 const std::string& token,
                                 const std::string& job_id) {
  grpc::ClientContext ctx;
  PrepareContext(&ctx, token, std::chrono::seconds(30));
  GetJobRequest request;
  request.set_job_id(job_id);
  JobStatus status;
  grpc::Status st = stub->GetJob(&ctx, request, &status);
  if (!st.ok()) return autoq::ToAbsl(st);
  return status;
}

bool Ended(JobState s) {
  return s == JOB_FINISHED || s == JOB_FAILED || s == JOB_CANCELLED;
}

// A fresh directory under the system's temp folder, removed with the object.
class TempDir {
 public:
  TempDir() {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "autoq-load-XXXXXX").string();
    if (mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

int Check(bool ok, const std::string& what) {
  std::printf("  [%s] %s\n", ok ? "ok" : "FAIL", what.c_str());
  return ok ? 0 : 1;
}

absl::StatusOr<int> Main(int argc, char** argv) {
  absl::StatusOr<Options> parsed = ParseOptions(argc, argv);
  if (!parsed.ok()) return parsed.status();
  const Options o = *parsed;
  absl::StatusOr<std::string> model = ReadFile(o.model);
  if (!model.ok()) return model.status();

  TempDir tmp;
  std::string database;
  std::unique_ptr<server::AutoqServer> in_process;
  std::string target, client_token, worker_token;
  if (o.server.empty()) {
    if (tmp.path().empty()) return absl::InternalError("no temp directory");
    client_token = server::GenerateToken();
    worker_token = server::GenerateToken();
    server::TokenAuth auth;
    absl::Status st = auth.Add(server::Role::kClient, "bench", client_token);
    if (st.ok()) st = auth.Add(server::Role::kWorker, "noop", worker_token);
    if (!st.ok()) return st;
    server::ServerOptions options;
    options.listen = "127.0.0.1:0";
    database = tmp.path() + "/server.db";
    options.database = database;
    options.max_jobs_per_client = std::max(4, o.jobs);
    options.lease_seconds = o.lease_seconds;
    options.work_threads = o.work_threads;
    options.log = nullptr;
    absl::StatusOr<std::unique_ptr<server::AutoqServer>> started =
        server::AutoqServer::Start(options, std::move(auth));
    if (!started.ok()) return started.status();
    in_process = *std::move(started);
    target = absl::StrCat("127.0.0.1:", in_process->port());
  } else {
    target = o.server;
    absl::StatusOr<std::string> t = autoq::ReadTokenFile(o.client_token_file);
    if (!t.ok()) return t.status();
    client_token = *t;
    t = autoq::ReadTokenFile(o.worker_token_file);
    if (!t.ok()) return t.status();
    worker_token = *t;
  }
  std::printf(
      "service load bench: %s server %s, %d no-op workers, %d watchers, %d "
      "job(s) of population %d x %d generations, model %s (%zu bytes)\n",
      o.server.empty() ? "in-process" : "external", target.c_str(), o.workers,
      o.watchers, o.jobs, o.population, o.generations, o.model.c_str(),
      model->size());
  std::fflush(stdout);

  auto client = JobService::NewStub(OwnChannel(target));
  std::vector<std::string> job_ids;
  for (int j = 0; j < o.jobs; ++j) {
    absl::StatusOr<std::string> id =
        SubmitJob(client.get(), client_token, o, j, *model);
    if (!id.ok()) return id.status();
    job_ids.push_back(*id);
  }

  Tally tally;
  Stop stop;
  const Clock::time_point start = Clock::now();
  const double cpu_start = CpuSeconds();
  std::vector<std::unique_ptr<Watcher>> watchers;
  for (int i = 0; i < o.watchers; ++i) {
    watchers.push_back(std::make_unique<Watcher>(
        target, client_token, job_ids[i % job_ids.size()], o.timeout_seconds));
    watchers.back()->Start();
  }
  std::vector<std::thread> workers;
  for (int i = 0; i < o.workers; ++i) {
    workers.emplace_back(RunWorker, i, target, worker_token, &tally, &stop);
  }

  // Until every job ended (or the time is up), then the workers stop.
  const Clock::time_point give_up =
      start + std::chrono::seconds(o.timeout_seconds);
  std::vector<JobStatus> final_status(job_ids.size());
  bool all_ended = false;
  while (!all_ended && Clock::now() < give_up) {
    all_ended = true;
    for (size_t j = 0; j < job_ids.size(); ++j) {
      absl::StatusOr<JobStatus> s =
          GetJob(client.get(), client_token, job_ids[j]);
      if (s.ok()) final_status[j] = *s;
      if (!s.ok() || !Ended(s->state())) all_ended = false;
    }
    if (!all_ended) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  stop.Set();
  for (std::thread& t : workers) t.join();
  std::vector<WatchOutcome> watches;
  for (const auto& w : watchers) watches.push_back(w->Wait());
  const Clock::time_point end = Clock::now();
  const double cpu_s = CpuSeconds() - cpu_start;
  // Once more, after the last completion: the counters are final.
  for (size_t j = 0; j < job_ids.size(); ++j) {
    absl::StatusOr<JobStatus> s =
        GetJob(client.get(), client_token, job_ids[j]);
    if (s.ok()) final_status[j] = *s;
  }

  int64_t stored_results = -1;
  std::optional<server::ServerStats> server_stats;
  if (in_process != nullptr) {
    in_process->Shutdown();
    server_stats = in_process->stats();
    in_process.reset();
    absl::StatusOr<std::unique_ptr<search::ResultStore>> store =
        search::ResultStore::Open(database);
    if (!store.ok()) return store.status();
    absl::StatusOr<int64_t> n = (*store)->CountResults();
    if (!n.ok()) return n.status();
    stored_results = *n;
  }

  // ---- Report.
  std::sort(tally.task_lease_ms.begin(), tally.task_lease_ms.end());
  std::sort(tally.empty_lease_ms.begin(), tally.empty_lease_ms.end());
  std::sort(tally.complete_ms.begin(), tally.complete_ms.end());
  int64_t leases = 0;
  for (const auto& [key, l] : tally.leases_by_key) leases += l.size();
  const double dispatch_s =
      tally.any_lease ? Ms(tally.first_lease, tally.last_completion) / 1000.0
                      : 0.0;
  int64_t events = 0, messages = 0;
  std::map<JobEvent::EventCase, int64_t> by_kind;
  Clock::time_point last_watch_end = start;
  for (const WatchOutcome& w : watches) {
    events += w.events;
    messages += w.messages;
    for (const auto& [kind, n] : w.by_kind) by_kind[kind] += n;
    last_watch_end = std::max(last_watch_end, w.end);
  }
  const double watch_s = Ms(start, last_watch_end) / 1000.0;

  std::printf("\ntasks dispatched:        %lld (%zu distinct keys)\n",
              static_cast<long long>(leases), tally.leases_by_key.size());
  for (size_t j = 0; j < job_ids.size(); ++j) {
    const JobStatus& s = final_status[j];
    std::printf(
        "  job %s: %lld leased under it, state %s, computed %lld, cached "
        "%lld\n",
        job_ids[j].c_str(),
        static_cast<long long>(tally.leases_by_job[job_ids[j]]),
        JobState_Name(s.state()).c_str(), static_cast<long long>(s.computed()),
        static_cast<long long>(s.cached()));
  }
  std::printf(
      "dispatch period:         %.3f s (first lease to last completion)\n",
      dispatch_s);
  std::printf("tasks dispatched per s:  %.1f\n",
              dispatch_s > 0 ? static_cast<double>(leases) / dispatch_s : 0.0);
  const auto& tl = tally.task_lease_ms;
  const auto& el = tally.empty_lease_ms;
  std::printf(
      "lease latency, with a task (%zu):  p50 %.3f ms  p99 %.3f ms  max %.3f "
      "ms\n",
      tl.size(), Percentile(tl, 0.5), Percentile(tl, 0.99),
      tl.empty() ? 0.0 : tl.back());
  std::printf(
      "lease latency, empty (%zu):        p50 %.3f ms  p99 %.3f ms  max %.3f "
      "ms\n",
      el.size(), Percentile(el, 0.5), Percentile(el, 0.99),
      el.empty() ? 0.0 : el.back());
  const auto& cl = tally.complete_ms;
  std::printf(
      "CompleteTask latency (%zu):        p50 %.3f ms  p99 %.3f ms  max %.3f "
      "ms\n",
      cl.size(), Percentile(cl, 0.5), Percentile(cl, 0.99),
      cl.empty() ? 0.0 : cl.back());
  std::printf(
      "watch events delivered:  %lld to %d streams in %.3f s: %.1f events/s "
      "in %lld messages\n",
      static_cast<long long>(events), o.watchers, watch_s,
      watch_s > 0 ? static_cast<double>(events) / watch_s : 0.0,
      static_cast<long long>(messages));
  if (events > 0 && tally.any_lease) {
    // The feed keeps every event, so a watcher that falls behind catches up
    // after the job; this is how far behind the slowest one was.
    std::printf("  last watcher done %.3f s after the last completion\n",
                Ms(tally.last_completion, last_watch_end) / 1000.0);
  }
  if (events > 0) {
    std::printf("  by kind:");
    const auto* descriptor = JobEvent::descriptor();
    for (const auto& [kind, n] : by_kind) {
      const auto* field = descriptor->FindFieldByNumber(kind);
      std::printf(" %s %lld", field != nullptr ? field->name().c_str() : "?",
                  static_cast<long long>(n));
    }
    std::printf("\n");
  }
  const double run_s = Ms(start, end) / 1000.0;
  std::printf(
      "whole run:               %.3f s, CPU %.1f s of this process "
      "(%.2f cores; %s)\n",
      run_s, cpu_s, run_s > 0 ? cpu_s / run_s : 0.0,
      o.server.empty() ? "server and all clients" : "clients only");
  if (server_stats.has_value()) {
    const server::ServerStats& st = *server_stats;
    std::printf(
        "server writer thread:    %lld writes in %lld transactions (largest "
        "%lld), busy %.3f s (%.0f %% of the run)\n",
        static_cast<long long>(st.writes),
        static_cast<long long>(st.write_groups),
        static_cast<long long>(st.largest_group), st.writer_busy_seconds,
        run_s > 0 ? 100.0 * st.writer_busy_seconds / run_s : 0.0);
  }

  std::printf("\nchecks:\n");
  int failed = 0;
  int finished = 0;
  for (const JobStatus& s : final_status) finished += s.state() == JOB_FINISHED;
  failed += Check(finished == o.jobs,
                  absl::StrCat(finished, " of ", o.jobs, " job(s) FINISHED"));
  int64_t left = 0;
  for (const JobStatus& s : final_status) {
    left += s.tasks_pending() + s.tasks_running();
  }
  failed += Check(left == 0, absl::StrCat(left,
                                          " task(s) left pending or "
                                          "running in the jobs"));
  int64_t twice = 0;
  for (const auto& [key, l] : tally.leases_by_key) twice += l.size() > 1;
  int64_t task_twice = 0;
  for (const auto& [id, n] : tally.leases_by_task) task_twice += n > 1;
  failed += Check(twice == 0 && task_twice == 0,
                  absl::StrCat(twice, " key(s) and ", task_twice,
                               " task id(s) leased more than once"));
  failed += Check(
      tally.rejected == 0 && tally.duplicates == 0,
      absl::StrCat(tally.completed, " completions accepted, ", tally.rejected,
                   " rejected, ", tally.duplicates, " duplicate"));
  failed += Check(tally.completed == leases,
                  absl::StrCat(leases - tally.completed,
                               " leased task(s) not accepted as complete"));
  if (stored_results >= 0) {
    failed += Check(
        stored_results == static_cast<int64_t>(tally.leases_by_key.size()),
        absl::StrCat(stored_results, " results stored for ",
                     tally.leases_by_key.size(), " distinct keys run"));
  }
  failed += Check(
      tally.rpc_errors == 0,
      absl::StrCat(tally.rpc_errors, " RegisterWorker/LeaseTask error(s)"));
  int saw_end = 0, in_order = 0, clean = 0;
  for (const WatchOutcome& w : watches) {
    saw_end += w.saw_ended && w.ended_state == JOB_FINISHED;
    in_order += w.in_order;
    clean += w.status.ok();
  }
  failed += Check(saw_end == o.watchers,
                  absl::StrCat(saw_end, " of ", o.watchers,
                               " watch streams saw `ended` (FINISHED)"));
  failed += Check(
      in_order == o.watchers && clean == o.watchers,
      absl::StrCat(in_order, " of ", o.watchers,
                   " streams had every event in order, ", clean, " ended OK"));
  int shown = 0;
  for (const auto& [key, l] : tally.leases_by_key) {
    if (l.size() < 2 || ++shown > 5) continue;
    std::printf("  key %s leased %zu times:", key.substr(0, 16).c_str(),
                l.size());
    for (const std::string& d : l) std::printf(" [%s]", d.c_str());
    std::printf("\n");
  }
  for (const std::string& e : tally.errors)
    std::printf("  error: %s\n", e.c_str());
  for (const WatchOutcome& w : watches) {
    if (!w.status.ok()) {
      std::printf("  watch error: %s\n", w.status.error_message().c_str());
      break;
    }
  }
  for (size_t j = 0; j < final_status.size(); ++j) {
    if (!final_status[j].error().empty()) {
      std::printf("  job %s error: %s\n", job_ids[j].c_str(),
                  final_status[j].error().c_str());
    }
  }
  std::printf("%s\n", failed == 0
                          ? "all checks passed"
                          : absl::StrCat(failed, " check(s) failed").c_str());
  return failed == 0 ? 0 : 1;
}

}  // namespace
}  // namespace autoq::bench

int main(int argc, char** argv) {
  absl::StatusOr<int> rc = autoq::bench::Main(argc, argv);
  if (!rc.ok()) {
    std::fprintf(stderr, "service_load_bench: error: %s\n",
                 std::string(rc.status().message()).c_str());
    return 2;
  }
  return *rc;
}
