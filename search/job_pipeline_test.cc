// A whole job through RunPipeline on the fake evaluator: phases, progress
// events, the cache across runs, cancellation, result keys and the report
// files.
#include "search/job_pipeline.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <thread>

#include "qat/cost_model.h"
#include "search/test_fakes.h"
#include "tests/testing.h"

namespace autoq::search {
namespace {

using ::testing::Each;
using ::testing::ElementsAre;
using testing::FakeAnalysis;
using testing::FakeEvaluator;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr int kGenes = 6;
constexpr int kGenerations = 3;

// Records every call; fails the test if two calls overlap.
class RecordingObserver : public PipelineObserver {
 public:
  void OnPhase(absl::string_view phase) override {
    Enter();
    phases.emplace_back(phase);
    Leave();
  }
  void OnEvaluation(evaluator::Stage stage,
                    const std::vector<qat::LayerBits>& bits,
                    const evaluator::EvalRecord& record, bool cached,
                    size_t done, size_t total) override {
    Enter();
    // Long enough for the fake evaluator's threads to collide if the
    // pipeline did not serialize its calls.
    std::this_thread::sleep_for(std::chrono::microseconds(300));
    ++evaluations[stage];
    if (cached) ++cached_evaluations[stage];
    if (stage == evaluator::Stage::kFloat ||
        stage == evaluator::Stage::kFloat16) {
      EXPECT_TRUE(bits.empty());
    }
    if (stage == evaluator::Stage::kFloat) {
      float_val = record.qat.best_val_top1;
    } else if (stage != evaluator::Stage::kFloat16) {
      EXPECT_EQ(bits.size(), static_cast<size_t>(kGenes));
    }
    EXPECT_GE(done, 1u);
    EXPECT_LE(done, total);
    if (on_evaluation) on_evaluation(stage);
    Leave();
  }
  void OnGeneration(const GenerationInfo& info) override {
    Enter();
    generations.push_back(info);
    if (on_generation) on_generation(info);
    Leave();
  }

  std::vector<std::string> phases;
  std::map<evaluator::Stage, int> evaluations, cached_evaluations;
  std::vector<GenerationInfo> generations;
  double float_val = -1;
  std::function<void(const GenerationInfo&)> on_generation;
  std::function<void(evaluator::Stage)> on_evaluation;
  bool overlapped = false;

 private:
  void Enter() {
    if (inside_.fetch_add(1) != 0) overlapped = true;
  }
  void Leave() { inside_.fetch_sub(1); }
  std::atomic<int> inside_{0};
};

// A log in memory.
class MemoryLog {
 public:
  MemoryLog() : file_(open_memstream(&buffer_, &size_)) {}
  ~MemoryLog() {
    std::fclose(file_);
    std::free(buffer_);
  }
  std::FILE* file() { return file_; }
  std::string text() {
    std::fflush(file_);
    return std::string(buffer_, size_);
  }

 private:
  char* buffer_ = nullptr;
  size_t size_ = 0;
  std::FILE* file_;
};

class PipelineTest : public ::testing::Test {
 protected:
  PipelineTest() : analysis_(FakeAnalysis(kGenes)) {
    config_.name = "fake";
    config_.model_path = "fake.pt";
    config_.data_spec = "fake-data";
    config_.search.population = 8;
    config_.search.generations = kGenerations;
    config_.search.seed = 3;
    config_.search.sensitivity_images = 0;  // seeding: its own test
    config_.final_front.compare_uniform = true;
    auto store = ResultStore::Open(dir_.File("results.db"));
    EXPECT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }

  absl::StatusOr<JobSummary> Run(evaluator::Evaluator* evaluator,
                                 PipelineObserver* observer,
                                 std::FILE* log = nullptr,
                                 const std::atomic<bool>* cancelled = nullptr) {
    PipelineInputs inputs;
    inputs.config = &config_;
    inputs.model_digest = "digest";
    inputs.analysis = &analysis_;
    inputs.log_setup = "setup of this test\n";
    return RunPipeline(inputs, evaluator, store_.get(), observer, log,
                       cancelled);
  }

  std::vector<qat::LayerBits> Bits(const FrontPoint& p) const {
    std::vector<qat::LayerBits> bits;
    for (size_t i = 0; i < p.wbits.size(); ++i) {
      bits.push_back({p.wbits[i], p.abits[i]});
    }
    return bits;
  }

  ::autoq::testing::TempDir dir_;
  qat::ModelAnalysis analysis_;
  evaluator::JobConfig config_;
  std::unique_ptr<ResultStore> store_;
};

TEST_F(PipelineTest, RunsEveryPhaseAndReportsEveryEvaluation) {
  FakeEvaluator evaluator(&analysis_);
  RecordingObserver observer;
  MemoryLog log;
  absl::StatusOr<JobSummary> summary = Run(&evaluator, &observer, log.file());
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_FALSE(observer.overlapped);
  EXPECT_THAT(observer.phases, ElementsAre("float", "search", "final", "done"));

  // The float model went through the evaluator, once.
  EXPECT_EQ(evaluator.runs(evaluator::Stage::kFloat), 1);
  EXPECT_EQ(observer.evaluations[evaluator::Stage::kFloat], 1);
  EXPECT_DOUBLE_EQ(observer.float_val, 90.0);
  const FrontReport& report = summary->report;
  EXPECT_DOUBLE_EQ(report.float_val_top1, 90.0);
  EXPECT_DOUBLE_EQ(report.float_test_top1, 89.5);
  EXPECT_EQ(report.float_size_bytes, analysis_.float_size_bytes);

  // One event per generation, the initial population included.
  ASSERT_EQ(observer.generations.size(), static_cast<size_t>(kGenerations + 1));
  int64_t computed = 0;
  for (int g = 0; g <= kGenerations; ++g) {
    const GenerationInfo& info = observer.generations[g];
    EXPECT_EQ(info.generation, g);
    EXPECT_EQ(info.generations, kGenerations);
    EXPECT_FALSE(info.restored);
    EXPECT_GT(info.hypervolume, 0);
    EXPECT_LT(info.hypervolume, 1);
    EXPECT_GE(info.computed, computed);
    computed = info.computed;
    ASSERT_FALSE(info.front.empty());
    for (size_t i = 0; i < info.front.size(); ++i) {
      const GenerationPoint& p = info.front[i];
      ASSERT_EQ(p.wbits.size(), static_cast<size_t>(kGenes));
      ASSERT_EQ(p.abits.size(), static_cast<size_t>(kGenes));
      std::vector<qat::LayerBits> bits;
      for (int k = 0; k < kGenes; ++k) bits.push_back({p.wbits[k], p.abits[k]});
      const qat::ModelCost cost =
          qat::ComputeCost(analysis_, bits, qat::Granularity::kPerTensorAffine);
      EXPECT_EQ(p.size_bytes, cost.size_bytes);
      EXPECT_EQ(p.bops, cost.bops);
      EXPECT_GT(p.val_top1, 10);
      EXPECT_LT(p.val_top1, 90);
      if (i > 0) {
        EXPECT_GE(p.size_bytes, info.front[i - 1].size_bytes);
      }
    }
  }

  // Every entry of every batch was reported; the computed ones are the
  // evaluator's runs beside the float model.
  EXPECT_EQ(observer.evaluations[evaluator::Stage::kSearch] +
                observer.evaluations[evaluator::Stage::kFinal],
            summary->computed + summary->cached + summary->repeated);
  EXPECT_EQ(evaluator.runs(evaluator::Stage::kSearch) +
                evaluator.runs(evaluator::Stage::kFinal),
            summary->computed);
  EXPECT_EQ(evaluator.max_runs_of_one_key(), 1);
  ASSERT_FALSE(report.front.empty());
  ASSERT_EQ(report.uniform.size(), 7u);  // 2..8 bits
  EXPECT_EQ(static_cast<size_t>(observer.evaluations[evaluator::Stage::kFinal]),
            report.front.size() + report.uniform.size());
  EXPECT_EQ(summary->generations_done, kGenerations);
  EXPECT_EQ(summary->resumed_from, -1);

  // The post-training baselines: one task each, in one batch, in the
  // report, counted apart from the search and final evaluations.
  for (evaluator::Stage stage :
       {evaluator::Stage::kFloat16, evaluator::Stage::kPtqPerTensor,
        evaluator::Stage::kPtqPerChannel}) {
    EXPECT_EQ(evaluator.runs(stage), 1) << evaluator::StageName(stage);
    EXPECT_EQ(observer.evaluations[stage], 1) << evaluator::StageName(stage);
  }
  ASSERT_EQ(report.baselines.size(), 3u);
  EXPECT_EQ(report.baselines[0].label, "float16");
  EXPECT_TRUE(report.baselines[0].wbits.empty());
  EXPECT_EQ(report.baselines[0].size_bytes, analysis_.float_size_bytes / 2);
  EXPECT_DOUBLE_EQ(report.baselines[0].test_top1, 89.4);
  EXPECT_EQ(report.baselines[1].label, "int8-ptq-per-tensor");
  EXPECT_EQ(report.baselines[2].label, "int8-ptq-per-channel");
  for (size_t i = 1; i < 3; ++i) {
    EXPECT_THAT(report.baselines[i].wbits, Each(8));
    EXPECT_THAT(report.baselines[i].abits, Each(8));
    EXPECT_GT(report.baselines[i].test_top1, 0);
    EXPECT_TRUE(report.baselines[i].result_key.empty());
  }
  for (const char* label :
       {"[float16 ", "[int8-ptq-per-tensor ", "[int8-ptq-per-channel "}) {
    EXPECT_THAT(log.text(), HasSubstr(label));
  }
  EXPECT_THAT(log.text(), HasSubstr(" 3/3] "));

  // Every point names the final-stage result whose artifacts are its
  // exports; no file is named yet.
  CachedEvaluation keys(store_.get(), &evaluator,
                        MakeKeyContext(config_, "digest"));
  for (const auto* list : {&report.front, &report.uniform}) {
    for (const FrontPoint& p : *list) {
      EXPECT_EQ(p.result_key, keys.Key(evaluator::Stage::kFinal, Bits(p)))
          << p.label;
      auto model = store_->GetArtifact(p.result_key, "model.pt");
      ASSERT_TRUE(model.ok()) << model.status();
      EXPECT_EQ(model->value_or(""), "ts") << p.label;
      auto names = store_->ListArtifacts(p.result_key);
      ASSERT_TRUE(names.ok());
      EXPECT_THAT(*names, ::testing::UnorderedElementsAre(
                              "model.pt", "weights.bin", "manifest.json"));
      EXPECT_TRUE(p.torchscript_file.empty());
      EXPECT_GT(p.test_top1, 0);
    }
  }
  EXPECT_EQ(report.uniform[0].label, "uniform-2");
  EXPECT_EQ(report.front[0].label, "front-1");

  // The log is what `autoq run` prints.
  const std::string text = log.text();
  EXPECT_THAT(text, HasSubstr("job fake: fake.pt, 6 quantizable layers, "
                              "float "));
  EXPECT_THAT(text, HasSubstr("val top-1 90.00%, test top-1 89.50%\n"
                              "setup of this test\n"));
  EXPECT_THAT(text, HasSubstr("== initial population: 8 configurations"));
  EXPECT_THAT(text, HasSubstr("== generation 3/3"));
  EXPECT_THAT(text, HasSubstr("  [candidate 1/"));
  EXPECT_THAT(
      text, HasSubstr(absl::StrCat("== final fine-tune: ", report.front.size(),
                                   " front points + 7 uniform "
                                   "configurations")));
  EXPECT_THAT(text, HasSubstr("  [final 1/"));
}

// With search.sensitivity_images, one sensitivity task (cached like any
// result) seeds the initial population with knapsack solutions.
TEST_F(PipelineTest, SeedsTheSearchFromSensitivity) {
  config_.search.sensitivity_images = 100;
  FakeEvaluator evaluator(&analysis_);
  RecordingObserver observer;
  MemoryLog log;
  absl::StatusOr<JobSummary> summary = Run(&evaluator, &observer, log.file());
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_THAT(observer.phases,
              ElementsAre("float", "sensitivity", "search", "final", "done"));
  EXPECT_EQ(evaluator.runs(evaluator::Stage::kSensitivity), 1);
  EXPECT_EQ(observer.evaluations[evaluator::Stage::kSensitivity], 1);
  const std::string text = log.text();
  EXPECT_THAT(text, HasSubstr("sensitivity: 6 layers x 7 bit-widths"));
  EXPECT_THAT(text, HasSubstr("sensitivity + knapsack seeds"));
  ASSERT_FALSE(summary->report.front.empty());

  // The fake's first layers are the sensitive ones: the seeds keep them at
  // more bits than the last, so the front holds such a configuration.
  bool graded = false;
  for (const FrontPoint& p : summary->report.front) {
    graded = graded || p.wbits.front() > p.wbits.back();
  }
  EXPECT_TRUE(graded);

  // A second run of the same job takes the table from the cache.
  FakeEvaluator again(&analysis_);
  ASSERT_TRUE(Run(&again, nullptr).ok());
  EXPECT_EQ(again.runs(evaluator::Stage::kSensitivity), 0);
}

// The knapsack baseline: the sensitivity + knapsack solutions go straight
// to the final fine-tune; the search scores nothing.
TEST_F(PipelineTest, KnapsackStrategyFineTunesTheSolutionsWithoutSearch) {
  config_.search.sensitivity_images = 100;
  config_.search.strategy = evaluator::SearchOptions::Strategy::kKnapsack;
  FakeEvaluator evaluator(&analysis_);
  RecordingObserver observer;
  absl::StatusOr<JobSummary> summary = Run(&evaluator, &observer);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_THAT(observer.phases,
              ElementsAre("float", "sensitivity", "final", "done"));
  EXPECT_EQ(evaluator.runs(evaluator::Stage::kSearch), 0);
  EXPECT_EQ(summary->report.front.size(),
            static_cast<size_t>(config_.search.population / 2));
  for (const FrontPoint& p : summary->report.front) {
    EXPECT_EQ(p.search_val_top1, -1);
    EXPECT_GE(p.test_top1, 0);
  }
  EXPECT_EQ(summary->report.uniform.size(), 7u);
}

// Plain NSGA-II: no sensitivity task, no region in the objectives, and the
// final front is the last population's.
TEST_F(PipelineTest, Nsga2StrategyUsesTheLastPopulation) {
  config_.search.sensitivity_images = 100;  // ignored by this strategy
  config_.search.strategy = evaluator::SearchOptions::Strategy::kNsga2;
  config_.search.max_accuracy_drop = 0.5;
  FakeEvaluator evaluator(&analysis_);
  RecordingObserver observer;
  MemoryLog log;
  absl::StatusOr<JobSummary> summary = Run(&evaluator, &observer, log.file());
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(evaluator.runs(evaluator::Stage::kSensitivity), 0);
  EXPECT_THAT(log.text(), Not(HasSubstr("surrogate:")));
  // Points beyond the 0.5-point region are kept: the thesis has none.
  bool outside = false;
  for (const FrontPoint& p : summary->report.front) {
    outside = outside || p.search_val_top1 < 90.0 - 0.5;
  }
  EXPECT_TRUE(outside);
}

TEST_F(PipelineTest, BaselinesCanBeTurnedOff) {
  config_.final_front.ptq_baselines = false;
  FakeEvaluator evaluator(&analysis_);
  absl::StatusOr<JobSummary> summary = Run(&evaluator, nullptr);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_TRUE(summary->report.baselines.empty());
  EXPECT_EQ(evaluator.runs(evaluator::Stage::kFloat16), 0);
  EXPECT_EQ(evaluator.runs(evaluator::Stage::kPtqPerChannel), 0);
}

// The guided search logs what its surrogate did in every generation.
TEST_F(PipelineTest, GuidedSearchLogsTheSurrogate) {
  FakeEvaluator evaluator(&analysis_);
  MemoryLog log;
  ASSERT_TRUE(Run(&evaluator, nullptr, log.file()).ok());
  EXPECT_THAT(log.text(), HasSubstr("surrogate: "));
  EXPECT_THAT(log.text(), HasSubstr("Kendall tau"));
}

TEST_F(PipelineTest, SecondRunAnswersEverythingFromTheCache) {
  FakeEvaluator first_evaluator(&analysis_);
  RecordingObserver first_observer;
  absl::StatusOr<JobSummary> first = Run(&first_evaluator, &first_observer);
  ASSERT_TRUE(first.ok()) << first.status();

  FakeEvaluator evaluator(&analysis_);
  RecordingObserver observer;
  absl::StatusOr<JobSummary> second = Run(&evaluator, &observer);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(evaluator.runs(), 0);
  EXPECT_EQ(second->computed, 0);
  EXPECT_GT(second->cached, 0);
  EXPECT_EQ(second->resumed_from, kGenerations);
  EXPECT_THAT(observer.phases, ElementsAre("float", "search", "final", "done"));
  EXPECT_EQ(observer.cached_evaluations[evaluator::Stage::kFloat], 1);
  EXPECT_EQ(observer.cached_evaluations[evaluator::Stage::kFinal],
            observer.evaluations[evaluator::Stage::kFinal]);
  EXPECT_EQ(observer.cached_evaluations[evaluator::Stage::kPtqPerChannel], 1);
  EXPECT_EQ(second->report.baselines.size(), 3u);

  // The restored generation is announced once, with the same front.
  ASSERT_EQ(observer.generations.size(), 1u);
  const GenerationInfo& restored = observer.generations[0];
  const GenerationInfo& last = first_observer.generations.back();
  EXPECT_TRUE(restored.restored);
  EXPECT_EQ(restored.generation, kGenerations);
  ASSERT_EQ(restored.front.size(), last.front.size());
  for (size_t i = 0; i < last.front.size(); ++i) {
    EXPECT_EQ(restored.front[i].wbits, last.front[i].wbits);
    EXPECT_EQ(restored.front[i].bops, last.front[i].bops);
  }
  EXPECT_DOUBLE_EQ(restored.hypervolume, last.hypervolume);

  absl::StatusOr<ReportFiles> a = RenderReport(first->report);
  absl::StatusOr<ReportFiles> b = RenderReport(second->report);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->json, b->json);
  EXPECT_EQ(a->csv, b->csv);
  EXPECT_EQ(a->svg, b->svg);
  for (size_t i = 0; i < first->report.front.size(); ++i) {
    EXPECT_EQ(first->report.front[i].result_key,
              second->report.front[i].result_key);
  }
}

TEST_F(PipelineTest, CancelledBetweenGenerationsThenResumed) {
  FakeEvaluator evaluator(&analysis_);
  RecordingObserver observer;
  std::atomic<bool> cancelled{false};
  observer.on_generation = [&](const GenerationInfo& info) {
    if (info.generation == 1) cancelled = true;
  };
  absl::StatusOr<JobSummary> summary =
      Run(&evaluator, &observer, nullptr, &cancelled);
  ASSERT_EQ(summary.status().code(), absl::StatusCode::kCancelled)
      << summary.status();
  EXPECT_EQ(summary.status().message(), "job cancelled");
  EXPECT_THAT(observer.phases, ElementsAre("float", "search"));
  EXPECT_EQ(observer.generations.size(), 2u);
  EXPECT_EQ(evaluator.runs(evaluator::Stage::kFinal), 0);

  // The finished generations are kept: a rerun goes on from generation 1.
  RecordingObserver resumed_observer;
  absl::StatusOr<JobSummary> resumed = Run(&evaluator, &resumed_observer);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ(resumed->resumed_from, 1);
  EXPECT_EQ(resumed->generations_done, kGenerations);
  EXPECT_EQ(evaluator.max_runs_of_one_key(), 1);
  ASSERT_EQ(resumed_observer.generations.size(),
            static_cast<size_t>(kGenerations));  // 1 (restored), 2, 3
  EXPECT_TRUE(resumed_observer.generations[0].restored);
  EXPECT_EQ(resumed_observer.generations.back().generation, kGenerations);
}

TEST_F(PipelineTest, CancelledBeforeTheFinalBatch) {
  FakeEvaluator evaluator(&analysis_);
  RecordingObserver observer;
  std::atomic<bool> cancelled{false};
  observer.on_generation = [&](const GenerationInfo& info) {
    if (info.generation == kGenerations) cancelled = true;
  };
  absl::StatusOr<JobSummary> summary =
      Run(&evaluator, &observer, nullptr, &cancelled);
  ASSERT_EQ(summary.status().code(), absl::StatusCode::kCancelled)
      << summary.status();
  EXPECT_THAT(observer.phases, ElementsAre("float", "search"));
  EXPECT_EQ(evaluator.runs(evaluator::Stage::kFinal), 0);
}

TEST_F(PipelineTest, TasksFailingAfterCancellationEndTheJobAsCancelled) {
  FakeEvaluator evaluator(&analysis_);
  RecordingObserver observer;
  std::atomic<bool> cancelled{false};
  // Cancelled during generation 1's batch; its remaining tasks fail as a
  // remote evaluator fails them.
  observer.on_evaluation = [&](evaluator::Stage stage) {
    if (stage == evaluator::Stage::kSearch &&
        observer.generations.size() == 1 && !cancelled) {
      cancelled = true;
      evaluator.set_fail_all(true, absl::CancelledError("task cancelled"));
    }
  };
  absl::StatusOr<JobSummary> summary =
      Run(&evaluator, &observer, nullptr, &cancelled);
  ASSERT_EQ(summary.status().code(), absl::StatusCode::kCancelled)
      << summary.status();
  EXPECT_EQ(summary.status().message(), "job cancelled");
  EXPECT_EQ(evaluator.runs(evaluator::Stage::kFinal), 0);
}

TEST_F(PipelineTest, FailuresWithoutCancellationAreReportedAsTheyAre) {
  FakeEvaluator evaluator(&analysis_);
  evaluator.set_fail_all(true);
  RecordingObserver observer;
  absl::StatusOr<JobSummary> summary = Run(&evaluator, &observer);
  EXPECT_EQ(summary.status().code(), absl::StatusCode::kResourceExhausted)
      << summary.status();
  EXPECT_THAT(observer.phases, ElementsAre("float"));
}

TEST_F(PipelineTest, RenderedReportEqualsTheWrittenFiles) {
  FakeEvaluator evaluator(&analysis_);
  absl::StatusOr<JobSummary> summary = Run(&evaluator, nullptr);
  ASSERT_TRUE(summary.ok()) << summary.status();
  FrontReport report = summary->report;
  report.front[0].torchscript_file = "front/front-1/model.pt";
  report.front[0].packed_file = "front/front-1/weights.bin";
  report.front[0].manifest_file = "front/front-1/manifest.json";
  absl::StatusOr<ReportFiles> files = RenderReport(report);
  ASSERT_TRUE(files.ok()) << files.status();
  ASSERT_TRUE(WriteFrontJson(report, dir_.File("front.json")).ok());
  ASSERT_TRUE(WriteFrontCsv(report, dir_.File("front.csv")).ok());
  ASSERT_TRUE(WriteFrontSvg(report, dir_.File("front.svg")).ok());
  EXPECT_EQ(files->json, ::autoq::testing::ReadFile(dir_.File("front.json")));
  EXPECT_EQ(files->csv, ::autoq::testing::ReadFile(dir_.File("front.csv")));
  EXPECT_EQ(files->svg, ::autoq::testing::ReadFile(dir_.File("front.svg")));
  EXPECT_THAT(files->json, HasSubstr("\"torchscript_file\": "
                                     "\"front/front-1/model.pt\""));
  EXPECT_THAT(files->csv, HasSubstr("front/front-1/weights.bin"));
  EXPECT_THAT(files->svg, HasSubstr("<svg"));
}

// The search key of a default config on model "m", 3 genes at w4a8, as
// stored by earlier versions: a change here orphans every cached result.
constexpr char kStoredSearchKey[] =
    "3c2ffdbc2899c38ac0d3bec8cf6b1530b146777518e701e62c129c37457fc018";

TEST(MakeKeyContextTest, FloatKeysDependOnTheModelAndDataOnly) {
  evaluator::JobConfig a;
  a.data_spec = "fashion-mnist";
  evaluator::JobConfig b = a;
  b.search_recipe.epochs = a.search_recipe.epochs + 1;
  b.final_front.recipe.lr = a.final_front.recipe.lr * 2;
  b.scheme.granularity = qat::Granularity::kPerChannelSymmetric;
  evaluator::JobConfig c = a;
  c.val_size = a.val_size + 1;
  auto key = [](const evaluator::JobConfig& config, const std::string& digest,
                evaluator::Stage stage) {
    CachedEvaluation e(nullptr, nullptr, MakeKeyContext(config, digest));
    return e.Key(stage, stage == evaluator::Stage::kFloat ||
                                stage == evaluator::Stage::kFloat16
                            ? std::vector<qat::LayerBits>{}
                            : std::vector<qat::LayerBits>(3, {4, 8}));
  };
  EXPECT_EQ(key(a, "m", evaluator::Stage::kFloat),
            key(b, "m", evaluator::Stage::kFloat));
  EXPECT_NE(key(a, "m", evaluator::Stage::kFloat),
            key(c, "m", evaluator::Stage::kFloat));
  EXPECT_NE(key(a, "m", evaluator::Stage::kFloat),
            key(a, "n", evaluator::Stage::kFloat));
  EXPECT_NE(key(a, "m", evaluator::Stage::kSearch),
            key(b, "m", evaluator::Stage::kSearch));
  EXPECT_NE(key(a, "m", evaluator::Stage::kFinal),
            key(b, "m", evaluator::Stage::kFinal));
  EXPECT_NE(key(a, "m", evaluator::Stage::kFloat),
            key(a, "m", evaluator::Stage::kSearch));
  EXPECT_NE(key(a, "m", evaluator::Stage::kSearch),
            key(a, "m", evaluator::Stage::kFinal));
  // Augmentation that is on changes the key; off, the key is the one
  // results were stored under before the option existed.
  evaluator::JobConfig d = a;
  d.search_recipe.random_resized_crop = 0.08;
  EXPECT_NE(key(a, "m", evaluator::Stage::kSearch),
            key(d, "m", evaluator::Stage::kSearch));
  EXPECT_EQ(key(a, "m", evaluator::Stage::kSearch), kStoredSearchKey);
  // The post-training baselines: float16 keyed like float but apart from
  // it, the two int8 ones apart from each other.
  EXPECT_NE(key(a, "m", evaluator::Stage::kFloat16),
            key(a, "m", evaluator::Stage::kFloat));
  EXPECT_EQ(key(a, "m", evaluator::Stage::kFloat16),
            key(b, "m", evaluator::Stage::kFloat16));
  EXPECT_NE(key(a, "m", evaluator::Stage::kPtqPerTensor),
            key(a, "m", evaluator::Stage::kPtqPerChannel));
}

}  // namespace
}  // namespace autoq::search
