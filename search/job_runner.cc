#include "search/job_runner.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "evaluator/dataset.h"
#include "evaluator/score.h"
#include "qat/cost_model.h"
#include "qat/model_analysis.h"
#include "qat/status_macros.h"
#include "search/chromosome.h"
#include "search/evaluation.h"
#include "search/local_pool.h"
#include "search/problem.h"
#include "search/result_store.h"
#include "search/search_driver.h"
#include "search/task_runner.h"

namespace autoq::search {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Every field that changes a fine-tune's result, in a fixed order.
std::string RecipeText(const qat::QatRecipe& r, int64_t train_subset) {
  return absl::StrCat(
      "epochs=", r.epochs, ";batch=", r.batch_size, ";opt=", r.optimizer,
      ";lr=", r.lr, ";momentum=", r.momentum, ";wd=", r.weight_decay,
      ";schedule=", r.lr_schedule, ";gamma=", r.step_gamma,
      ";step_epochs=", r.step_epochs, ";act_delay=", r.act_quant_delay,
      ";bn_freeze=", r.bn_freeze_epoch, ";calib=", r.calibration_batches,
      ";hflip=", r.hflip, ";crop_pad=", r.crop_pad, ";seed=", r.seed,
      ";train_subset=", train_subset);
}

std::string SchemeText(const qat::QuantScheme& s) {
  return absl::StrCat("granularity=", qat::GranularityName(s.granularity),
                      ";range=", qat::RangeMethodName(s.range),
                      ";bn_fold=", qat::BnFoldName(s.bn_fold));
}

std::string SearchText(const SearchOptions& o) {
  return absl::StrCat(
      "population=", o.population, ";crossover=", o.crossover,
      ";mutation=", o.mutation, ";eta_c=", o.eta_c, ";eta_m=", o.eta_m,
      ";seed=", o.seed, ";bits=", o.min_bits, "..", o.max_bits,
      ";search_abits=", o.search_activation_bits,
      ";abits=", o.activation_bits, ";pin=", o.pin_first_last,
      ";bops=", o.bops_objective, ";budget=", o.size_budget_bytes);
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

FrontPoint MakePoint(const std::string& label, bool uniform,
                     const std::vector<qat::LayerBits>& bits,
                     const EvalRecord& final_record, double search_val) {
  FrontPoint p;
  p.label = label;
  p.uniform = uniform;
  for (const qat::LayerBits& b : bits) {
    p.wbits.push_back(b.wbits);
    p.abits.push_back(b.abits);
  }
  p.size_bytes = final_record.qat.size_bytes;
  p.bops = final_record.qat.bops;
  p.search_val_top1 = search_val;
  p.val_top1 = final_record.qat.best_val_top1;
  p.test_top1 = final_record.qat.test_top1;
  return p;
}

// Writes a point's exports from the store into `dir`/`label`/.
absl::Status ExportPoint(const CachedEvaluation& evaluation,
                         const std::string& key, const std::string& out_dir,
                         const std::string& sub, FrontPoint* point) {
  const char* names[] = {kTorchScriptArtifact, kPackedArtifact,
                         kManifestArtifact};
  std::string* fields[] = {&point->torchscript_file, &point->packed_file,
                           &point->manifest_file};
  for (int i = 0; i < 3; ++i) {
    ASSIGN_OR_RETURN(std::optional<std::string> bytes,
                     evaluation.Artifact(key, names[i]));
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

void PrintTaskLine(std::FILE* log, const char* stage,
                   const std::vector<qat::LayerBits>& bits,
                   const EvalRecord& r, bool cached, size_t done,
                   size_t total) {
  if (log == nullptr) return;
  std::fprintf(log, "  [%s %zu/%zu] %-10s val %6.2f%%", stage, done, total,
               cached ? "cached" : r.device.c_str(), r.qat.best_val_top1);
  if (r.qat.test_top1 >= 0) std::fprintf(log, " test %6.2f%%", r.qat.test_top1);
  std::fprintf(log, "  %8.1f KB  %6.1f s  %s\n", r.qat.size_bytes / 1024.0,
               cached ? 0.0 : r.qat.wall_seconds, FormatBits(bits).c_str());
  std::fflush(log);
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
  JobSummary summary;
  for (const std::string& w : config.warnings) {
    if (log != nullptr) std::fprintf(log, "warning: %s\n", w.c_str());
  }
  // The database first: a bad one must fail before any expensive step.
  RETURN_IF_ERROR(MakeDirs(config.output_dir));
  RETURN_IF_ERROR(MakeDirs(
      std::filesystem::path(config.database).parent_path().string()));
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

  const int genes = job->analysis.num_genes();
  ASSIGN_OR_RETURN(evaluator::ClassificationMetrics float_val,
                   evaluator::EvaluateFloat(job->model, job->analysis,
                                            job->data.val, c10::kCPU));
  ASSIGN_OR_RETURN(evaluator::ClassificationMetrics float_test,
                   evaluator::EvaluateFloat(job->model, job->analysis,
                                            job->data.test, c10::kCPU));
  const int64_t float_size = job->analysis.float_size_bytes;
  if (log != nullptr) {
    std::fprintf(
        log,
        "job %s: %s, %d quantizable layers, float %.1f KB, val top-1 "
        "%.2f%%, test top-1 %.2f%%\n"
        "data %s: %lld train (%lld per candidate, %lld final), %lld val, "
        "%lld test\n"
        "workers: %zu (%s...), %d threads each; results in %s\n",
        config.name.c_str(), config.model_path.c_str(), genes,
        float_size / 1024.0, float_val.top1, float_test.top1,
        config.data_spec.c_str(),
        static_cast<long long>(job->data.train.size()),
        static_cast<long long>(config.search_train_subset > 0
                                   ? std::min(config.search_train_subset,
                                              job->data.train.size())
                                   : job->data.train.size()),
        static_cast<long long>(config.final_front.train_subset > 0
                                   ? std::min(config.final_front.train_subset,
                                              job->data.train.size())
                                   : job->data.train.size()),
        static_cast<long long>(job->data.val.size()),
        static_cast<long long>(job->data.test.size()), pool->num_workers(),
        config.devices.front().c_str(), threads, config.database.c_str());
    std::fflush(log);
  }

  KeyContext keys;
  keys.model_digest = Sha256Hex(model_bytes);
  keys.data = absl::StrCat(config.data_spec, ";val=", config.val_size,
                           ";val_subset=", config.val_subset,
                           ";test_subset=", config.test_subset,
                           ";split_seed=", config.split_seed);
  keys.search_stage =
      absl::StrCat(RecipeText(config.search_recipe, config.search_train_subset),
                   ";", SchemeText(config.scheme));
  qat::QuantScheme final_scheme = config.scheme;
  final_scheme.bn_fold = config.final_front.bn_fold;
  keys.final_stage = absl::StrCat(
      RecipeText(config.final_front.recipe, config.final_front.train_subset),
      ";", SchemeText(final_scheme), ";export=1");
  const std::string job_key = Sha256Hex(
      absl::StrCat("autoq-search-v1\n", keys.model_digest, "\n", keys.data,
                   "\n", keys.search_stage, "\n", SearchText(config.search),
                   "\ngenes=", genes));
  CachedEvaluation evaluation(store.get(), pool.get(), keys);

  // --- The search.
  Encoding encoding(genes, config.search);
  auto objectives = std::make_shared<Objectives>(
      encoding, &job->analysis, config.scheme.granularity, config.search,
      float_val.top1, &evaluation);
  objectives->set_progress([&](const std::vector<qat::LayerBits>& bits,
                               const EvalRecord& r, bool cached, size_t done,
                               size_t total) {
    PrintTaskLine(log, "candidate", bits, r, cached, done, total);
  });
  SearchContext ctx;
  ctx.job_key = job_key;
  ctx.float_val_top1 = float_val.top1;
  ctx.float_size_bytes = float_size;
  ctx.log = log;
  const auto search_start = Clock::now();
  ASSIGN_OR_RETURN(SearchOutcome outcome,
                   RunSearch(config.search, *objectives, evaluation, *store,
                             ctx));
  summary.search_seconds = Since(search_start);
  summary.search_evaluator_seconds = evaluation.stats().evaluator_seconds;
  summary.generations_done = outcome.generations_done;
  summary.resumed_from = outcome.resumed_from;

  // --- The final fine-tune of the front (and of the uniform configurations).
  const auto final_start = Clock::now();
  std::vector<std::vector<qat::LayerBits>> batch;
  std::vector<double> search_val;
  for (size_t i : outcome.front) {
    batch.push_back(encoding.Decode(outcome.population[i]));
    search_val.push_back(float_val.top1 - outcome.fitness[i][0]);
  }
  const size_t front_points = batch.size();
  if (config.final_front.compare_uniform) {
    for (int b = config.search.min_bits; b <= config.search.max_bits; ++b) {
      batch.push_back(encoding.UniformBits(b));
      search_val.push_back(-1);
    }
  }
  if (log != nullptr) {
    std::fprintf(log,
                 "\n== final fine-tune: %zu front points%s, %d epochs each\n",
                 front_points,
                 config.final_front.compare_uniform
                     ? absl::StrCat(" + ", batch.size() - front_points,
                                    " uniform configurations")
                           .c_str()
                     : "",
                 config.final_front.recipe.epochs);
    std::fflush(log);
  }
  ASSIGN_OR_RETURN(
      std::vector<EvalRecord> finals,
      evaluation.Evaluate(Stage::kFinal, batch,
                          [&](size_t i, const EvalRecord& r, bool cached,
                              size_t done, size_t total) {
                            PrintTaskLine(log, "final", batch[i], r, cached,
                                          done, total);
                          }));
  summary.final_seconds = Since(final_start);

  // --- Exports and reports.
  FrontReport& report = summary.report;
  report.job_name = config.name;
  for (const qat::LayerInfo* l : job->analysis.genes()) {
    report.layer_names.push_back(l->module_path);
  }
  report.float_val_top1 = float_val.top1;
  report.float_test_top1 = float_test.top1;
  report.float_size_bytes = float_size;
  for (size_t i = 0; i < batch.size(); ++i) {
    const bool uniform = i >= front_points;
    const std::string label =
        uniform ? absl::StrCat("uniform-", config.search.min_bits +
                                               static_cast<int>(i - front_points))
                : absl::StrCat("front-", i + 1);
    FrontPoint p = MakePoint(label, uniform, batch[i], finals[i], search_val[i]);
    RETURN_IF_ERROR(ExportPoint(evaluation,
                                evaluation.Key(Stage::kFinal, batch[i]),
                                config.output_dir, uniform ? "uniform" : "front",
                                &p));
    (uniform ? report.uniform : report.front).push_back(std::move(p));
  }
  summary.comparison = CompareWithUniform(report);
  const std::string dir = config.output_dir;
  RETURN_IF_ERROR(WriteFrontJson(report, dir + "/front.json"));
  RETURN_IF_ERROR(WriteFrontCsv(report, dir + "/front.csv"));
  RETURN_IF_ERROR(WriteFrontSvg(report, dir + "/front.svg"));

  const EvalStats& stats = evaluation.stats();
  summary.computed = stats.computed;
  summary.cached = stats.cached;
  summary.repeated = stats.repeated;
  summary.total_seconds = Since(job_start);
  return summary;
}

}  // namespace autoq::search
