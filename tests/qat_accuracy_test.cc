// Accuracy of quantization-aware fine-tuning on the trained built-in
// baseline (Fashion-MNIST): what DESIGN.md and the issue promise.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <string>

#include "evaluator/dataset.h"
#include "evaluator/score.h"
#include "evaluator/task_runner.h"
#include "qat/cost_model.h"
#include "qat/model_analysis.h"
#include "qat/process_tuning.h"
#include "tests/testing.h"

namespace autoq {
namespace {

using qat::Granularity;
using qat::LayerBits;

class QatAccuracyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string path = testing::Fixture("builtin_fashion_mnist.pt");
    if (!std::filesystem::exists(path)) return;
    at::set_num_threads(2);
    qat::TuneProcessForTraining();  // as autoq and autoq-worker run
    model_ = new torch::jit::Module(*qat::LoadModel(path));
    auto spec = evaluator::ParseDataSpec("fashion-mnist");
    evaluator::SplitOptions split;
    split.seed = 7;
    split.train_subset = 6000;  // one short fine-tune epoch per config
    data_ = new evaluator::DatasetSplits(*evaluator::LoadDataset(*spec, split));
    analysis_ = new qat::ModelAnalysis(*qat::AnalyzeModel(*model_, {1, 28, 28}));
    float_test_ = evaluator::EvaluateFloat(*model_, *analysis_, data_->test,
                                           c10::Device(c10::kCPU))
                      ->top1;
    std::printf("float test top-1 %.2f%%\n", float_test_);
  }

  void SetUp() override {
    AUTOQ_REQUIRE_FIXTURE(testing::Fixture("builtin_fashion_mnist.pt"));
  }

  // Test top-1 after one QAT epoch with `bits` (weights; activations 8).
  static double QatTop1(const std::vector<int>& wbits, Granularity g) {
    evaluator::ScoreRequest req;
    req.scheme.granularity = g;
    for (int b : wbits) req.bits.push_back(LayerBits{b, 8});
    req.recipe.epochs = 1;
    req.recipe.lr = 0.002;
    req.recipe.seed = 3;
    req.progress.out = nullptr;
    auto score = evaluator::ScoreChromosome(*model_, *analysis_, *data_, req);
    EXPECT_TRUE(score.ok()) << score.status();
    if (!score.ok()) return -1;
    std::printf("%s %s: test top-1 %.2f%% (%+.2f pp), %lld bytes\n",
                g == Granularity::kPerTensorAffine ? "per-tensor " : "per-channel",
                qat::FormatBitList(wbits).c_str(), score->test.top1,
                score->test.top1 - float_test_,
                static_cast<long long>(score->qat.size_bytes));
    return score->test.top1;
  }

  static std::vector<int> Uniform(int b) {
    return std::vector<int>(analysis_->num_genes(), b);
  }

  static torch::jit::Module* model_;
  static evaluator::DatasetSplits* data_;
  static qat::ModelAnalysis* analysis_;
  static double float_test_;
};

torch::jit::Module* QatAccuracyTest::model_ = nullptr;
evaluator::DatasetSplits* QatAccuracyTest::data_ = nullptr;
qat::ModelAnalysis* QatAccuracyTest::analysis_ = nullptr;
double QatAccuracyTest::float_test_ = 0;

TEST_F(QatAccuracyTest, BaselineReachesNinetyPercent) {
  EXPECT_GE(float_test_, 90.0);
}

TEST_F(QatAccuracyTest, UniformBitWidthsOrderAsExpected) {
  const double w8 = QatTop1(Uniform(8), Granularity::kPerTensorAffine);
  std::vector<int> mixed = Uniform(4);
  mixed.front() = 8;
  mixed.back() = 8;
  const double w484 = QatTop1(mixed, Granularity::kPerTensorAffine);
  const double w2 = QatTop1(Uniform(2), Granularity::kPerTensorAffine);
  // 8-bit keeps float accuracy (within 0.5 pp).
  EXPECT_GE(w8, float_test_ - 0.5);
  // 2-bit is clearly below; 8-4-...-4-8 lies in between.
  EXPECT_LT(w2, float_test_ - 3.0);
  EXPECT_GT(w484, w2);
  EXPECT_LE(w484, w8 + 0.3);
}

TEST_F(QatAccuracyTest, PerChannelEightBitKeepsFloatAccuracy) {
  const double w8 = QatTop1(Uniform(8), Granularity::kPerChannelSymmetric);
  EXPECT_GE(w8, float_test_ - 0.5);
}

// The reports' post-training baselines, through the task runner as a
// worker runs them: float16 parameters, and int8 PTQ (calibration only).
class BaselineTest : public QatAccuracyTest {
 protected:
  static absl::StatusOr<evaluator::EvalRecord> Run(evaluator::Stage stage,
                                                   int wbits) {
    evaluator::JobData job;
    job.model = *model_;
    job.analysis = *analysis_;
    job.data = *data_;
    job.ptq_calibration_images = 1024;
    evaluator::EvalTask task;
    task.stage = stage;
    if (wbits > 0) {
      task.bits.assign(static_cast<size_t>(analysis_->num_genes()),
                       LayerBits{wbits, 8});
    }
    absl::StatusOr<evaluator::EvalRecord> r =
        evaluator::RunTask(job, task, c10::Device(c10::kCPU));
    if (r.ok()) {
      std::printf("%s w%d: val %.2f%% test %.2f%% (%+.2f pp), %lld bytes\n",
                  evaluator::StageName(stage), wbits, r->qat.best_val_top1,
                  r->qat.test_top1, r->qat.test_top1 - float_test_,
                  static_cast<long long>(r->qat.size_bytes));
    }
    return r;
  }
};

TEST_F(BaselineTest, Float16KeepsFloatAccuracyAtHalfTheSize) {
  absl::StatusOr<evaluator::EvalRecord> r = Run(evaluator::Stage::kFloat16, 0);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_NEAR(r->qat.test_top1, float_test_, 0.1);
  EXPECT_EQ(r->qat.size_bytes, analysis_->float_size_bytes / 2);
  // A float16 task takes no bits.
  evaluator::JobData job;
  job.model = *model_;
  job.analysis = *analysis_;
  job.data = *data_;
  evaluator::EvalTask bad;
  bad.stage = evaluator::Stage::kFloat16;
  bad.bits.push_back(LayerBits{8, 8});
  EXPECT_EQ(evaluator::RunTask(job, bad, c10::Device(c10::kCPU)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(BaselineTest, Float16RoundsEveryParameterOfACopy) {
  absl::StatusOr<torch::jit::Module> half =
      evaluator::WithFloat16Parameters(*model_);
  ASSERT_TRUE(half.ok()) << half.status();
  bool changed = false;
  std::map<std::string, at::Tensor> original;
  for (const auto& p : model_->named_parameters()) original[p.name] = p.value;
  for (const auto& p : half->named_parameters()) {
    ASSERT_EQ(original.count(p.name), 1u) << p.name;
    const at::Tensor before = original[p.name];
    // Representable in float16, and the model itself untouched.
    EXPECT_TRUE(at::equal(p.value, p.value.to(at::kHalf).to(at::kFloat)))
        << p.name;
    changed = changed || !at::equal(p.value, before);
  }
  EXPECT_TRUE(changed);
}

TEST_F(BaselineTest, Int8PtqIsCloseToFloatAndLowBitPtqIsNot) {
  absl::StatusOr<evaluator::EvalRecord> channel =
      Run(evaluator::Stage::kPtqPerChannel, 8);
  absl::StatusOr<evaluator::EvalRecord> tensor =
      Run(evaluator::Stage::kPtqPerTensor, 8);
  ASSERT_TRUE(channel.ok()) << channel.status();
  ASSERT_TRUE(tensor.ok()) << tensor.status();
  EXPECT_GE(channel->qat.test_top1, float_test_ - 1.0);
  EXPECT_GE(tensor->qat.test_top1, float_test_ - 2.0);
  // Sizes as the cost model counts them, by granularity.
  const std::vector<LayerBits> int8(
      static_cast<size_t>(analysis_->num_genes()), LayerBits{8, 8});
  EXPECT_EQ(channel->qat.size_bytes,
            qat::ComputeCost(*analysis_, int8,
                             Granularity::kPerChannelSymmetric)
                .size_bytes);
  EXPECT_EQ(tensor->qat.size_bytes,
            qat::ComputeCost(*analysis_, int8, Granularity::kPerTensorAffine)
                .size_bytes);
  // No training: the same task gives the same scores.
  absl::StatusOr<evaluator::EvalRecord> again =
      Run(evaluator::Stage::kPtqPerChannel, 8);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->qat.test_top1, channel->qat.test_top1);
  // Without a fine-tune, 2-bit weights collapse: the weights are quantized.
  absl::StatusOr<evaluator::EvalRecord> w2 =
      Run(evaluator::Stage::kPtqPerChannel, 2);
  ASSERT_TRUE(w2.ok());
  EXPECT_LT(w2->qat.test_top1, channel->qat.test_top1 - 20);
}

}  // namespace
}  // namespace autoq
