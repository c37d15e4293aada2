// The chaos soak of the service: a real autoq-server (child process), no-op
// worker processes (this program in its --worker mode, see worker.cc) and
// WatchJob streams run jobs of thousands of tasks while faults are injected
// at random: workers SIGKILLed (and replaced), the server SIGKILLed and
// restarted on the same port and database, workers SIGSTOPped for longer
// than a lease while they hold one, watch streams dropped and resumed with
// `after_seq`. Then everything is stopped and the service's promises are
// checked on the jobs, the workers' event logs, the watchers' streams and
// the database:
//   1. every job FINISHED;
//   2. every key leased has one stored result, and every result a lease;
//   3. a key was leased again only after a fault interrupted a lease of it
//      (leases - 1 <= interrupted leases), and no lease vanished without
//      a fault;
//   4. no completion was accepted twice (one `done` per key);
//   5. every watcher saw every generation and `ended` (FINISHED), with
//      sequence numbers contiguous across its resumes;
//   6. the database passes PRAGMA integrity_check.
// Prints [ok]/[FAIL] per check and the figures; exits 1 if a check failed,
// 2 on a setup error. `--short` is the CTest test; bench/run_soak.sh runs
// the long version.
#include "tests/soak/soak.h"

#include <fcntl.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <sqlite3.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/flags.h"
#include "common/file_util.h"
#include "common/rpc_util.h"
#include "proto/autoq.grpc.pb.h"

#ifndef AUTOQ_SERVER_BINARY
#define AUTOQ_SERVER_BINARY "autoq-server"
#endif

namespace autoq::soak {
namespace {

constexpr char kUsage[] =
    "usage: autoq_soak [--short] [flags]\n"
    "  Runs autoq-server, no-op worker processes and watchers under random\n"
    "  faults, then checks the service's promises (see tests/soak/soak.cc).\n"
    "  --short                 the CTest preset: 6 workers, 4 watchers, 1 "
    "round\n"
    "                          of 2 jobs of 256 x 6, 3 server kills, 110 s\n"
    "  --seed N                seed of the faults and the jobs (default: "
    "random)\n"
    "  --workers N             worker processes (8)\n"
    "  --watchers N            watch streams per round, spread over its jobs "
    "(8)\n"
    "  --jobs N                jobs per round, run at the same time (3)\n"
    "  --rounds N              rounds of jobs, one after the other (20)\n"
    "  --population N          NSGA-II population of each job (512)\n"
    "  --generations N         generations of each job (8)\n"
    "  --lease-seconds N       the server's lease (3; heartbeat 1 s)\n"
    "  --slow-ms N             a worker's pause between lease and completion\n"
    "                          (10)\n"
    "  --worker-kill-ms N      mean time between worker SIGKILLs (5000)\n"
    "  --server-kill-ms N      mean time between server SIGKILLs (30000)\n"
    "  --server-kills N        at most this many server kills (100)\n"
    "  --stop-ms N             mean time between worker SIGSTOPs (10000)\n"
    "  --drop-ms N             mean time between dropped watch streams (2000)\n"
    "  --min-leases N          fail if fewer tasks were leased (1000)\n"
    "  --min-server-kills N    fail if fewer server kills happened (2)\n"
    "  --timeout-seconds N     fail if the jobs have not ended by then (1200)\n"
    "  --model PATH            TorchScript model (default: the fixture\n"
    "                          $AUTOQ_FIXTURES/small_dscnn.pt)\n"
    "  --server-binary PATH    autoq-server to run (default: the build's)\n"
    "  --keep                  keep the temp folder (logs, database)\n"
    "  --verbose               print every fault as it is injected\n";

struct Options {
  uint64_t seed = 0;
  int workers = 8;
  int watchers = 8;
  int jobs = 3;
  int rounds = 20;
  int population = 512;
  int generations = 8;
  int lease_seconds = 3;
  int slow_ms = 10;
  int worker_kill_ms = 5000;
  int server_kill_ms = 30000;
  int server_kills = 100;
  int stop_ms = 10000;
  int drop_ms = 2000;
  int min_leases = 1000;
  int min_server_kills = 2;
  int timeout_seconds = 1200;
  std::string model;
  std::string server_binary = AUTOQ_SERVER_BINARY;
  bool keep = false;
  bool verbose = false;
};

absl::StatusOr<Options> ParseOptions(int argc, char** argv) {
  FlagSpec spec;
  spec.with_value = {"seed",
                     "workers",
                     "watchers",
                     "jobs",
                     "rounds",
                     "population",
                     "generations",
                     "lease-seconds",
                     "slow-ms",
                     "worker-kill-ms",
                     "server-kill-ms",
                     "server-kills",
                     "stop-ms",
                     "drop-ms",
                     "min-leases",
                     "min-server-kills",
                     "timeout-seconds",
                     "model",
                     "server-binary"};
  spec.boolean = {"short", "keep", "verbose", "help"};
  absl::StatusOr<Flags> flags = Flags::Parse(argc, argv, 1, spec);
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
  if (flags->Has("short")) {
    // About 2 700 tasks: 30-40 s on 2 cores with the faults, room under the
    // 110 s limit for slow restarts and a busy machine.
    o.workers = 6;
    o.watchers = 4;
    o.jobs = 2;
    o.rounds = 1;
    o.population = 256;
    o.generations = 6;
    o.worker_kill_ms = 4000;
    o.server_kill_ms = 4000;
    o.server_kills = 3;
    o.stop_ms = 7000;
    o.drop_ms = 1500;
    o.timeout_seconds = 110;
  }
  struct IntFlag {
    const char* name;
    int* value;
    int min, max;
  };
  for (const IntFlag& f : {
           IntFlag{"workers", &o.workers, 2, 64},
           IntFlag{"watchers", &o.watchers, 1, 64},
           IntFlag{"jobs", &o.jobs, 1, 16},
           IntFlag{"rounds", &o.rounds, 1, 1000},
           IntFlag{"population", &o.population, 8, 4096},
           IntFlag{"generations", &o.generations, 0, 1000},
           IntFlag{"lease-seconds", &o.lease_seconds, 2, 60},
           IntFlag{"slow-ms", &o.slow_ms, 0, 10000},
           IntFlag{"worker-kill-ms", &o.worker_kill_ms, 100, 3600000},
           IntFlag{"server-kill-ms", &o.server_kill_ms, 1000, 3600000},
           IntFlag{"server-kills", &o.server_kills, 0, 100000},
           IntFlag{"stop-ms", &o.stop_ms, 100, 3600000},
           IntFlag{"drop-ms", &o.drop_ms, 100, 3600000},
           IntFlag{"min-leases", &o.min_leases, 0, 100000000},
           IntFlag{"min-server-kills", &o.min_server_kills, 0, 100000},
           IntFlag{"timeout-seconds", &o.timeout_seconds, 10, 86400},
       }) {
    absl::StatusOr<int> v = flags->GetIntIn(f.name, *f.value, f.min, f.max);
    if (!v.ok()) return v.status();
    *f.value = *v;
  }
  if (flags->Has("seed")) {
    if (!absl::SimpleAtoi(flags->Get("seed"), &o.seed)) {
      return absl::InvalidArgumentError("--seed must be an unsigned number");
    }
  } else {
    o.seed = (uint64_t{std::random_device{}()} << 32) ^ std::random_device{}();
    o.seed %= 1000000000;  // short enough to type back in
  }
  const char* fixtures = std::getenv("AUTOQ_FIXTURES");
  o.model = flags->Get(
      "model", absl::StrCat(fixtures != nullptr ? fixtures : "build/fixtures",
                            "/small_dscnn.pt"));
  o.server_binary = flags->Get("server-binary", o.server_binary);
  o.keep = flags->Has("keep");
  o.verbose = flags->Has("verbose");
  return o;
}

absl::Status WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) return absl::InternalError(absl::StrCat(path, ": cannot write"));
  return absl::OkStatus();
}

// The last complete line of a file ("" if none): how the orchestrator sees
// what a worker is doing right now without reading its whole log.
std::string LastLine(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  struct stat st {};
  std::string tail;
  if (fstat(fd, &st) == 0 && st.st_size > 0) {
    const off_t n = std::min<off_t>(st.st_size, 512);
    tail.resize(static_cast<size_t>(n));
    const ssize_t got = pread(fd, tail.data(), tail.size(), st.st_size - n);
    tail.resize(got > 0 ? static_cast<size_t>(got) : 0);
  }
  close(fd);
  if (tail.empty() || tail.back() != '\n') return "";
  tail.pop_back();
  const size_t nl = tail.rfind('\n');
  return nl == std::string::npos ? tail : tail.substr(nl + 1);
}

// A channel with a connection of its own (each stands for a process),
// reconnecting within a second after a server restart.
std::shared_ptr<grpc::Channel> OwnChannel(const std::string& target) {
  ChannelOptions options;
  options.target = target;
  options.own_connection = true;
  options.max_reconnect_backoff_ms = 1000;
  return *MakeChannel(options);  // plain TCP to a non-empty target
}

// ---------------------------------------------------------------------------
// Child processes.

// Starts `args` (args[0] the program) with stdout and stderr appended to
// `out_path`. The child dies with this process (PR_SET_PDEATHSIG), so a
// crashed or killed soak leaves no server or worker behind; `own_group`
// puts it in a process group of its own, so a kill reaches its children
// too (the server's model-analysis child).
absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& args,
                            const std::string& out_path, bool own_group) {
  std::vector<char*> argv;
  for (const std::string& a : args)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const int out =
      open(out_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (out < 0)
    return absl::InternalError(absl::StrCat(out_path, ": cannot open"));
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    // Only async-signal-safe calls until exec: this process has threads.
    if (own_group) setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    const int in = open("/dev/null", O_RDONLY);
    if (in >= 0) dup2(in, 0);
    dup2(out, 1);
    dup2(out, 2);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(out);
  if (pid < 0) return absl::InternalError("fork failed");
  if (own_group) setpgid(pid, pid);  // also here: no race with the child's
  return pid;
}

// Waits up to `ms` for `pid` to exit; its wait status, or nullopt.
std::optional<int> WaitExit(pid_t pid, int64_t ms) {
  const int64_t until = MonoMs() + ms;
  while (true) {
    int status = 0;
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0) return 0;  // not ours any more (already reaped)
    if (MonoMs() >= until) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

std::string DescribeStatus(int status) {
  if (WIFEXITED(status)) return absl::StrCat("exit ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return absl::StrCat("signal ", WTERMSIG(status));
  return absl::StrCat("status ", status);
}

// One worker process, from its start to its end.
struct WorkerProc {
  int index = 0;  // worker-<index>.log
  pid_t pid = -1;
  std::string log;  // its event log
  int64_t started_ms = 0;
  int64_t killed_ms = -1;  // SIGKILLed by a fault
  bool running = true;
  std::string end;  // how it ended, when not by a fault
  std::vector<std::pair<int64_t, int64_t>> stops;  // SIGSTOP, SIGCONT times
};

struct Fault {
  int64_t t_ms = 0;
  std::string kind;    // worker-kill, server-kill, worker-stop, watch-drop
  std::string detail;  // the pid and log it hit
};

// ---------------------------------------------------------------------------
// Watchers.

constexpr int kSeqStartBits = 40;  // server/job_manager.cc Recover
constexpr int64_t kSeqMask = (int64_t{1} << kSeqStartBits) - 1;

struct WatchReport {
  int index = 0;
  std::string job_id;
  int64_t events = 0;
  std::set<int> generations;
  bool ended = false;
  JobState state = JOB_STATE_UNSPECIFIED;
  int connects = 0;
  int drops = 0;     // streams cancelled by the soak
  int restarts = 0;  // jumps to a restarted server's numbering
  int64_t seq_errors = 0;
  std::vector<std::string> seq_notes;  // the first few
  std::string last_error;              // last stream error
};

// One watcher: a thread reading WatchJob, resuming with after_seq = the
// last sequence number seen whenever the stream ends before `ended`
// (dropped by the soak, or the server went away).
class Watcher {
 public:
  Watcher(int index, const std::string& target, std::string token,
          std::string job_id, int64_t deadline_ms)
      : target_(target),
        stub_(JobService::NewStub(OwnChannel(target))),
        token_(std::move(token)),
        deadline_ms_(deadline_ms) {
    report_.index = index;
    report_.job_id = std::move(job_id);
  }
  ~Watcher() {
    Stop();
    if (thread_.joinable()) thread_.join();
  }

  void Start() {
    thread_ = std::thread([this] { Run(); });
  }

  // Cancels the current stream if it is delivering; the watcher resumes.
  bool Drop() {
    std::lock_guard<std::mutex> lock(mu_);
    if (ctx_ == nullptr || !live_ || done_) return false;
    drop_pending_ = true;
    ctx_->TryCancel();
    return true;
  }

  // Whether a server restart now would lose this watcher nothing it is
  // owed: it saw its job end, or its current stream delivers.
  bool Live() {
    std::lock_guard<std::mutex> lock(mu_);
    return done_ || live_;
  }

  bool Done() {
    std::lock_guard<std::mutex> lock(mu_);
    return done_;
  }

  int index() const { return report_.index; }

  void Stop() {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    if (ctx_ != nullptr) ctx_->TryCancel();
  }

  WatchReport Join() {
    if (thread_.joinable()) thread_.join();
    return report_;
  }

 private:
  void Run() {
    int64_t backoff_ms = 100;
    while (true) {
      auto ctx = std::make_unique<grpc::ClientContext>();
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stop_) break;
        ctx_ = ctx.get();
        live_ = false;
      }
      PrepareContext(ctx.get(), token_,
                     std::chrono::milliseconds(
                         std::max<int64_t>(1000, deadline_ms_ - MonoMs())));
      WatchJobRequest request;
      request.set_job_id(report_.job_id);
      request.set_after_seq(last_seq_);
      ++report_.connects;
      std::unique_ptr<grpc::ClientReader<JobEvents>> reader =
          stub_->WatchJob(ctx.get(), request);
      JobEvents batch;
      while (reader->Read(&batch)) {
        {
          std::lock_guard<std::mutex> lock(mu_);
          live_ = true;
        }
        for (const JobEvent& e : batch.events()) Take(e);
        if (report_.ended) {
          // Nothing follows `ended`; do not wait for the server to close.
          ctx->TryCancel();
        }
      }
      const grpc::Status status = reader->Finish();
      bool dropped = false;
      {
        std::lock_guard<std::mutex> lock(mu_);
        ctx_ = nullptr;
        live_ = false;
        dropped = drop_pending_;
        drop_pending_ = false;
        if (report_.ended) done_ = true;
        if (done_ || stop_) break;
      }
      if (dropped) {
        ++report_.drops;
        backoff_ms = 100;
        continue;  // resume at once: the drop is the fault, not an outage
      }
      if (!status.ok()) {
        report_.last_error =
            absl::StrCat(status.error_code(), " ", status.error_message());
      }
      if (MonoMs() > deadline_ms_) break;
      // A fresh channel: gRPC's own reconnect of a channel whose calls
      // failed while the server was down can lag the restart by 10-20 s
      // (bench/README.md, "Chaos soak"), which is not what is soaked here.
      stub_ = JobService::NewStub(OwnChannel(target_));
      std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms));
      backoff_ms = std::min<int64_t>(backoff_ms * 2, 1000);
    }
    std::lock_guard<std::mutex> lock(mu_);
    done_ = true;
  }

  // Sequence numbers go 1, 2, 3, ... within one server start; a restarted
  // server numbers from (starts << 40) + 1, so a resume across a restart
  // jumps to such a number. Anything else is a gap or a repeat.
  void Take(const JobEvent& e) {
    ++report_.events;
    const int64_t seq = e.seq();
    bool ok = true;
    if (last_seq_ == 0) {
      ok = (seq & kSeqMask) == 1;
    } else if (seq == last_seq_ + 1) {
      ok = true;
    } else if ((seq >> kSeqStartBits) > (last_seq_ >> kSeqStartBits) &&
               (seq & kSeqMask) == 1) {
      ++report_.restarts;
    } else {
      ok = false;
    }
    if (!ok) {
      ++report_.seq_errors;
      if (report_.seq_notes.size() < 3) {
        report_.seq_notes.push_back(
            absl::StrCat("seq ", seq, " after ", last_seq_));
      }
    }
    last_seq_ = std::max(last_seq_, seq);
    if (e.has_generation())
      report_.generations.insert(e.generation().generation());
    if (e.has_ended()) {
      report_.ended = true;
      report_.state = e.ended().state();
    }
  }

  const std::string target_;
  std::unique_ptr<JobService::Stub> stub_;  // used by the thread only
  const std::string token_;
  const int64_t deadline_ms_;
  std::thread thread_;
  // Written by the watcher's thread only, read after Join.
  WatchReport report_;
  int64_t last_seq_ = 0;
  std::mutex mu_;
  grpc::ClientContext* ctx_ = nullptr;  // guarded by mu_: current stream
  bool live_ = false;          // guarded by mu_: it delivered something
  bool drop_pending_ = false;  // guarded by mu_
  bool stop_ = false;          // guarded by mu_
  bool done_ = false;          // guarded by mu_
};

// ---------------------------------------------------------------------------
// The job API.

absl::StatusOr<std::string> SubmitJob(JobService::Stub* stub,
                                      const std::string& token,
                                      const Options& o, int index,
                                      uint32_t seed, int recipe_seed,
                                      const std::string& model) {
  const std::string json = absl::StrCat(R"({
    "name": "soak-)",
                                        index, R"(",
    "model": {"path": "model.pt"},
    "dataset": {"spec": "fashion-mnist", "val_subset": 100,
                "test_subset": 100},
    "search": {"population": )",
                                        o.population, R"(,
               "generations": )",
                                        o.generations, R"(,
               "seed": )",
                                        seed, R"(,
               "qat": {"epochs": 1, "train_subset": 64,
                       "seed": )",
                                        recipe_seed, R"(}},
    "final_front": {"recipe": {"epochs": 1, "train_subset": 64,
                               "seed": )",
                                        recipe_seed, R"(},
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
  for (size_t at = 0; ok && at < model.size(); at += kChunkBytes) {
    SubmitJobRequest chunk;
    chunk.set_model_chunk(model.substr(at, kChunkBytes));
    ok = writer->Write(chunk);
  }
  writer->WritesDone();
  const grpc::Status st = writer->Finish();
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
  PrepareContext(&ctx, token, std::chrono::seconds(2));
  GetJobRequest request;
  request.set_job_id(job_id);
  JobStatus status;
  const grpc::Status st = stub->GetJob(&ctx, request, &status);
  if (!st.ok()) return ToAbsl(st);
  return status;
}

bool Ended(JobState s) {
  return s == JOB_FINISHED || s == JOB_FAILED || s == JOB_CANCELLED;
}

// ---------------------------------------------------------------------------
// The worker logs, read back.

struct Outcome {
  std::string kind;  // done, dup, rejected, rpcfail, abandoned
  int64_t t_ms = 0;
  std::string code;
};

struct LeaseRecord {
  int worker = 0;  // index into the workers
  std::string task_id, key, job_id, stage;
  int64_t t_request = 0, t_lease = 0;
  std::vector<Outcome> outcomes;
  // Filled by Classify.
  bool interrupted = false;
  std::string why;  // killed, server down, stopped, server killed; or lost
};

struct LogReading {
  std::vector<LeaseRecord> leases;
  std::vector<std::string> malformed;  // the first few bad lines
  int64_t malformed_count = 0;
};

void ReadWorkerLog(const WorkerProc& w, LogReading* out) {
  absl::StatusOr<std::string> text = ReadFile(w.log);
  if (!text.ok()) return;
  int64_t open = -1;  // the lease in hand: index into out->leases
  auto bad = [&](absl::string_view line) {
    ++out->malformed_count;
    if (out->malformed.size() < 5) {
      out->malformed.push_back(absl::StrCat(w.log, ": ", line));
    }
  };
  for (absl::string_view line :
       absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
    std::vector<std::string> f = absl::StrSplit(line, ' ');
    int64_t t = 0;
    if (f.size() < 2 || !absl::SimpleAtoi(f[0], &t)) {
      bad(line);
      continue;
    }
    const std::string& kind = f[1];
    if (kind == "lease") {
      LeaseRecord r;
      if (f.size() != 7 || !absl::SimpleAtoi(f[6], &r.t_request)) {
        bad(line);
        continue;
      }
      r.worker = w.index;
      r.task_id = f[2];
      r.key = f[3];
      r.job_id = f[4];
      r.stage = f[5];
      r.t_lease = t;
      if (open >= 0 && out->leases[open].outcomes.empty()) {
        bad(absl::StrCat(line, " (while task ", out->leases[open].task_id,
                         " was in hand)"));
      }
      out->leases.push_back(std::move(r));
      open = static_cast<int64_t>(out->leases.size()) - 1;
    } else if (kind == "done" || kind == "dup" || kind == "rejected" ||
               kind == "rpcfail" || kind == "abandoned") {
      if (open < 0 || f.size() < 3 || out->leases[open].task_id != f[2]) {
        bad(line);
        continue;
      }
      out->leases[open].outcomes.push_back(
          Outcome{kind, t, f.size() > 3 ? f[3] : ""});
      if (kind != "rpcfail") open = -1;
    } else if (kind != "start" && kind != "register" && kind != "exit") {
      bad(line);
    }
  }
}

// Decides whether a fault interrupted the lease: its worker was killed
// before answering it, the server was down when the worker answered, or
// the answer was refused (or came too late) after the worker was stopped
// or the server killed while it held the lease. `lost`: a lease with no
// outcome and no fault that explains it.
void Classify(LeaseRecord* r, const std::vector<WorkerProc>& workers,
              const std::vector<int64_t>& server_kills) {
  const WorkerProc& w = workers[r->worker];
  if (r->outcomes.empty()) {
    r->interrupted = w.killed_ms >= 0;
    r->why = r->interrupted ? "worker killed" : "lost";
    return;
  }
  for (const Outcome& o : r->outcomes) {
    if (o.kind == "rpcfail") {
      r->interrupted = true;
      r->why = "server down";
      return;
    }
  }
  const Outcome& last = r->outcomes.back();
  if (last.kind == "done") return;
  // From the LeaseTask request (a stop can catch the answer in flight) to
  // the refused or duplicate completion.
  const int64_t from = r->t_request, to = last.t_ms;
  for (const auto& [stopped, resumed] : w.stops) {
    if (stopped <= to && resumed >= from) {
      r->interrupted = true;
      r->why = "worker stopped";
      return;
    }
  }
  for (int64_t k : server_kills) {
    if (k >= from && k <= to) {
      r->interrupted = true;
      r->why = "server killed";
      return;
    }
  }
  r->why = absl::StrCat(last.kind, " without a fault");
}

// ---------------------------------------------------------------------------
// The database, read back with SQLite's C API, read-only.

struct DbReading {
  std::map<std::string, int64_t> results;  // key -> rows
  std::string integrity;
  std::string error;
};

DbReading ReadDatabase(const std::string& path) {
  DbReading out;
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) !=
      SQLITE_OK) {
    out.error = absl::StrCat("open ", path, ": ",
                             db != nullptr ? sqlite3_errmsg(db) : "?");
    sqlite3_close(db);
    return out;
  }
  sqlite3_busy_timeout(db, 5000);
  auto query = [&](const char* sql, auto&& row) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) != SQLITE_OK) {
      out.error = absl::StrCat(sql, ": ", sqlite3_errmsg(db));
      return;
    }
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) row(stmt);
    if (rc != SQLITE_DONE)
      out.error = absl::StrCat(sql, ": ", sqlite3_errmsg(db));
    sqlite3_finalize(stmt);
  };
  auto text = [](sqlite3_stmt* s, int col) {
    const unsigned char* p = sqlite3_column_text(s, col);
    return p == nullptr ? std::string()
                        : std::string(reinterpret_cast<const char*>(p));
  };
  query("SELECT key, COUNT(*) FROM results GROUP BY key", [&](sqlite3_stmt* s) {
    out.results[text(s, 0)] = sqlite3_column_int64(s, 1);
  });
  query("PRAGMA integrity_check", [&](sqlite3_stmt* s) {
    if (!out.integrity.empty()) out.integrity += "; ";
    out.integrity += text(s, 0);
  });
  sqlite3_close(db);
  return out;
}

int Check(bool ok, const std::string& what) {
  std::printf("  [%s] %s\n", ok ? "ok" : "FAIL", what.c_str());
  return ok ? 0 : 1;
}

// ---------------------------------------------------------------------------
// The soak.

class Soak {
 public:
  explicit Soak(Options o) : o_(std::move(o)), rng_(o_.seed) {}
  ~Soak() { KillAll(); }

  absl::StatusOr<int> Run();

 private:
  std::string File(const std::string& name) const { return dir_ + "/" + name; }
  double Since(int64_t t0) const { return (MonoMs() - t0) / 1000.0; }
  int64_t Jitter(int mean_ms) {
    return std::uniform_int_distribution<int64_t>(mean_ms / 2,
                                                  mean_ms * 3 / 2)(rng_);
  }
  void Note(const std::string& kind, const std::string& detail) {
    faults_.push_back(Fault{MonoMs(), kind, detail});
    if (o_.verbose) {
      std::printf("  %7.2f s  %-11s %s\n", Since(t0_), kind.c_str(),
                  detail.c_str());
      std::fflush(stdout);
    }
  }

  absl::Status StartServer();
  absl::Status StartWorker();
  void KillServer();
  void KillWorker();
  bool StopWorker();
  void ResumeWorker();
  void DropWatcher();
  bool WatchersLive();
  void ReapUnexpected();
  void KillAll();
  int Report(const std::vector<std::string>& job_ids,
             const std::vector<JobStatus>& final_status,
             const std::vector<WatchReport>& watches, double run_s);

  const Options o_;
  std::mt19937_64 rng_;
  std::string dir_;
  std::string server_binary_;  // the copy in dir_
  std::string client_token_;
  int64_t t0_ = 0;
  int port_ = 0;
  pid_t server_pid_ = -1;
  int server_starts_ = 0;
  std::vector<int64_t> server_kill_ms_;
  std::vector<double> restart_s_;     // kill to listening again
  std::vector<std::string> crashes_;  // children that ended on their own
  std::vector<WorkerProc> workers_;
  int stopped_ = -1;  // index of the SIGSTOPped worker, -1 none
  int64_t resume_at_ms_ = 0;
  std::vector<std::unique_ptr<Watcher>> watchers_;  // the current round's
  std::vector<Fault> faults_;
  std::string failure_;  // setup failure during the run
};

absl::Status Soak::StartServer() {
  const int n = ++server_starts_;
  const std::string log = File(absl::StrCat("server-", n, ".log"));
  const int64_t t = MonoMs();
  absl::StatusOr<pid_t> pid =
      Spawn({server_binary_, "--listen", absl::StrCat("127.0.0.1:", port_),
             "--db", File("server.db"), "--client-tokens", File("clients"),
             "--worker-tokens", File("workers"), "--lease-seconds",
             absl::StrCat(o_.lease_seconds), "--heartbeat-seconds", "1",
             // Leases held at a restart get this long: as long as a lease, so a
             // task whose worker died with the server is not stuck for 30 s.
             "--restart-grace-seconds", absl::StrCat(o_.lease_seconds),
             "--max-jobs-per-client", absl::StrCat(std::max(4, o_.jobs))},
            log, /*own_group=*/true);
  if (!pid.ok()) return pid.status();
  server_pid_ = *pid;
  // Ready once it logs its port (the first start picks a free one).
  static const std::regex listening(R"(listening on port (\d+))");
  while (true) {
    absl::StatusOr<std::string> text = ReadFile(log);
    std::smatch m;
    if (text.ok() && std::regex_search(*text, m, listening)) {
      port_ = std::stoi(m[1]);
      break;
    }
    if (std::optional<int> status = WaitExit(server_pid_, 0)) {
      server_pid_ = -1;
      return absl::InternalError(absl::StrCat("autoq-server ended at start (",
                                              DescribeStatus(*status),
                                              "): ", text.ok() ? *text : ""));
    }
    if (MonoMs() - t > 60000) {
      return absl::DeadlineExceededError(absl::StrCat(
          "autoq-server not listening after 60 s: ", text.ok() ? *text : ""));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return absl::OkStatus();
}

absl::Status Soak::StartWorker() {
  WorkerProc w;
  w.index = static_cast<int>(workers_.size());
  w.log = File(absl::StrCat("worker-", w.index, ".log"));
  w.started_ms = MonoMs();
  absl::StatusOr<pid_t> pid = Spawn(
      {"/proc/self/exe", "--worker", "--target",
       absl::StrCat("127.0.0.1:", port_), "--token-file", File("worker.token"),
       "--log", w.log, "--name", absl::StrCat("soak-", w.index), "--slow-ms",
       absl::StrCat(o_.slow_ms)},
      File(absl::StrCat("worker-", w.index, ".out")), /*own_group=*/false);
  if (!pid.ok()) return pid.status();
  w.pid = *pid;
  // Started once it logged so (its SIGTERM handler is set by then).
  const int64_t until = MonoMs() + 10000;
  while (LastLine(w.log).empty()) {
    if (MonoMs() > until || WaitExit(w.pid, 0).has_value()) {
      kill(w.pid, SIGKILL);
      WaitExit(w.pid, 5000);
      return absl::InternalError(
          absl::StrCat("worker ", w.index, " did not start: ",
                       ReadFile(File(absl::StrCat("worker-", w.index, ".out")))
                           .value_or("")));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  workers_.push_back(std::move(w));
  return absl::OkStatus();
}

void Soak::KillServer() {
  const int64_t t = MonoMs();
  server_kill_ms_.push_back(t);
  kill(-server_pid_, SIGKILL);
  kill(server_pid_, SIGKILL);
  WaitExit(server_pid_, 10000);
  Note("server-kill",
       absl::StrCat("pid ", server_pid_, ", start ", server_starts_));
  server_pid_ = -1;
  // Down for a while, as a crashed server is before it is restarted.
  std::this_thread::sleep_for(std::chrono::milliseconds(
      std::uniform_int_distribution<int>(100, 1500)(rng_)));
  absl::Status st = StartServer();
  if (!st.ok()) {
    failure_ = absl::StrCat("restart after a kill: ", st.message());
    return;
  }
  restart_s_.push_back((MonoMs() - t) / 1000.0);
}

void Soak::KillWorker() {
  std::vector<int> alive;
  for (const WorkerProc& w : workers_) {
    if (w.running && w.index != stopped_) alive.push_back(w.index);
  }
  if (alive.empty()) return;
  WorkerProc& w = workers_[alive[std::uniform_int_distribution<size_t>(
      0, alive.size() - 1)(rng_)]];
  w.killed_ms = MonoMs();
  kill(w.pid, SIGKILL);
  WaitExit(w.pid, 10000);
  w.running = false;
  Note("worker-kill", absl::StrCat("pid ", w.pid, ", ", w.log));
  absl::Status st = StartWorker();
  if (!st.ok()) failure_ = absl::StrCat("replacing a worker: ", st.message());
}

// Stops a worker that holds a lease (its log's last line is a lease in its
// --slow-ms pause, or a completion it is retrying) for longer than a lease
// and than the server's patience with a silent worker. False when no
// worker holds one right now: the caller tries again on its next turn.
bool Soak::StopWorker() {
  std::vector<int> holding;
  for (const WorkerProc& w : workers_) {
    if (!w.running) continue;
    const std::vector<std::string> f =
        absl::StrSplit(LastLine(w.log), absl::MaxSplits(' ', 2));
    if (f.size() >= 2 && (f[1] == "lease" || f[1] == "rpcfail")) {
      holding.push_back(w.index);
    }
  }
  if (holding.empty()) return false;
  WorkerProc& w = workers_[holding[std::uniform_int_distribution<size_t>(
      0, holding.size() - 1)(rng_)]];
  kill(w.pid, SIGSTOP);
  w.stops.emplace_back(MonoMs(), -1);
  stopped_ = w.index;
  resume_at_ms_ = MonoMs() + 1000 * (o_.lease_seconds + 3);
  Note("worker-stop", absl::StrCat("pid ", w.pid, ", ", w.log));
  return true;
}

void Soak::ResumeWorker() {
  if (stopped_ < 0) return;
  WorkerProc& w = workers_[stopped_];
  kill(w.pid, SIGCONT);
  w.stops.back().second = MonoMs();
  stopped_ = -1;
}

void Soak::DropWatcher() {
  std::vector<Watcher*> live;
  for (const auto& w : watchers_) {
    if (!w->Done()) live.push_back(w.get());
  }
  if (live.empty()) return;
  const size_t i =
      std::uniform_int_distribution<size_t>(0, live.size() - 1)(rng_);
  if (live[i]->Drop()) {
    Note("watch-drop", absl::StrCat("watcher ", live[i]->index()));
  }
}

bool Soak::WatchersLive() {
  for (const auto& w : watchers_) {
    if (!w->Live()) return false;
  }
  return true;
}

// A worker or the server that ended without being killed is a crash.
void Soak::ReapUnexpected() {
  for (WorkerProc& w : workers_) {
    if (!w.running) continue;
    if (std::optional<int> status = WaitExit(w.pid, 0)) {
      w.running = false;
      w.end = DescribeStatus(*status);
      crashes_.push_back(absl::StrCat("worker pid ", w.pid, " (", w.log,
                                      ") ended on its own: ", w.end));
      absl::Status st = StartWorker();
      if (!st.ok()) failure_ = std::string(st.message());
      return;  // workers_ changed
    }
  }
  if (server_pid_ > 0) {
    if (std::optional<int> status = WaitExit(server_pid_, 0)) {
      crashes_.push_back(
          absl::StrCat("autoq-server (start ", server_starts_,
                       ") ended on its own: ", DescribeStatus(*status)));
      server_pid_ = -1;
      absl::Status st = StartServer();
      if (!st.ok()) failure_ = std::string(st.message());
    }
  }
}

void Soak::KillAll() {
  watchers_.clear();
  for (WorkerProc& w : workers_) {
    if (!w.running) continue;
    kill(w.pid, SIGKILL);
    WaitExit(w.pid, 5000);
    w.running = false;
  }
  if (server_pid_ > 0) {
    kill(-server_pid_, SIGKILL);
    kill(server_pid_, SIGKILL);
    WaitExit(server_pid_, 5000);
    server_pid_ = -1;
  }
}

absl::StatusOr<int> Soak::Run() {
  absl::StatusOr<std::string> model = ReadFile(o_.model);
  if (!model.ok()) return model.status();
  std::string tmpl = "/tmp/autoq-soak-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) {
    return absl::InternalError("cannot make a temp folder under /tmp");
  }
  dir_ = tmpl;
  // Children first (they write there), on every way out of Run.
  struct RemoveDir {
    Soak* soak;
    ~RemoveDir() {
      soak->KillAll();
      if (soak->o_.keep) {
        std::printf("kept %s\n", soak->dir_.c_str());
        return;
      }
      std::error_code ec;
      std::filesystem::remove_all(soak->dir_, ec);
    }
  } remove_dir{this};

  auto token = [&] {
    static constexpr char kHex[] = "0123456789abcdef";
    std::random_device rd;
    std::string t;
    for (int i = 0; i < 32; ++i) t += kHex[rd() & 15];
    return t;
  };
  client_token_ = token();
  const std::string worker_token = token();
  for (const auto& [file, text] :
       {std::pair<std::string, std::string>{"clients",
                                            "soak " + client_token_ + "\n"},
        {"workers", "noop " + worker_token + "\n"},
        {"worker.token", worker_token + "\n"}}) {
    absl::Status st = WriteFile(File(file), text);
    if (!st.ok()) return st;
  }

  // A private copy of the server: every restart runs the same program even
  // if the build folder's is relinked meanwhile.
  {
    std::error_code ec;
    std::filesystem::copy_file(o_.server_binary, File("autoq-server"), ec);
    if (ec) {
      return absl::NotFoundError(
          absl::StrCat("cannot copy ", o_.server_binary, ": ", ec.message()));
    }
    server_binary_ = File("autoq-server");
  }

  std::printf(
      "chaos soak: seed %llu, %d worker processes, %d watchers, %d round(s) "
      "of %d job(s) of population %d x %d generations, lease %d s, "
      "slow %d ms, timeout %d s\n",
      static_cast<unsigned long long>(o_.seed), o_.workers, o_.watchers,
      o_.rounds, o_.jobs, o_.population, o_.generations, o_.lease_seconds,
      o_.slow_ms, o_.timeout_seconds);
  std::printf("  folder %s%s\n", dir_.c_str(), o_.keep ? " (kept)" : "");
  std::fflush(stdout);

  t0_ = MonoMs();
  const int64_t deadline = t0_ + int64_t{1000} * o_.timeout_seconds;
  absl::Status st = StartServer();
  if (!st.ok()) return st;
  const std::string target = absl::StrCat("127.0.0.1:", port_);
  for (int i = 0; i < o_.workers; ++i) {
    st = StartWorker();
    if (!st.ok()) return st;
  }
  auto client = JobService::NewStub(OwnChannel(target));

  std::vector<std::string> job_ids;
  std::vector<JobStatus> final_status;
  std::vector<WatchReport> watches;
  int64_t next_worker_kill = MonoMs() + Jitter(o_.worker_kill_ms);
  int64_t next_server_kill = MonoMs() + Jitter(o_.server_kill_ms);
  int64_t next_stop = MonoMs() + Jitter(o_.stop_ms);
  int64_t next_drop = MonoMs() + Jitter(o_.drop_ms);
  int64_t next_progress = MonoMs() + 10000;
  bool timed_out = false;
  for (int round = 0; round < o_.rounds && !timed_out; ++round) {
    // Submitting is not a fault target: the soak's own thread submits, so
    // no kill lands in a SubmitJob (a retried submit could be a second job).
    std::vector<std::string> round_jobs;
    for (int j = 0; j < o_.jobs; ++j) {
      const int index = round * o_.jobs + j;
      const uint32_t job_seed = static_cast<uint32_t>(o_.seed % 100000) * 100 +
                                static_cast<uint32_t>(index) + 1;
      // The recipe's seed is part of every result key: a round's jobs share
      // keys (one task, several waiters), a later round computes anew.
      absl::StatusOr<std::string> id = SubmitJob(
          client.get(), client_token_, o_, index, job_seed, round + 1, *model);
      if (!id.ok()) return id.status();
      round_jobs.push_back(*id);
      job_ids.push_back(*id);
      std::printf("  %7.2f s  round %d: job %s submitted\n", Since(t0_),
                  round + 1, id->c_str());
      std::fflush(stdout);
    }
    watchers_.clear();
    for (int i = 0; i < o_.watchers; ++i) {
      watchers_.push_back(std::make_unique<Watcher>(
          i, target, client_token_, round_jobs[i % round_jobs.size()],
          deadline + 60000));
      watchers_.back()->Start();
    }

    std::vector<JobStatus> status(round_jobs.size());
    int64_t next_poll = 0;
    while (true) {
      const int64_t now = MonoMs();
      if (!failure_.empty()) return absl::InternalError(failure_);
      if (now > deadline) {
        timed_out = true;
        break;
      }
      if (now >= next_poll) {
        next_poll = now + 250;
        bool all_ended = true, reached = true;
        for (size_t j = 0; j < round_jobs.size(); ++j) {
          absl::StatusOr<JobStatus> s =
              GetJob(client.get(), client_token_, round_jobs[j]);
          if (s.ok()) status[j] = *s;
          reached = reached && s.ok();
          all_ended = all_ended && Ended(status[j].state());
        }
        // A fresh channel after a failed poll, as the watchers do.
        if (!reached) client = JobService::NewStub(OwnChannel(target));
        if (all_ended) break;
      }
      if (now >= next_progress) {
        next_progress = now + 10000;
        std::printf("  %7.2f s  progress:", Since(t0_));
        for (const JobStatus& s : status) {
          std::printf(" [%s %s gen %d/%d, %lld computed]", s.job_id().c_str(),
                      s.phase().c_str(), s.generation(), s.generations(),
                      static_cast<long long>(s.computed()));
        }
        std::printf("\n");
        std::fflush(stdout);
      }
      ReapUnexpected();
      if (stopped_ >= 0 && now >= resume_at_ms_) ResumeWorker();
      if (now >= next_worker_kill) {
        KillWorker();
        next_worker_kill = MonoMs() + Jitter(o_.worker_kill_ms);
      }
      if (now >= next_server_kill &&
          static_cast<int>(server_kill_ms_.size()) < o_.server_kills) {
        // Only while every watcher's stream delivers: a history lost with
        // the server is owed to nobody who was connected (the restarted
        // server replays from its restart, and the search re-announces
        // the generation it resumes from).
        if (WatchersLive()) {
          KillServer();
          next_server_kill = MonoMs() + Jitter(o_.server_kill_ms);
        } else {
          next_server_kill = now + 200;
        }
      }
      if (now >= next_stop && stopped_ < 0 && StopWorker()) {
        next_stop = MonoMs() + Jitter(o_.stop_ms);
      }
      if (now >= next_drop) {
        DropWatcher();
        next_drop = MonoMs() + Jitter(o_.drop_ms);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::printf("  %7.2f s  round %d: %s\n", Since(t0_), round + 1,
                timed_out ? "TIMEOUT" : "every job ended");
    std::fflush(stdout);
    // The watchers get their `ended` (they may be resuming); then give up.
    const int64_t watch_until = MonoMs() + (timed_out ? 0 : 30000);
    while (MonoMs() < watch_until) {
      bool all = true;
      for (const auto& w : watchers_) all = all && w->Done();
      if (all) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    for (const auto& w : watchers_) {
      w->Stop();
      watches.push_back(w->Join());
    }
    watchers_.clear();
  }
  const double run_s = Since(t0_);
  ResumeWorker();

  if (timed_out) {
    std::printf(
        "\n[FAIL] timeout: the jobs had not ended after %d s (seed "
        "%llu); statuses:\n",
        o_.timeout_seconds, static_cast<unsigned long long>(o_.seed));
    for (const std::string& id : job_ids) {
      absl::StatusOr<JobStatus> s = GetJob(client.get(), client_token_, id);
      std::printf(
          "  %s: %s\n", id.c_str(),
          s.ok() ? absl::StrCat(JobState_Name(s->state()), ", phase ",
                                s->phase(), ", generation ", s->generation(),
                                ", pending ", s->tasks_pending(), ", running ",
                                s->tasks_running())
                       .c_str()
                 : std::string(s.status().message()).c_str());
    }
    KillAll();
    return 1;
  }

  // Every job's status before the server stops (check 1).
  for (const std::string& id : job_ids) {
    absl::StatusOr<JobStatus> s = GetJob(client.get(), client_token_, id);
    JobStatus status;
    status.set_job_id(id);
    if (s.ok()) status = *s;
    if (!s.ok()) status.set_error(std::string(s.status().message()));
    final_status.push_back(status);
  }
  // Workers stop on SIGTERM after the task in hand; then the server.
  for (WorkerProc& w : workers_) {
    if (w.running) kill(w.pid, SIGTERM);
  }
  for (WorkerProc& w : workers_) {
    if (!w.running) continue;
    std::optional<int> status = WaitExit(w.pid, 10000);
    if (!status.has_value()) {
      kill(w.pid, SIGKILL);
      WaitExit(w.pid, 5000);
      w.end = "did not stop on SIGTERM in 10 s";
      crashes_.push_back(absl::StrCat("worker ", w.log, ": ", w.end));
    } else {
      w.end = DescribeStatus(*status);
      if (!WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
        crashes_.push_back(absl::StrCat("worker ", w.log, " ended ", w.end));
      }
    }
    w.running = false;
  }
  kill(server_pid_, SIGTERM);
  std::optional<int> server_status = WaitExit(server_pid_, 60000);
  if (!server_status.has_value() || !WIFEXITED(*server_status) ||
      WEXITSTATUS(*server_status) != 0) {
    crashes_.push_back(
        absl::StrCat("autoq-server did not stop cleanly on SIGTERM: ",
                     server_status.has_value() ? DescribeStatus(*server_status)
                                               : "still running after 60 s"));
  }
  kill(-server_pid_, SIGKILL);  // anything of its group left
  if (!server_status.has_value()) {
    kill(server_pid_, SIGKILL);
    WaitExit(server_pid_, 5000);
  }
  server_pid_ = -1;

  // The fault record, for --keep.
  std::string record;
  for (const Fault& f : faults_) {
    absl::StrAppend(&record, f.t_ms, " ", f.kind, " ", f.detail, "\n");
  }
  (void)WriteFile(File("faults.log"), record);
  return Report(job_ids, final_status, watches, run_s);
}

int Soak::Report(const std::vector<std::string>& job_ids,
                 const std::vector<JobStatus>& final_status,
                 const std::vector<WatchReport>& watches, double run_s) {
  LogReading logs;
  for (const WorkerProc& w : workers_) ReadWorkerLog(w, &logs);
  std::map<std::string, std::vector<const LeaseRecord*>> by_key;
  std::map<std::string, int64_t> outcomes, interrupted_by;
  std::vector<const LeaseRecord*> lost, unexplained;
  for (LeaseRecord& r : logs.leases) {
    Classify(&r, workers_, server_kill_ms_);
    by_key[r.key].push_back(&r);
    for (const Outcome& o : r.outcomes) ++outcomes[o.kind];
    if (r.interrupted) ++interrupted_by[r.why];
    if (!r.interrupted && r.outcomes.empty()) lost.push_back(&r);
    if (!r.interrupted && !r.outcomes.empty() &&
        r.outcomes.back().kind != "done") {
      unexplained.push_back(&r);
    }
  }
  const DbReading db = ReadDatabase(File("server.db"));

  std::map<std::string, int> faults_by_kind;
  for (const Fault& f : faults_) ++faults_by_kind[f.kind];
  // A stop caught a lease when one was in hand at the stop and its worker
  // had not settled it yet (its last outcome, if any, came after).
  int stops_with_lease = 0;
  for (const WorkerProc& w : workers_) {
    for (const auto& [stopped, resumed] : w.stops) {
      for (const LeaseRecord& r : logs.leases) {
        if (r.worker != w.index || r.t_lease > stopped) continue;
        if (r.outcomes.empty() || r.outcomes.back().t_ms >= stopped) {
          ++stops_with_lease;
          break;
        }
      }
    }
  }

  // ---- Figures.
  const int64_t leases = static_cast<int64_t>(logs.leases.size());
  const int64_t keys = static_cast<int64_t>(by_key.size());
  std::printf("\nfigures (seed %llu):\n",
              static_cast<unsigned long long>(o_.seed));
  std::printf(
      "  run time:             %.1f s (server start to the last job's "
      "end)\n",
      run_s);
  std::printf("  jobs:                 %zu\n", job_ids.size());
  std::printf("  tasks leased:         %lld\n", static_cast<long long>(leases));
  std::printf("  distinct keys:        %lld\n", static_cast<long long>(keys));
  std::printf("  recomputations:       %lld (leases - distinct keys)\n",
              static_cast<long long>(leases - keys));
  std::printf(
      "  completions:          %lld done, %lld dup, %lld rejected, "
      "%lld rpcfail (retried), %lld abandoned\n",
      static_cast<long long>(outcomes["done"]),
      static_cast<long long>(outcomes["dup"]),
      static_cast<long long>(outcomes["rejected"]),
      static_cast<long long>(outcomes["rpcfail"]),
      static_cast<long long>(outcomes["abandoned"]));
  std::printf(
      "  faults:               %d worker SIGKILL, %d server SIGKILL, "
      "%d worker SIGSTOP (%d caught a lease), %d watch streams "
      "dropped\n",
      faults_by_kind["worker-kill"], faults_by_kind["server-kill"],
      faults_by_kind["worker-stop"], stops_with_lease,
      faults_by_kind["watch-drop"]);
  std::printf("  interrupted leases:  ");
  for (const auto& [why, n] : interrupted_by) {
    std::printf(" %s %lld;", why.c_str(), static_cast<long long>(n));
  }
  std::printf("\n");
  if (!restart_s_.empty()) {
    double sum = 0, most = 0;
    for (double s : restart_s_) {
      sum += s;
      most = std::max(most, s);
    }
    std::printf(
        "  server restarts:      %zu, kill to listening %.2f s mean, "
        "%.2f s max\n",
        restart_s_.size(), sum / restart_s_.size(), most);
  }
  int64_t connects = 0, drops = 0, jumps = 0, watch_events = 0;
  for (const WatchReport& w : watches) {
    connects += w.connects;
    drops += w.drops;
    jumps += w.restarts;
    watch_events += w.events;
  }
  std::printf(
      "  watch streams:        %zu watchers, %lld events; %lld resumed "
      "after a drop, %lld across a server restart (%lld connects in "
      "all, retries included)\n",
      watches.size(), static_cast<long long>(watch_events),
      static_cast<long long>(drops), static_cast<long long>(jumps),
      static_cast<long long>(connects));
  std::printf("  worker processes:     %zu started\n", workers_.size());

  // ---- Checks.
  std::printf("\nchecks:\n");
  int failed = 0;
  int finished = 0;
  for (const JobStatus& s : final_status) finished += s.state() == JOB_FINISHED;
  failed += Check(finished == static_cast<int>(job_ids.size()),
                  absl::StrCat("1. ", finished, " of ", job_ids.size(),
                               " job(s) FINISHED"));
  for (const JobStatus& s : final_status) {
    if (s.state() != JOB_FINISHED) {
      std::printf("       job %s: %s %s\n", s.job_id().c_str(),
                  JobState_Name(s.state()).c_str(), s.error().c_str());
    }
  }

  int64_t without_result = 0, without_lease = 0, not_one = 0;
  for (const auto& [key, list] : by_key) {
    auto it = db.results.find(key);
    if (it == db.results.end()) {
      if (++without_result <= 3) {
        std::printf("       key %s leased, no result\n", key.c_str());
      }
    } else if (it->second != 1) {
      ++not_one;
    }
  }
  for (const auto& [key, n] : db.results) {
    if (by_key.count(key) == 0 && ++without_lease <= 3) {
      std::printf("       result %s was never leased\n", key.c_str());
    }
  }
  failed += Check(db.error.empty() && without_result == 0 &&
                      without_lease == 0 && not_one == 0,
                  absl::StrCat("2. ", keys, " keys leased, ", db.results.size(),
                               " results stored: ", without_result,
                               " leased without a result, ", without_lease,
                               " results never leased, ", not_one,
                               " keys with more than one row",
                               db.error.empty() ? "" : "; " + db.error));

  int64_t over = 0;
  for (const auto& [key, list] : by_key) {
    int64_t interrupted = 0;
    for (const LeaseRecord* r : list) interrupted += r->interrupted;
    if (static_cast<int64_t>(list.size()) - 1 <= interrupted) continue;
    if (++over > 3) continue;
    std::printf("       key %s leased %zu times, %lld interrupted:\n",
                key.c_str(), list.size(), static_cast<long long>(interrupted));
    for (const LeaseRecord* r : list) {
      std::string outs;
      for (const Outcome& o : r->outcomes) {
        absl::StrAppend(&outs, " ", o.kind, "@", o.t_ms);
      }
      std::printf("         task %s by %s at %lld (asked %lld):%s [%s]\n",
                  r->task_id.c_str(), workers_[r->worker].log.c_str(),
                  static_cast<long long>(r->t_lease),
                  static_cast<long long>(r->t_request),
                  outs.empty() ? " no outcome" : outs.c_str(), r->why.c_str());
    }
  }
  failed += Check(over == 0, absl::StrCat("3. ", over,
                                          " key(s) computed more often than "
                                          "faults hit them (leases - 1 > "
                                          "interrupted leases)"));
  for (size_t i = 0; i < lost.size() && i < 3; ++i) {
    std::printf("       task %s (key %s) leased by %s at %lld: no outcome\n",
                lost[i]->task_id.c_str(), lost[i]->key.c_str(),
                workers_[lost[i]->worker].log.c_str(),
                static_cast<long long>(lost[i]->t_lease));
  }
  failed += Check(lost.empty(),
                  absl::StrCat("3. ", lost.size(),
                               " lease(s) without an outcome in a worker that "
                               "was not killed"));
  for (size_t i = 0; i < unexplained.size() && i < 3; ++i) {
    const LeaseRecord* r = unexplained[i];
    std::printf(
        "       task %s (key %s) by %s: leased %lld, %s at %lld\n",
        r->task_id.c_str(), r->key.c_str(), workers_[r->worker].log.c_str(),
        static_cast<long long>(r->t_lease), r->outcomes.back().kind.c_str(),
        static_cast<long long>(r->outcomes.back().t_ms));
  }
  failed += Check(unexplained.empty(),
                  absl::StrCat("3. ", unexplained.size(),
                               " completion(s) refused or duplicate with no "
                               "fault around them"));

  int64_t twice = 0;
  for (const auto& [key, list] : by_key) {
    int done = 0;
    for (const LeaseRecord* r : list) {
      for (const Outcome& o : r->outcomes) done += o.kind == "done";
    }
    if (done > 1 && ++twice <= 3) {
      std::printf("       key %s: %d completions accepted\n", key.c_str(),
                  done);
    }
  }
  failed += Check(twice == 0, absl::StrCat("4. ", twice,
                                           " key(s) with more than one "
                                           "accepted completion"));

  int complete = 0;
  int64_t seq_errors = 0;
  for (const WatchReport& w : watches) {
    bool all_generations = true;
    for (int g = 0; g <= o_.generations; ++g) {
      all_generations = all_generations && w.generations.count(g) > 0;
    }
    const bool ok = all_generations && w.ended && w.state == JOB_FINISHED &&
                    w.seq_errors == 0 &&
                    w.restarts <= static_cast<int>(server_kill_ms_.size());
    complete += ok;
    seq_errors += w.seq_errors;
    if (!ok) {
      std::string gens;
      for (int g : w.generations) absl::StrAppend(&gens, g, " ");
      std::string notes;
      for (const std::string& n : w.seq_notes) absl::StrAppend(&notes, n, "; ");
      std::printf(
          "       watcher %d of %s: generations {%s}, ended %s (%s), "
          "%lld seq errors %s, %d restarts, %d connects, last error "
          "%s\n",
          w.index, w.job_id.c_str(), gens.c_str(), w.ended ? "yes" : "no",
          JobState_Name(w.state).c_str(), static_cast<long long>(w.seq_errors),
          notes.c_str(), w.restarts, w.connects, w.last_error.c_str());
    }
  }
  failed += Check(
      complete == static_cast<int>(watches.size()),
      absl::StrCat("5. ", complete, " of ", watches.size(),
                   " watchers saw generations 0..", o_.generations,
                   " and `ended` FINISHED with contiguous seq (", seq_errors,
                   " gaps/repeats; ", jumps, " resumes across a restart)"));
  failed += Check(db.integrity == "ok",
                  absl::StrCat("6. PRAGMA integrity_check: ", db.integrity));

  failed += Check(leases >= o_.min_leases,
                  absl::StrCat("   ", leases, " tasks leased (at least ",
                               o_.min_leases, ")"));
  const bool every_kind =
      faults_by_kind["worker-kill"] > 0 &&
      faults_by_kind["server-kill"] >= o_.min_server_kills &&
      stops_with_lease > 0 && faults_by_kind["watch-drop"] > 0;
  failed +=
      Check(every_kind,
            absl::StrCat("   every kind of fault injected (server kills ",
                         faults_by_kind["server-kill"], " of at least ",
                         o_.min_server_kills, ", a stop that caught a lease ",
                         stops_with_lease, ")"));
  for (const std::string& c : crashes_) std::printf("       %s\n", c.c_str());
  failed += Check(crashes_.empty(),
                  absl::StrCat("   ", crashes_.size(),
                               " process(es) ended on their own or not "
                               "cleanly on SIGTERM"));
  for (const std::string& m : logs.malformed) {
    std::printf("       %s\n", m.c_str());
  }
  failed += Check(logs.malformed_count == 0,
                  absl::StrCat("   ", logs.malformed_count,
                               " malformed worker log line(s)"));
  if (failed == 0) {
    std::printf("all checks passed\n");
  } else {
    std::printf(
        "%d check(s) failed (seed %llu; rerun with --seed %llu "
        "--keep to keep the logs)\n",
        failed, static_cast<unsigned long long>(o_.seed),
        static_cast<unsigned long long>(o_.seed));
  }
  return failed == 0 ? 0 : 1;
}

}  // namespace
}  // namespace autoq::soak

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "--worker") {
    return autoq::soak::WorkerMain(argc, argv);
  }
  // A worker or server that dies mid-call must not kill the soak.
  std::signal(SIGPIPE, SIG_IGN);
  absl::StatusOr<autoq::soak::Options> options =
      autoq::soak::ParseOptions(argc, argv);
  if (!options.ok()) {
    std::fprintf(stderr, "autoq_soak: %s\n",
                 std::string(options.status().message()).c_str());
    return 2;
  }
  absl::StatusOr<int> rc = [&] {
    autoq::soak::Soak soak(*options);
    return soak.Run();
  }();
  if (!rc.ok()) {
    std::fprintf(stderr, "autoq_soak: error: %s (seed %llu)\n",
                 std::string(rc.status().message()).c_str(),
                 static_cast<unsigned long long>(options->seed));
    return 2;
  }
  return *rc;
}
