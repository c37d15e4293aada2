// Accuracy of quantization-aware fine-tuning on the trained built-in
// baseline (Fashion-MNIST): what DESIGN.md and the issue promise.
#include <gtest/gtest.h>

#include <ATen/Parallel.h>

#include <cstdio>
#include <filesystem>

#include "evaluator/dataset.h"
#include "evaluator/score.h"
#include "qat/model_analysis.h"
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

}  // namespace
}  // namespace autoq
