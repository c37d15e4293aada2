#include "search/job_runner.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "evaluator/dataset.h"
#include "qat/model_analysis.h"
#include "qat/status_macros.h"
#include "search/job_pipeline.h"
#include "search/local_pool.h"
#include "search/result_store.h"
#include "search/task_runner.h"

namespace autoq::search {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

absl::Status WriteFile(const std::filesystem::path& path,
                       const std::string& bytes) {
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  const std::string tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) return absl::InternalError(absl::StrCat(tmp, ": cannot write"));
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat(path.string(), ": cannot write: ", ec.message()));
  }
  return absl::OkStatus();
}

absl::Status MakeDirs(const std::string& dir) {
  if (dir.empty()) return absl::OkStatus();
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat(dir, ": cannot create the folder: ", ec.message()));
  }
  return absl::OkStatus();
}

// Writes a point's exports (the artifacts of its result key) to
// `out_dir`/`sub`/`label`/ and names them in the point.
absl::Status ExportPoint(ResultStore& store, const std::string& out_dir,
                         const std::string& sub, FrontPoint* point) {
  const char* names[] = {kTorchScriptArtifact, kPackedArtifact,
                         kManifestArtifact};
  std::string* fields[] = {&point->torchscript_file, &point->packed_file,
                           &point->manifest_file};
  for (int i = 0; i < 3; ++i) {
    ASSIGN_OR_RETURN(std::optional<std::string> bytes,
                     store.GetArtifact(point->result_key, names[i]));
    if (!bytes.has_value()) {
      return absl::DataLossError(absl::StrCat(
          "the exports of ", point->label, " are missing from the database"));
    }
    const std::string rel = absl::StrCat(sub, "/", point->label, "/", names[i]);
    RETURN_IF_ERROR(WriteFile(std::filesystem::path(out_dir) / rel, *bytes));
    *fields[i] = rel;
  }
  return absl::OkStatus();
}

int64_t TrainImages(int64_t subset, int64_t train) {
  return subset > 0 ? std::min(subset, train) : train;
}

}  // namespace

double JobSummary::search_overhead() const {
  if (search_seconds <= 0) return 0;
  return std::max(0.0, search_seconds - search_evaluator_seconds) /
         search_seconds;
}

double JobSummary::cache_hit_rate() const {
  const int64_t total = computed + cached;
  return total == 0 ? 0.0 : static_cast<double>(cached) / total;
}

absl::StatusOr<JobSummary> RunJob(const JobConfig& config, std::FILE* log) {
  const auto job_start = Clock::now();
  for (const std::string& w : config.warnings) {
    if (log != nullptr) std::fprintf(log, "warning: %s\n", w.c_str());
  }
  // The database first: a bad one must fail before any expensive step.
  RETURN_IF_ERROR(MakeDirs(config.output_dir));
  RETURN_IF_ERROR(
      MakeDirs(std::filesystem::path(config.database).parent_path().string()));
  ASSIGN_OR_RETURN(std::unique_ptr<ResultStore> store,
                   ResultStore::Open(config.database));

  auto job = std::make_shared<JobData>();
  // LoadModel's errors say what is wrong with the file; the bytes are then
  // read once more for the cache key.
  ASSIGN_OR_RETURN(job->model, qat::LoadModel(config.model_path));
  ASSIGN_OR_RETURN(std::string model_bytes, ReadFile(config.model_path));
  ASSIGN_OR_RETURN(evaluator::DataSpec data_spec,
                   evaluator::ParseDataSpec(config.data_spec));
  evaluator::SplitOptions split;
  split.val_size = config.val_size;
  split.val_subset = config.val_subset;
  split.test_subset = config.test_subset;
  split.seed = config.split_seed;
  ASSIGN_OR_RETURN(job->data, evaluator::LoadDataset(data_spec, split));
  std::vector<int64_t> shape = config.input_shape;
  if (shape.empty()) {
    shape.assign(job->data.train.images.sizes().begin() + 1,
                 job->data.train.images.sizes().end());
  }
  ASSIGN_OR_RETURN(job->analysis, qat::AnalyzeModel(job->model, shape));
  const int64_t classes =
      std::max(job->data.train.num_classes, job->data.test.num_classes);
  if (job->analysis.num_classes > 0 && classes > job->analysis.num_classes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the dataset has ", classes, " classes but the model outputs ",
        job->analysis.num_classes));
  }
  job->scheme = config.scheme;
  job->search_recipe = config.search_recipe;
  job->search_train_subset = config.search_train_subset;
  job->final_recipe = config.final_front.recipe;
  job->final_train_subset = config.final_front.train_subset;
  job->final_bn_fold = config.final_front.bn_fold;

  int cpu_workers = 0;
  for (const std::string& d : config.devices) cpu_workers += d == "cpu";
  const int cores =
      std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  const int threads = config.threads > 0
                          ? config.threads
                          : std::max(1, cores / std::max(1, cpu_workers));
  at::set_num_threads(threads);
  ASSIGN_OR_RETURN(std::unique_ptr<LocalWorkerPool> pool,
                   LocalWorkerPool::Create(job, config.devices));

  // The data and the workers, for the log's header; RunPipeline prints it
  // after the model's float scores.
  PipelineInputs inputs;
  inputs.config = &config;
  inputs.model_digest = Sha256Hex(model_bytes);
  inputs.analysis = &job->analysis;
  const int64_t train = job->data.train.size();
  inputs.log_setup = absl::StrFormat(
      "data %s: %d train (%d per candidate, %d final), %d val, %d test\n"
      "workers: %d (%s...), %d threads each; results in %s\n",
      config.data_spec, train, TrainImages(config.search_train_subset, train),
      TrainImages(config.final_front.train_subset, train), job->data.val.size(),
      job->data.test.size(), pool->num_workers(),
      config.devices.empty() ? "cpu" : config.devices.front(), threads,
      config.database);
  ASSIGN_OR_RETURN(JobSummary summary,
                   RunPipeline(inputs, pool.get(), store.get(),
                               /*observer=*/nullptr, log,
                               /*cancelled=*/nullptr));

  // --- Exports and reports.
  FrontReport& report = summary.report;
  for (FrontPoint& p : report.front) {
    RETURN_IF_ERROR(ExportPoint(*store, config.output_dir, "front", &p));
  }
  for (FrontPoint& p : report.uniform) {
    RETURN_IF_ERROR(ExportPoint(*store, config.output_dir, "uniform", &p));
  }
  ASSIGN_OR_RETURN(ReportFiles files, RenderReport(report));
  const std::filesystem::path dir(config.output_dir);
  RETURN_IF_ERROR(WriteFile(dir / "front.json", files.json));
  RETURN_IF_ERROR(WriteFile(dir / "front.csv", files.csv));
  RETURN_IF_ERROR(WriteFile(dir / "front.svg", files.svg));
  summary.total_seconds = Since(job_start);
  return summary;
}

}  // namespace autoq::search
