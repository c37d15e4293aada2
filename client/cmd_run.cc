// `autoq run CONFIG`: the one-machine mode. Starts the service in this
// process (an autoq-server on loopback with fresh tokens, one local
// autoq-worker per configured device), submits the job as a client, prints
// its progress, downloads the exports and reports into the job's output
// folder, and stops. The job's SQLite file is the server's database, so a
// rerun answers from the cache and a killed run resumes from its last
// generation.
#include <google/protobuf/util/json_util.h>
#include <grpcpp/create_channel.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/baseline.h"
#include "client/commands.h"
#include "client/common.h"
#include "client/job_client.h"
#include "client/service_common.h"
#include "common/rpc_util.h"
#include "common/status_macros.h"
#include "evaluator/dataset.h"
#include "evaluator/job_config.h"
#include "evaluator/worker.h"
#include "qat/model_analysis.h"
#include "qat/tensor_dataset.h"
#include "search/job_pipeline.h"
#include "search/report.h"
#include "server/auth.h"
#include "server/server.h"

namespace autoq::client {
namespace {

constexpr char kHelp[] =
    "usage: autoq run CONFIG.json [--threads N] [--quiet] [--verbose]\n"
    "  Runs the search job CONFIG (an autoq.JobSpec in JSON, see configs/)\n"
    "  on this machine: the AutoQ service in one process, with one local\n"
    "  worker per device of workers.devices. NSGA-II over per-layer\n"
    "  bit-widths with a short QAT per candidate, then the full fine-tune\n"
    "  and export of the final Pareto front into output.dir.\n"
    "  Results are cached in the job's SQLite database: rerunning computes\n"
    "  nothing twice and a killed run resumes from its last generation.\n"
    "  --threads N   intra-op threads per worker (overrides the config)\n"
    "  --quiet       print only the final summary\n"
    "  --verbose     also print the server's and workers' log lines\n";

// The local client's name: jobs of earlier runs on this database are its.
constexpr char kLocalClient[] = "local";

absl::Status EnsureBuiltinModel(const evaluator::JobConfig& config) {
  if (config.builtin.empty() || std::filesystem::exists(config.model_path)) {
    return absl::OkStatus();
  }
  std::fprintf(stderr, "%s is absent: training the built-in model first\n",
               config.model_path.c_str());
  ASSIGN_OR_RETURN(evaluator::DataSpec spec,
                   evaluator::ParseDataSpec(config.data_spec));
  evaluator::SplitOptions split;
  split.val_size = config.val_size;
  split.seed = config.split_seed;
  ASSIGN_OR_RETURN(evaluator::DatasetSplits data,
                   evaluator::LoadDataset(spec, split));
  qat::QatRecipe recipe = DefaultBaselineRecipe();
  recipe.seed = config.split_seed;
  ASSIGN_OR_RETURN(qat::QatResult result,
                   TrainBuiltinBaseline(data, recipe, 1.0, c10::kCPU,
                                        config.model_path, {}));
  std::printf("saved %s: val top-1 %.2f%%, test top-1 %.2f%% (%.1f s)\n",
              config.model_path.c_str(), result.final_val_top1,
              result.test_top1, result.wall_seconds);
  return absl::OkStatus();
}

// The model and dataset are on this machine: check them here first, so a
// bad file is reported by name before the service starts, and give the
// server the input shape it cannot read from a dataset it never sees.
absl::Status CheckLocally(evaluator::JobConfig* config) {
  ASSIGN_OR_RETURN(torch::jit::Module model,
                   qat::LoadModel(config->model_path));
  (void)model;
  ASSIGN_OR_RETURN(evaluator::DataSpec spec,
                   evaluator::ParseDataSpec(config->data_spec));
  evaluator::SplitOptions split;
  split.val_size = config->val_size;
  split.val_subset = 1;
  split.test_subset = 1;
  split.seed = config->split_seed;
  split.input_shape = config->input_shape;
  ASSIGN_OR_RETURN(evaluator::DatasetSplits data,
                   evaluator::LoadDataset(spec, split));
  for (const std::string& note : data.notes) {
    std::fprintf(stderr, "autoq run: note: %s\n", note.c_str());
  }
  if (data.val_carved && config->builtin.empty()) {
    std::fprintf(stderr,
                 "autoq run: warning: the validation split is carved from the "
                 "training files; a model trained on those files scores too "
                 "high on it (give a val/ folder or ;val=FILE)\n");
  }
  if (config->input_shape.empty()) {
    config->input_shape = qat::ImageShape(data.train);
  }
  return absl::OkStatus();
}

absl::StatusOr<JobSpec> SpecOf(const evaluator::JobConfig& config) {
  JobSpec spec;
  auto st =
      google::protobuf::util::JsonStringToMessage(config.spec_json, &spec);
  if (!st.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("job spec: ", st.message().as_string()));
  }
  spec.mutable_model()->set_path(config.model_path);
  if (spec.model().input_shape().empty()) {
    spec.mutable_model()->set_input_shape(
        absl::StrJoin(config.input_shape, ","));
  }
  return spec;
}

void PrintSummary(const evaluator::JobConfig& config, const FinalFront& f) {
  std::printf("\n%s", FormatFrontComparison(f).c_str());
  const int64_t total = f.computed() + f.cached();
  std::printf(
      "evaluations: %lld computed, %lld cached (cache hit rate "
      "%.1f%%)\n",
      static_cast<long long>(f.computed()), static_cast<long long>(f.cached()),
      total == 0 ? 0.0 : 100.0 * f.cached() / total);
  std::printf("time: search %.1f s, final fine-tune %.1f s, total %.1f s\n",
              f.search_seconds(), f.final_seconds(), f.total_seconds());
  std::printf(
      "exports and reports in %s/ (front.json, front.csv, "
      "front.svg, front/<point>/model.pt, weights.bin, "
      "manifest.json, model.onnx, encodings.json)\n",
      config.output_dir.c_str());
}

// Runs the local workers on their threads until stopped.
class LocalWorkers {
 public:
  ~LocalWorkers() { Stop(); }

  absl::Status Start(const evaluator::JobConfig& config, int port,
                     const std::string& token, bool verbose) {
    int cpu_workers = 0;
    for (const std::string& d : config.devices) cpu_workers += d == "cpu";
    const int cores =
        std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
    const int threads = config.threads > 0
                            ? config.threads
                            : std::max(1, cores / std::max(1, cpu_workers));
    for (size_t i = 0; i < config.devices.size(); ++i) {
      evaluator::WorkerOptions options;
      options.server = absl::StrCat("127.0.0.1:", port);
      options.device = config.devices[i];
      options.token = token;
      options.name = absl::StrCat("local-", i);
      options.threads = threads;
      options.log = verbose ? stderr : nullptr;
      ASSIGN_OR_RETURN(std::unique_ptr<evaluator::Worker> worker,
                       evaluator::Worker::Create(options));
      workers_.push_back(std::move(worker));
    }
    for (auto& w : workers_) {
      evaluator::Worker* worker = w.get();
      threads_.emplace_back([this, worker] {
        absl::Status st = worker->Run(stop_);
        if (!st.ok()) {
          std::fprintf(stderr, "autoq: local worker stopped: %s\n",
                       std::string(st.message()).c_str());
        }
      });
    }
    return absl::OkStatus();
  }

  void Stop() {
    stop_ = evaluator::kAbandonAndLeave;
    for (std::thread& t : threads_) t.join();
    threads_.clear();
  }

  // After Stop: one line per worker on where its time went.
  void PrintSummaries() const {
    for (const auto& w : workers_) {
      std::printf("worker %s: %s\n", w->options().name.c_str(),
                  evaluator::FormatWorkerSummary(w->stats()).c_str());
    }
  }

 private:
  std::atomic<int> stop_{evaluator::kKeepRunning};
  std::vector<std::unique_ptr<evaluator::Worker>> workers_;
  std::vector<std::thread> threads_;
};

// An evaluation as the one-process pipeline logs it: the server sends
// evaluations as structured events only, not as log lines too. The float
// model has no line (the job's first log line gives its scores).
std::string EvaluationLine(const EvaluationDone& e) {
  const char* name = e.stage() == STAGE_SEARCH    ? "candidate"
                     : e.stage() == STAGE_FINAL   ? "final"
                     : e.stage() == STAGE_FLOAT16 ? "float16"
                     : e.stage() == STAGE_PTQ_PER_TENSOR
                         ? "int8-ptq-per-tensor"
                     : e.stage() == STAGE_PTQ_PER_CHANNEL
                         ? "int8-ptq-per-channel"
                         : nullptr;
  if (name == nullptr) return "";
  const FrontPointInfo& p = e.point();
  std::vector<qat::LayerBits> bits(p.wbits_size());
  for (int i = 0; i < p.wbits_size(); ++i) {
    bits[i].wbits = p.wbits(i);
    bits[i].abits = i < p.abits_size() ? p.abits(i) : 0;
  }
  return search::FormatEvaluationLine(
      name, static_cast<size_t>(e.done()), static_cast<size_t>(e.total()),
      e.cached() ? "cached" : e.device(), p.val_top1(), p.test_top1(),
      p.size_bytes(), e.cached() ? 0.0 : e.seconds(), bits);
}

absl::Status RunLocalService(const evaluator::JobConfig& config, bool quiet,
                             bool verbose) {
  ASSIGN_OR_RETURN(JobSpec spec, SpecOf(config));
  if (!config.output_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(config.output_dir, ec);
  }
  const std::string client_token = server::GenerateToken();
  const std::string worker_token = server::GenerateToken();
  server::TokenAuth auth;
  RETURN_IF_ERROR(auth.Add(server::Role::kClient, kLocalClient, client_token));
  RETURN_IF_ERROR(auth.Add(server::Role::kWorker, "local", worker_token));
  server::ServerOptions options;
  options.listen = "127.0.0.1:0";
  options.database = config.database;
  options.max_jobs_per_client = 10000;
  // Local workers heartbeat over loopback; a short lease lets a rerun after
  // a kill take back the dead process's tasks quickly.
  options.lease_seconds = 6;
  options.heartbeat_seconds = 2;
  options.restart_grace_seconds = 0;  // an earlier run's workers are gone
  options.log = verbose ? stderr : nullptr;
  ASSIGN_OR_RETURN(std::unique_ptr<server::AutoqServer> service,
                   server::AutoqServer::Start(options, std::move(auth)));

  ConnectOptions connect;
  connect.server = absl::StrCat("127.0.0.1:", service->port());
  connect.token_file = "(generated)";
  connect.timeout = std::chrono::minutes(10);
  JobClient client(
      grpc::CreateChannel(connect.server, grpc::InsecureChannelCredentials()),
      client_token, connect);

  // Jobs a killed earlier run left unfinished are superseded by this one,
  // which resumes from the same checkpoint and cache.
  ASSIGN_OR_RETURN(std::vector<JobStatus> jobs, client.ListJobs());
  for (const JobStatus& j : jobs) {
    if (j.state() == JOB_QUEUED || j.state() == JOB_RUNNING) {
      RETURN_IF_ERROR(client.Cancel(j.job_id()).status());
    }
  }

  LocalWorkers workers;
  RETURN_IF_ERROR(
      workers.Start(config, service->port(), worker_token, verbose));
  ASSIGN_OR_RETURN(SubmitJobResponse submitted,
                   client.Submit(spec, config.model_path));
  // Its warnings come back as the job's first log lines.
  const std::string job_id = submitted.status().job_id();
  ASSIGN_OR_RETURN(
      JobStatus ended, client.Watch(job_id, 0, [&](const JobEvent& event) {
        if (event.event_case() == JobEvent::kEvaluation) {
          if (quiet) return;
          const std::string line = EvaluationLine(event.evaluation());
          std::fputs(line.c_str(), stdout);
          std::fflush(stdout);
          return;
        }
        if (event.event_case() != JobEvent::kLog) return;
        if (quiet && !absl::StartsWith(event.log(), "warning:")) {
          return;
        }
        std::printf("%s\n", event.log().c_str());
        std::fflush(stdout);
      }));
  workers.Stop();
  if (!quiet) workers.PrintSummaries();
  if (ended.state() != JOB_FINISHED) {
    return absl::AbortedError(
        ended.error().empty() ? absl::StrCat("job ", StateName(ended.state()))
                              : ended.error());
  }
  ASSIGN_OR_RETURN(JobResults results, client.GetResults(job_id));
  for (const ArtifactInfo& a : results.artifacts()) {
    RETURN_IF_ERROR(
        client.DownloadInto(job_id, a.name(), config.output_dir, a.size_bytes())
            .status());
  }
  service->Shutdown();
  PrintSummary(config, results.final_front());
  return absl::OkStatus();
}

}  // namespace

absl::Status RunRun(int argc, char** argv) {
  FlagSpec spec{{"threads"}, {"help", "quiet", "verbose"}};
  ASSIGN_OR_RETURN(Flags flags, Flags::Parse(argc, argv, 2, spec));
  if (flags.Has("help")) {
    std::printf("%s", kHelp);
    return absl::OkStatus();
  }
  if (flags.positional().size() != 1) {
    return absl::InvalidArgumentError(
        "expected one config file: autoq run CONFIG.json");
  }
  ASSIGN_OR_RETURN(evaluator::JobConfig config,
                   evaluator::LoadJobConfig(flags.positional()[0]));
  if (flags.Has("threads")) {
    ASSIGN_OR_RETURN(int64_t threads, flags.GetInt("threads", 0));
    if (threads < 1 || threads > 1024) {
      return absl::InvalidArgumentError("--threads must be in 1..1024");
    }
    config.threads = static_cast<int>(threads);
  }
  RETURN_IF_ERROR(EnsureBuiltinModel(config));
  RETURN_IF_ERROR(CheckLocally(&config));
  return RunLocalService(config, flags.Has("quiet"), flags.Has("verbose"));
}

}  // namespace autoq::client
