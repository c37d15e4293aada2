#include "search/job_pipeline.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <mutex>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "qat/status_macros.h"
#include "search/chromosome.h"
#include "search/problem.h"
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
      ";search_abits=", o.search_activation_bits, ";abits=", o.activation_bits,
      ";pin=", o.pin_first_last, ";bops=", o.bops_objective,
      ";budget=", o.size_budget_bytes);
}

// The identity of a search: its checkpoints are stored under this key, so
// a rerun of the same job resumes where it stopped.
std::string SearchKey(const KeyContext& keys, const SearchOptions& options,
                      int genes) {
  return Sha256Hex(absl::StrCat("autoq-search-v1\n", keys.model_digest, "\n",
                                keys.data, "\n", keys.search_stage, "\n",
                                SearchText(options), "\ngenes=", genes));
}

// Funnels the job's progress to the observer and the log. The evaluator
// reports from several threads, so every call takes the lock.
class Reporter {
 public:
  Reporter(PipelineObserver* observer, std::FILE* log)
      : observer_(observer), log_(log) {}

  void Phase(absl::string_view phase) {
    std::lock_guard<std::mutex> lock(mu_);
    if (observer_ != nullptr) observer_->OnPhase(phase);
  }

  // `log_name` null: no task line (the float model has its own line).
  void Evaluation(Stage stage, const char* log_name,
                  const std::vector<qat::LayerBits>& bits, const EvalRecord& r,
                  bool cached, size_t done, size_t total) {
    std::lock_guard<std::mutex> lock(mu_);
    if (log_ != nullptr && log_name != nullptr) {
      const std::string line = FormatEvaluationLine(
          log_name, done, total, cached ? "cached" : r.device,
          r.qat.best_val_top1, r.qat.test_top1, r.qat.size_bytes,
          cached ? 0.0 : r.qat.wall_seconds, bits);
      std::fputs(line.c_str(), log_);
      std::fflush(log_);
    }
    if (observer_ != nullptr) {
      observer_->OnEvaluation(stage, bits, r, cached, done, total);
    }
  }

  void Generation(const GenerationInfo& info) {
    std::lock_guard<std::mutex> lock(mu_);
    if (observer_ != nullptr) observer_->OnGeneration(info);
  }

 private:
  std::mutex mu_;
  PipelineObserver* const observer_;
  std::FILE* const log_;
};

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

// A point's exports must be in the store before the report names them.
absl::Status CheckExports(ResultStore& store, const FrontPoint& p) {
  ASSIGN_OR_RETURN(std::vector<std::string> names,
                   store.ListArtifacts(p.result_key));
  for (const char* name :
       {kTorchScriptArtifact, kPackedArtifact, kManifestArtifact}) {
    if (std::find(names.begin(), names.end(), name) == names.end()) {
      return absl::DataLossError(absl::StrCat("the export ", name, " of ",
                                              p.label,
                                              " is missing from the database"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

KeyContext MakeKeyContext(const JobConfig& config,
                          const std::string& model_digest) {
  KeyContext keys;
  keys.model_digest = model_digest;
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
  return keys;
}

std::string FormatEvaluationLine(absl::string_view name, size_t done,
                                 size_t total, absl::string_view where,
                                 double val_top1, double test_top1,
                                 int64_t size_bytes, double seconds,
                                 const std::vector<qat::LayerBits>& bits) {
  std::string line = absl::StrFormat("  [%s %zu/%zu] %-10s val %6.2f%%", name,
                                     done, total, where, val_top1);
  if (test_top1 >= 0) absl::StrAppendFormat(&line, " test %6.2f%%", test_top1);
  absl::StrAppendFormat(&line, "  %8.1f KB  %6.1f s  %s\n", size_bytes / 1024.0,
                        seconds, FormatBits(bits));
  return line;
}

absl::StatusOr<JobSummary> RunPipeline(const PipelineInputs& inputs,
                                       Evaluator* evaluator, ResultStore* store,
                                       PipelineObserver* observer,
                                       std::FILE* log,
                                       const std::atomic<bool>* cancelled) {
  if (inputs.config == nullptr || inputs.analysis == nullptr ||
      evaluator == nullptr || store == nullptr) {
    return absl::InvalidArgumentError(
        "RunPipeline needs a config, an analysis, an evaluator and a store");
  }
  const auto start = Clock::now();
  const JobConfig& config = *inputs.config;
  const qat::ModelAnalysis& analysis = *inputs.analysis;
  const int genes = analysis.num_genes();
  Reporter reporter(observer, inputs.log_evaluations ? log : nullptr);
  auto is_cancelled = [cancelled] {
    return cancelled != nullptr && cancelled->load();
  };
  // Remote evaluators fail the tasks of a cancelled job: the job reports
  // the cancellation, not the failed tasks.
  auto failed = [&](const absl::Status& status) {
    return is_cancelled() ? absl::CancelledError("job cancelled") : status;
  };
  if (is_cancelled()) return absl::CancelledError("job cancelled");
  const KeyContext keys = MakeKeyContext(config, inputs.model_digest);
  JobSummary summary;

  // --- The float model: the reference of every accuracy loss. Counted
  // apart from the search and final evaluations of the summary.
  reporter.Phase("float");
  double float_val = 0, float_test = -1;
  {
    CachedEvaluation float_evaluation(store, evaluator, keys);
    absl::StatusOr<std::vector<EvalRecord>> records = float_evaluation.Evaluate(
        Stage::kFloat, std::vector<std::vector<qat::LayerBits>>(1),
        [&](size_t, const EvalRecord& r, bool cached, size_t done,
            size_t total) {
          reporter.Evaluation(Stage::kFloat, nullptr, {}, r, cached, done,
                              total);
        });
    if (!records.ok()) return failed(records.status());
    float_val = records->front().qat.best_val_top1;
    float_test = records->front().qat.test_top1;
  }
  const int64_t float_size = analysis.float_size_bytes;
  if (log != nullptr) {
    std::fprintf(log,
                 "job %s: %s, %d quantizable layers, float %.1f KB, val top-1 "
                 "%.2f%%, test top-1 %.2f%%\n%s",
                 config.name.c_str(), config.model_path.c_str(), genes,
                 float_size / 1024.0, float_val, float_test,
                 inputs.log_setup.c_str());
    std::fflush(log);
  }

  // --- The search.
  if (is_cancelled()) return absl::CancelledError("job cancelled");
  reporter.Phase("search");
  CachedEvaluation evaluation(store, evaluator, keys);
  Encoding encoding(genes, config.search);
  auto objectives = std::make_shared<Objectives>(
      encoding, &analysis, config.scheme.granularity, config.search, float_val,
      &evaluation);
  objectives->set_progress([&](const std::vector<qat::LayerBits>& bits,
                               const EvalRecord& r, bool cached, size_t done,
                               size_t total) {
    reporter.Evaluation(Stage::kSearch, "candidate", bits, r, cached, done,
                        total);
  });
  SearchContext ctx;
  ctx.job_key = SearchKey(keys, config.search, genes);
  ctx.float_val_top1 = float_val;
  ctx.float_size_bytes = float_size;
  ctx.log = log;
  ctx.analysis = &analysis;
  ctx.granularity = config.scheme.granularity;
  ctx.on_generation = [&](const GenerationInfo& info) {
    reporter.Generation(info);
  };
  ctx.cancelled = cancelled;
  const auto search_start = Clock::now();
  absl::StatusOr<SearchOutcome> outcome =
      RunSearch(config.search, *objectives, evaluation, *store, ctx);
  if (!outcome.ok()) return failed(outcome.status());
  summary.search_seconds = Since(search_start);
  summary.search_evaluator_seconds = evaluation.stats().evaluator_seconds;
  summary.generations_done = outcome->generations_done;
  summary.resumed_from = outcome->resumed_from;

  // --- The final fine-tune of the front (and of the uniform configurations).
  if (is_cancelled()) return absl::CancelledError("job cancelled");
  reporter.Phase("final");
  const auto final_start = Clock::now();
  std::vector<std::vector<qat::LayerBits>> batch;
  std::vector<double> search_val;
  for (size_t i : outcome->front) {
    batch.push_back(encoding.Decode(outcome->population[i]));
    search_val.push_back(float_val - outcome->fitness[i][0]);
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
  absl::StatusOr<std::vector<EvalRecord>> finals = evaluation.Evaluate(
      Stage::kFinal, batch,
      [&](size_t i, const EvalRecord& r, bool cached, size_t done,
          size_t total) {
        reporter.Evaluation(Stage::kFinal, "final", batch[i], r, cached, done,
                            total);
      });
  if (!finals.ok()) return failed(finals.status());
  summary.final_seconds = Since(final_start);

  // --- The report.
  FrontReport& report = summary.report;
  report.job_name = config.name;
  for (const qat::LayerInfo* l : analysis.genes()) {
    report.layer_names.push_back(l->module_path);
  }
  report.float_val_top1 = float_val;
  report.float_test_top1 = float_test;
  report.float_size_bytes = float_size;
  for (size_t i = 0; i < batch.size(); ++i) {
    const bool uniform = i >= front_points;
    const std::string label =
        uniform
            ? absl::StrCat("uniform-", config.search.min_bits +
                                           static_cast<int>(i - front_points))
            : absl::StrCat("front-", i + 1);
    FrontPoint p =
        MakePoint(label, uniform, batch[i], (*finals)[i], search_val[i]);
    p.result_key = evaluation.Key(Stage::kFinal, batch[i]);
    RETURN_IF_ERROR(CheckExports(*store, p));
    (uniform ? report.uniform : report.front).push_back(std::move(p));
  }
  summary.comparison = CompareWithUniform(report);
  const EvalStats& stats = evaluation.stats();
  summary.computed = stats.computed;
  summary.cached = stats.cached;
  summary.repeated = stats.repeated;
  summary.total_seconds = Since(start);
  reporter.Phase("done");
  return summary;
}

absl::StatusOr<ReportFiles> RenderReport(const FrontReport& report) {
  ReportFiles files;
  files.json = RenderFrontJson(report);
  files.csv = RenderFrontCsv(report);
  files.svg = RenderFrontSvg(report);
  return files;
}

}  // namespace autoq::search
