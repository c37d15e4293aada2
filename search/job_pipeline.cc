#include "search/job_pipeline.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "evaluator/task.h"
#include "qat/sensitivity_table.h"
#include "search/chromosome.h"
#include "search/knapsack.h"
#include "search/problem.h"
#include "search/sensitivity_report.h"

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
      ";train_subset=", train_subset,
      // Only when on: the keys of every recipe without it stay as they were.
      r.random_resized_crop > 0
          ? absl::StrCat(";rrc=", r.random_resized_crop)
          : std::string());
}

std::string SchemeText(const qat::QuantScheme& s) {
  return absl::StrCat("granularity=", qat::GranularityName(s.granularity),
                      ";range=", qat::RangeMethodName(s.range),
                      ";bn_fold=", qat::BnFoldName(s.bn_fold));
}

std::string SearchText(const evaluator::SearchOptions& o) {
  return absl::StrCat(
      "population=", o.population, ";crossover=", o.crossover,
      ";mutation=", o.mutation, ";eta_c=", o.eta_c, ";eta_m=", o.eta_m,
      ";seed=", o.seed, ";bits=", o.min_bits, "..", o.max_bits,
      ";search_abits=", o.search_activation_bits, ";abits=", o.activation_bits,
      ";pin=", o.pin_first_last, ";bops=", o.bops_objective,
      ";budget=", o.size_budget_bytes, ";max_drop=", o.max_accuracy_drop,
      ";sensitivity=", o.sensitivity_images,
      ";strategy=", evaluator::StrategyName(o.strategy),
      ";screening=", o.screening);
}

// The identity of a search: its checkpoints are stored under this key, so
// a rerun of the same job resumes where it stopped.
std::string SearchKey(const KeyContext& keys,
                      const evaluator::SearchOptions& options, int genes) {
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
  void Evaluation(evaluator::Stage stage, const char* log_name,
                  const std::vector<qat::LayerBits>& bits,
                  const evaluator::EvalRecord& r, bool cached, size_t done,
                  size_t total) {
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
                     const evaluator::EvalRecord& final_record,
                     double search_val) {
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
  for (const char* name : evaluator::kFinalArtifacts) {
    if (std::find(names.begin(), names.end(), name) == names.end()) {
      return absl::DataLossError(absl::StrCat("the export ", name, " of ",
                                              p.label,
                                              " is missing from the database"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

KeyContext MakeKeyContext(const evaluator::JobConfig& config,
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
  // The PTQ stages set the granularity themselves (the stage is keyed).
  keys.ptq_stage = absl::StrCat(
      "range=", qat::RangeMethodName(config.scheme.range),
      ";bn_fold=", qat::BnFoldName(config.final_front.bn_fold),
      ";calibration_images=", config.final_front.ptq_calibration_images,
      ";eval_batch=", config.final_front.recipe.eval_batch_size);
  keys.sensitivity_stage = absl::StrCat(
      SchemeText(config.scheme), ";bits=", config.search.min_bits, "..",
      config.search.max_bits, ";images=", config.search.sensitivity_images);
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
  absl::StrAppendFormat(&line, "  %8.1f KB  %6.1f s", size_bytes / 1024.0,
                        seconds);
  if (!bits.empty()) absl::StrAppend(&line, "  ", qat::FormatBits(bits));
  line += "\n";
  return line;
}

double JobSummary::search_overhead() const {
  if (search_seconds <= 0) return 0;
  return std::max(0.0, search_seconds - search_evaluator_seconds) /
         search_seconds;
}

double JobSummary::cache_hit_rate() const {
  const int64_t total = computed + cached;
  return total == 0 ? 0.0 : static_cast<double>(cached) / total;
}

namespace {

// The final fine-tune's batch: the front points first, then the uniform
// configurations (when compared).
struct FinalBatch {
  std::vector<std::vector<qat::LayerBits>> bits;
  std::vector<double> search_val;  // the search's score; -1 for uniform
  size_t front_points = 0;
};

// One job, phase by phase. The phases share the keys, the evaluation cache
// of the search and final stages, and the summary they fill in.
class Pipeline {
 public:
  Pipeline(const PipelineInputs& inputs, evaluator::Evaluator* evaluator,
           ResultStore* store, PipelineObserver* observer, std::FILE* log,
           const std::atomic<bool>* cancelled)
      : inputs_(inputs),
        config_(*inputs.config),
        analysis_(*inputs.analysis),
        genes_(analysis_.num_genes()),
        evaluator_(evaluator),
        store_(store),
        log_(log),
        cancelled_(cancelled),
        reporter_(observer, inputs.log_evaluations ? log : nullptr),
        keys_(MakeKeyContext(config_, inputs.model_digest)),
        encoding_(genes_, config_.search),
        evaluation_(store, evaluator, keys_) {}

  absl::StatusOr<JobSummary> Run();

 private:
  bool IsCancelled() const {
    return cancelled_ != nullptr && cancelled_->load();
  }
  // Remote evaluators fail the tasks of a cancelled job: the job reports
  // the cancellation, not the failed tasks.
  absl::Status Failed(const absl::Status& status) const {
    return IsCancelled() ? absl::CancelledError("job cancelled") : status;
  }

  absl::Status ScoreFloat();
  absl::Status ScoreBaselines();
  absl::StatusOr<std::vector<std::vector<int>>> SensitivitySeeds();
  absl::StatusOr<SearchOutcome> Search(std::vector<std::vector<int>> seeds);
  FinalBatch MakeFinalBatch(const SearchOutcome& outcome) const;
  FinalBatch KnapsackBatch(const std::vector<std::vector<int>>& seeds) const;
  void AddUniform(FinalBatch* batch) const;
  absl::StatusOr<std::vector<evaluator::EvalRecord>> FineTuneFinal(
      const FinalBatch& batch);
  absl::Status AssembleReport(const FinalBatch& batch,
                              const std::vector<evaluator::EvalRecord>& finals);

  const PipelineInputs& inputs_;
  const evaluator::JobConfig& config_;
  const qat::ModelAnalysis& analysis_;
  const int genes_;
  evaluator::Evaluator* const evaluator_;
  ResultStore* const store_;
  std::FILE* const log_;
  const std::atomic<bool>* const cancelled_;
  Reporter reporter_;
  const KeyContext keys_;
  const Encoding encoding_;
  CachedEvaluation evaluation_;  // the search and final stages
  double float_val_ = 0, float_test_ = -1;
  std::vector<FrontPoint> baselines_;
  std::optional<qat::SensitivityTable> sensitivity_;
  JobSummary summary_;
};

absl::StatusOr<JobSummary> Pipeline::Run() {
  const auto start = Clock::now();
  if (IsCancelled()) return absl::CancelledError("job cancelled");
  RETURN_IF_ERROR(ScoreFloat());

  if (IsCancelled()) return absl::CancelledError("job cancelled");
  absl::StatusOr<std::vector<std::vector<int>>> seeds = SensitivitySeeds();
  if (!seeds.ok()) return seeds.status();

  FinalBatch batch;
  if (config_.search.strategy ==
      evaluator::SearchOptions::Strategy::kKnapsack) {
    // No search: the knapsack solutions are the front.
    batch = KnapsackBatch(*seeds);
  } else {
    if (IsCancelled()) return absl::CancelledError("job cancelled");
    reporter_.Phase("search");
    absl::StatusOr<SearchOutcome> outcome = Search(*std::move(seeds));
    if (!outcome.ok()) return outcome.status();
    batch = MakeFinalBatch(*outcome);
  }

  if (IsCancelled()) return absl::CancelledError("job cancelled");
  reporter_.Phase("final");
  const auto final_start = Clock::now();
  RETURN_IF_ERROR(ScoreBaselines());
  if (IsCancelled()) return absl::CancelledError("job cancelled");
  absl::StatusOr<std::vector<evaluator::EvalRecord>> finals =
      FineTuneFinal(batch);
  if (!finals.ok()) return finals.status();
  summary_.final_seconds = Since(final_start);

  RETURN_IF_ERROR(AssembleReport(batch, *finals));
  summary_.total_seconds = Since(start);
  reporter_.Phase("done");
  return std::move(summary_);
}

// The float model: the reference of every accuracy loss. Counted apart
// from the search and final evaluations of the summary.
absl::Status Pipeline::ScoreFloat() {
  reporter_.Phase("float");
  CachedEvaluation float_evaluation(store_, evaluator_, keys_);
  absl::StatusOr<std::vector<evaluator::EvalRecord>> records =
      float_evaluation.Evaluate(
          evaluator::Stage::kFloat, std::vector<std::vector<qat::LayerBits>>(1),
          [&](size_t, const evaluator::EvalRecord& r, bool cached, size_t done,
              size_t total) {
            reporter_.Evaluation(evaluator::Stage::kFloat, nullptr, {}, r,
                                 cached, done, total);
          });
  if (!records.ok()) return Failed(records.status());
  float_val_ = records->front().qat.best_val_top1;
  float_test_ = records->front().qat.test_top1;
  if (log_ != nullptr) {
    std::fprintf(log_,
                 "job %s: %s, %d quantizable layers, float %.1f KB, val top-1 "
                 "%.2f%%, test top-1 %.2f%%\n%s",
                 config_.name.c_str(), config_.model_path.c_str(), genes_,
                 analysis_.float_size_bytes / 1024.0, float_val_, float_test_,
                 inputs_.log_setup.c_str());
    std::fflush(log_);
  }
  return absl::OkStatus();
}

// The post-training baselines of the report (final_front.ptq_baselines):
// float16 parameters, then uniform w8a8 after calibration only with
// per-tensor and with per-channel weights. Cached like any result, counted
// apart from the search and final evaluations.
absl::Status Pipeline::ScoreBaselines() {
  if (!config_.final_front.ptq_baselines) return absl::OkStatus();
  struct Baseline {
    evaluator::Stage stage;
    const char* label;
    std::vector<qat::LayerBits> bits;
  };
  const std::vector<qat::LayerBits> int8(static_cast<size_t>(genes_),
                                         qat::LayerBits{8, 8});
  const Baseline baselines[] = {
      {evaluator::Stage::kFloat16, "float16", {}},
      {evaluator::Stage::kPtqPerTensor, "int8-ptq-per-tensor", int8},
      {evaluator::Stage::kPtqPerChannel, "int8-ptq-per-channel", int8},
  };
  // One batch: remote workers run the three side by side.
  std::vector<CachedEvaluation::Entry> batch;
  for (const Baseline& b : baselines) batch.push_back({b.stage, b.bits});
  CachedEvaluation baseline_evaluation(store_, evaluator_, keys_);
  absl::StatusOr<std::vector<evaluator::EvalRecord>> records =
      baseline_evaluation.Evaluate(
          batch, [&](size_t i, const evaluator::EvalRecord& r, bool cached,
                     size_t done, size_t total) {
            reporter_.Evaluation(baselines[i].stage, baselines[i].label,
                                 baselines[i].bits, r, cached, done, total);
          });
  if (!records.ok()) return Failed(records.status());
  for (size_t i = 0; i < std::size(baselines); ++i) {
    baselines_.push_back(MakePoint(baselines[i].label, /*uniform=*/false,
                                   baselines[i].bits, (*records)[i], -1));
  }
  if (IsCancelled()) return absl::CancelledError("job cancelled");
  return absl::OkStatus();
}

// The sensitivity prior: one sensitivity task (cached like any result),
// then a knapsack solution for each of half a population of size budgets
// between uniform (min_bits + 1) and (max_bits - 2): the seeds of the
// initial population. None when search.sensitivity_images is 0, and for
// plain NSGA-II.
absl::StatusOr<std::vector<std::vector<int>>> Pipeline::SensitivitySeeds() {
  const evaluator::SearchOptions& o = config_.search;
  if (o.sensitivity_images <= 0 || o.max_bits - o.min_bits < 2 ||
      o.strategy == evaluator::SearchOptions::Strategy::kNsga2) {
    return std::vector<std::vector<int>>();
  }
  reporter_.Phase("sensitivity");
  CachedEvaluation sensitivity_evaluation(store_, evaluator_, keys_);
  // Every layer at max_bits: the reference, and the layer count a worker
  // without the model (the no-op one) needs.
  const std::vector<qat::LayerBits> reference =
      encoding_.UniformBits(o.max_bits);
  absl::StatusOr<std::vector<evaluator::EvalRecord>> records =
      sensitivity_evaluation.Evaluate(
          evaluator::Stage::kSensitivity, {reference},
          [&](size_t, const evaluator::EvalRecord& r, bool cached, size_t done,
              size_t total) {
            reporter_.Evaluation(evaluator::Stage::kSensitivity, nullptr,
                                 reference, r, cached, done, total);
          });
  if (!records.ok()) return Failed(records.status());
  const std::optional<qat::SensitivityTable>& table =
      records->front().sensitivity;
  if (!table.has_value() ||
      table->layers.size() != static_cast<size_t>(genes_)) {
    return absl::InternalError(
        absl::StrCat("the sensitivity result has ",
                     table.has_value() ? table->layers.size() : 0,
                     " layers, the model ", genes_));
  }
  sensitivity_ = *table;
  const int abits = o.search_activation_bits ? 8 : o.activation_bits;
  const std::vector<LayerChoices> choices = ChoicesFromSensitivity(
      analysis_, *table, config_.scheme.granularity, abits);
  auto size_at = [&](int bits) {
    int64_t total = 0;
    for (const LayerChoices& l : choices) {
      total += l.size_bytes[static_cast<size_t>(bits - table->min_bits)];
    }
    return total;
  };
  absl::StatusOr<std::vector<std::vector<int>>> solutions = KnapsackFront(
      choices, std::max(1, o.population / 2), size_at(o.min_bits + 1),
      size_at(std::max(o.min_bits + 1, o.max_bits - 2)));
  if (!solutions.ok()) return solutions.status();
  std::vector<std::vector<int>> seeds;
  for (const std::vector<int>& wbits : *solutions) {
    seeds.push_back(encoding_.EncodeWeights(wbits));
  }
  if (log_ != nullptr) {
    std::fprintf(log_,
                 "sensitivity: %zu layers x %d bit-widths on %lld validation "
                 "images (%.1f s); %zu knapsack seeds\n",
                 table->layers.size(), table->max_bits - table->min_bits + 1,
                 static_cast<long long>(table->images), table->seconds,
                 seeds.size());
    std::fflush(log_);
  }
  return seeds;
}

// The NSGA-II search, resumed from its checkpoint when there is one.
absl::StatusOr<SearchOutcome> Pipeline::Search(
    std::vector<std::vector<int>> seeds) {
  auto objectives = std::make_shared<Objectives>(
      encoding_, &analysis_, config_.scheme.granularity, config_.search,
      float_val_, &evaluation_);
  objectives->set_progress([&](const std::vector<qat::LayerBits>& bits,
                               const evaluator::EvalRecord& r, bool cached,
                               size_t done, size_t total) {
    reporter_.Evaluation(evaluator::Stage::kSearch, "candidate", bits, r,
                         cached, done, total);
  });
  SearchContext ctx;
  ctx.job_key = SearchKey(keys_, config_.search, genes_);
  ctx.float_val_top1 = float_val_;
  ctx.float_size_bytes = analysis_.float_size_bytes;
  ctx.log = log_;
  ctx.analysis = &analysis_;
  ctx.granularity = config_.scheme.granularity;
  ctx.on_generation = [&](const GenerationInfo& info) {
    reporter_.Generation(info);
  };
  ctx.cancelled = cancelled_;
  ctx.seeds = std::move(seeds);
  ctx.sensitivity = sensitivity_.has_value() ? &*sensitivity_ : nullptr;
  const auto search_start = Clock::now();
  absl::StatusOr<SearchOutcome> outcome =
      RunSearch(config_.search, *objectives, evaluation_, *store_, ctx);
  if (!outcome.ok()) return Failed(outcome.status());
  summary_.search_seconds = Since(search_start);
  summary_.search_evaluator_seconds = evaluation_.stats().evaluator_seconds;
  summary_.generations_done = outcome->generations_done;
  summary_.resumed_from = outcome->resumed_from;
  return outcome;
}

FinalBatch Pipeline::MakeFinalBatch(const SearchOutcome& outcome) const {
  FinalBatch batch;
  for (size_t i : outcome.front) {
    batch.bits.push_back(encoding_.Decode(outcome.archive[i]));
    batch.search_val.push_back(float_val_ - outcome.archive_fitness[i][0]);
  }
  batch.front_points = batch.bits.size();
  AddUniform(&batch);
  return batch;
}

FinalBatch Pipeline::KnapsackBatch(
    const std::vector<std::vector<int>>& seeds) const {
  FinalBatch batch;
  for (const std::vector<int>& g : seeds) {
    batch.bits.push_back(encoding_.Decode(g));
    batch.search_val.push_back(-1);  // never scored by the search
  }
  batch.front_points = batch.bits.size();
  AddUniform(&batch);
  return batch;
}

void Pipeline::AddUniform(FinalBatch* batch) const {
  if (!config_.final_front.compare_uniform) return;
  for (int b = config_.search.min_bits; b <= config_.search.max_bits; ++b) {
    batch->bits.push_back(encoding_.UniformBits(b));
    batch->search_val.push_back(-1);
  }
}

// The final fine-tune of the front (and of the uniform configurations).
absl::StatusOr<std::vector<evaluator::EvalRecord>> Pipeline::FineTuneFinal(
    const FinalBatch& batch) {
  if (log_ != nullptr) {
    std::fprintf(
        log_, "\n== final fine-tune: %zu front points%s, %d epochs each\n",
        batch.front_points,
        config_.final_front.compare_uniform
            ? absl::StrCat(" + ", batch.bits.size() - batch.front_points,
                           " uniform configurations")
                  .c_str()
            : "",
        config_.final_front.recipe.epochs);
    std::fflush(log_);
  }
  absl::StatusOr<std::vector<evaluator::EvalRecord>> finals =
      evaluation_.Evaluate(evaluator::Stage::kFinal, batch.bits,
                           [&](size_t i, const evaluator::EvalRecord& r,
                               bool cached, size_t done, size_t total) {
                             reporter_.Evaluation(evaluator::Stage::kFinal,
                                                  "final", batch.bits[i], r,
                                                  cached, done, total);
                           });
  if (!finals.ok()) return Failed(finals.status());
  return finals;
}

// The report: every final point, its exports checked present in the store.
absl::Status Pipeline::AssembleReport(
    const FinalBatch& batch, const std::vector<evaluator::EvalRecord>& finals) {
  FrontReport& report = summary_.report;
  report.job_name = config_.name;
  for (const qat::LayerInfo* l : analysis_.genes()) {
    report.layer_names.push_back(l->module_path);
  }
  report.float_val_top1 = float_val_;
  report.float_test_top1 = float_test_;
  report.float_size_bytes = analysis_.float_size_bytes;
  report.max_accuracy_drop = config_.search.max_accuracy_drop;
  report.baselines = baselines_;
  for (size_t i = 0; i < batch.bits.size(); ++i) {
    const bool uniform = i >= batch.front_points;
    const std::string label =
        uniform ? absl::StrCat("uniform-",
                               config_.search.min_bits +
                                   static_cast<int>(i - batch.front_points))
                : absl::StrCat("front-", i + 1);
    FrontPoint p = MakePoint(label, uniform, batch.bits[i], finals[i],
                             batch.search_val[i]);
    p.result_key = evaluation_.Key(evaluator::Stage::kFinal, batch.bits[i]);
    RETURN_IF_ERROR(CheckExports(*store_, p));
    (uniform ? report.uniform : report.front).push_back(std::move(p));
  }
  summary_.comparison = CompareWithUniform(report);
  const EvalStats& stats = evaluation_.stats();
  summary_.computed = stats.computed;
  summary_.cached = stats.cached;
  summary_.repeated = stats.repeated;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<JobSummary> RunPipeline(const PipelineInputs& inputs,
                                       evaluator::Evaluator* evaluator,
                                       ResultStore* store,
                                       PipelineObserver* observer,
                                       std::FILE* log,
                                       const std::atomic<bool>* cancelled) {
  if (inputs.config == nullptr || inputs.analysis == nullptr ||
      evaluator == nullptr || store == nullptr) {
    return absl::InvalidArgumentError(
        "RunPipeline needs a config, an analysis, an evaluator and a store");
  }
  return Pipeline(inputs, evaluator, store, observer, log, cancelled).Run();
}

absl::StatusOr<ReportFiles> RenderReport(const FrontReport& report) {
  ReportFiles files;
  files.json = RenderFrontJson(report);
  files.csv = RenderFrontCsv(report);
  files.svg = RenderFrontSvg(report);
  return files;
}

}  // namespace autoq::search
