#include "qat/quantized_model.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <gtest/gtest.h>

#include "qat/bn_fold.h"
#include "qat/builtin_model.h"
#include "qat/graph_layers.h"
#include "qat/test_models.h"
#include "qat/trainer.h"
#include "tests/testing.h"

namespace autoq::qat {
namespace {

using ::autoq::qat::test_util::RandomData;
using ::autoq::qat::test_util::RandomizeBatchNorms;

torch::jit::Module Builtin() {
  torch::jit::Module m = qat::MakeBuiltinModel({});
  m.eval();
  return m;
}

// Two quiet epochs on batches of 64, BN frozen in the second.
QatRecipe TwoEpochs(uint64_t seed) {
  QatRecipe r;
  r.epochs = 2;
  r.batch_size = 64;
  r.bn_freeze_epoch = 1;
  r.seed = seed;
  return r;
}

ProgressOptions Quiet() {
  ProgressOptions quiet;
  quiet.out = nullptr;
  return quiet;
}

// Folds every BN of `m` (given non-trivial statistics) into a copy and
// compares eval outputs on a batch of shape `input`.
void ExpectFoldKeepsOutput(torch::jit::Module m, std::vector<int64_t> input) {
  m.eval();
  auto a = AnalyzeModel(m, {input.begin() + 1, input.end()});
  ASSERT_TRUE(a.ok()) << a.status();
  RandomizeBatchNorms(m, *a);
  at::Tensor x = at::randn(input);
  at::NoGradGuard no_grad;
  at::Tensor want = m.forward({x}).toTensor();
  torch::jit::Module folded = m.deepcopy();
  absl::Status folded_ok = FoldBatchNormInPlace(folded, *a);
  ASSERT_TRUE(folded_ok.ok()) << folded_ok;
  at::Tensor got = folded.forward({x}).toTensor();
  EXPECT_LT((got - want).abs().max().item<double>(), 1e-5);
  // The original is untouched.
  EXPECT_TRUE(m.forward({x}).toTensor().equal(want));
}

TEST(BnFoldTest, FoldedFloatModelReproducesUnfoldedOutput) {
  at::manual_seed(3);
  ExpectFoldKeepsOutput(Builtin(), {16, 1, 28, 28});
}

TEST(BnFoldTest, FoldsTorchvisionMobileNetV2) {
  std::string path = testing::Fixture("mobilenet_v2_scripted.pt");
  AUTOQ_REQUIRE_FIXTURE(path);
  at::manual_seed(4);
  ExpectFoldKeepsOutput(*LoadModel(path), {2, 3, 64, 64});
}

TEST(QuantizedModelTest, FloatModeIsTheOriginalModel) {
  torch::jit::Module m = Builtin();
  auto a = AnalyzeModel(m, {1, 28, 28});
  ASSERT_TRUE(a.ok());
  auto q = QuantizedModel::Create(m, *a, {});
  ASSERT_TRUE(q.ok()) << q.status();
  at::Tensor x = at::randn({8, 1, 28, 28});
  at::NoGradGuard no_grad;
  at::Tensor want = m.forward({x}).toTensor();
  at::Tensor got = (*q)->Forward(x);
  EXPECT_LT((got - want).abs().max().item<double>(), 1e-5);
}

TEST(QuantizedModelTest, RejectsBadBitConfigs) {
  torch::jit::Module m = Builtin();
  auto a = AnalyzeModel(m, {1, 28, 28});
  ASSERT_TRUE(a.ok());
  QuantizedModelOptions short_list;
  short_list.bits.assign(3, {8, 8});
  EXPECT_EQ(QuantizedModel::Create(m, *a, short_list).status().code(),
            absl::StatusCode::kInvalidArgument);
  QuantizedModelOptions out_of_range;
  out_of_range.bits.assign(12, {8, 8});
  out_of_range.bits[4].wbits = 9;
  EXPECT_EQ(QuantizedModel::Create(m, *a, out_of_range).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// Eval-mode weights sit on the 2^b grid; with BN folding the grid is that
// of W*s, so check the unfolded mode.
TEST(QuantizedModelTest, WeightsAreOnTheGrid) {
  torch::jit::Module m = Builtin();
  auto a = AnalyzeModel(m, {1, 28, 28});
  ASSERT_TRUE(a.ok());
  QuantizedModelOptions o;
  o.scheme.bn_fold = BnFold::kNone;
  o.bits.assign(12, {2, 8});
  o.bits[0].wbits = 3;
  auto q = QuantizedModel::Create(m, *a, o);
  ASSERT_TRUE(q.ok());
  at::NoGradGuard no_grad;
  (*q)->Forward(at::randn({2, 1, 28, 28}));
  for (const LayerInfo* l : a->genes()) {
    at::Tensor w = AttrAt((*q)->module(), l->weight_path).toTensor();
    int bits = l->gene == 0 ? 3 : 2;
    EXPECT_LE(std::get<0>(at::_unique(w)).numel(), 1 << bits) << l->weight_path;
  }
  // The caller's module keeps its float weights.
  at::Tensor orig = AttrAt(m, a->layers[1].weight_path).toTensor();
  EXPECT_GT(std::get<0>(at::_unique(orig)).numel(), 4);
}

// Straight-through estimator: master gradients equal the shadow weight's
// gradient where the value was inside the clamp range and zero outside.
TEST(QuantizedModelTest, StraightThroughEstimatorMasksClampedWeights) {
  at::manual_seed(5);
  torch::jit::Module m = Builtin();
  auto a = AnalyzeModel(m, {1, 28, 28});
  ASSERT_TRUE(a.ok());
  QuantizedModelOptions o;
  o.scheme.bn_fold = BnFold::kNone;
  o.scheme.range = RangeMethod::kMse;  // clips, so some weights are clamped
  o.bits.assign(12, {3, 8});
  auto q = QuantizedModel::Create(m, *a, o);
  ASSERT_TRUE(q.ok());
  QuantizedModel& model = **q;
  model.Train(true);
  at::Tensor loss = model.Forward(at::randn({32, 1, 28, 28})).pow(2).mean();
  loss.backward();
  // Snapshot the shadow gradients before they are moved to the masters.
  std::vector<at::Tensor> shadow_grads;
  for (const LayerInfo* l : a->genes()) {
    shadow_grads.push_back(
        AttrAt(model.module(), l->weight_path).toTensor().grad().clone());
  }
  model.PropagateGradients();
  std::vector<at::Tensor> params = model.Parameters();
  int64_t clamped = 0;
  for (size_t i = 0; i < shadow_grads.size(); ++i) {
    at::Tensor master = params[i];
    FakeQuantOutput fq =
        FakeQuantize(master.detach(), model.weight_params()[i]);
    at::Tensor expect = shadow_grads[i] * fq.mask;
    EXPECT_TRUE(master.grad().equal(expect)) << i;
    clamped += (~fq.mask).sum().item<int64_t>();
    EXPECT_FALSE(AttrAt(model.module(), a->genes()[i]->weight_path)
                     .toTensor()
                     .grad()
                     .defined());
  }
  EXPECT_GT(clamped, 0);
}

// A few steps on random data: deterministic per seed, both schemes train.
TEST(QuantizedModelTest, QatIsDeterministicAndRunsBothSchemes) {
  at::manual_seed(6);
  const TensorDataset data = RandomData({1, 28, 28}, 256, 10);
  torch::jit::Module m = Builtin();
  auto a = AnalyzeModel(m, {1, 28, 28});
  ASSERT_TRUE(a.ok());
  QatRecipe r = TwoEpochs(11);
  r.act_quant_delay = 1;
  const ProgressOptions quiet = Quiet();
  for (Granularity g :
       {Granularity::kPerTensorAffine, Granularity::kPerChannelSymmetric}) {
    std::vector<double> losses;
    for (int run = 0; run < 2; ++run) {
      QuantizedModelOptions o;
      o.scheme.granularity = g;
      o.bits.assign(12, {4, 4});
      auto q = QuantizedModel::Create(m, *a, o);
      ASSERT_TRUE(q.ok());
      auto res = RunQat(**q, data, data, &data, r, quiet);
      ASSERT_TRUE(res.ok()) << res.status();
      ASSERT_EQ(res->curve.size(), 2u);
      EXPECT_FALSE(res->curve[0].acts_quantized);
      EXPECT_TRUE(res->curve[1].acts_quantized);
      EXPECT_EQ(res->best_epoch, 1);  // only quantized epochs count
      EXPECT_GT(res->size_bytes, 0);
      losses.push_back(res->curve[1].train_loss);
    }
    EXPECT_EQ(losses[0], losses[1]);
  }
}

// A model reset to new bits after a fine-tune (BN frozen, ranges observed,
// weights trained) trains exactly like one freshly built with those bits.
TEST(QuantizedModelTest, ResetTrainsLikeAFreshModel) {
  at::manual_seed(7);
  const TensorDataset data = RandomData({1, 28, 28}, 192, 10);
  torch::jit::Module m = Builtin();
  auto a = AnalyzeModel(m, {1, 28, 28});
  ASSERT_TRUE(a.ok());
  const QatRecipe r = TwoEpochs(5);
  const ProgressOptions quiet = Quiet();
  for (BnFold fold : {BnFold::kApproximate, BnFold::kExact}) {
    QuantizedModelOptions o;
    o.scheme.granularity = Granularity::kPerTensorAffine;
    o.scheme.bn_fold = fold;
    o.bits.assign(12, {3, 5});
    auto reused = QuantizedModel::Create(m, *a, o);
    ASSERT_TRUE(reused.ok()) << reused.status();
    ASSERT_TRUE(RunQat(**reused, data, data, nullptr, r, quiet).ok());
    std::vector<LayerBits> bits(12, {6, 4});
    bits[0] = {8, 8};
    ASSERT_TRUE((*reused)->Reset(bits).ok());
    o.bits = bits;
    auto fresh = QuantizedModel::Create(m, *a, o);
    ASSERT_TRUE(fresh.ok()) << fresh.status();
    auto want = RunQat(**fresh, data, data, nullptr, r, quiet);
    auto got = RunQat(**reused, data, data, nullptr, r, quiet);
    ASSERT_TRUE(want.ok() && got.ok());
    EXPECT_EQ(got->size_bytes, want->size_bytes);
    ASSERT_EQ(got->curve.size(), want->curve.size());
    for (size_t e = 0; e < want->curve.size(); ++e) {
      EXPECT_EQ(got->curve[e].train_loss, want->curve[e].train_loss) << e;
      EXPECT_EQ(got->curve[e].val_top1, want->curve[e].val_top1) << e;
    }
    at::Tensor x = SliceImages(data, 0, 32);
    (*reused)->Train(false);
    (*fresh)->Train(false);
    at::NoGradGuard no_grad;
    EXPECT_TRUE((*reused)->Forward(x).equal((*fresh)->Forward(x)));
  }
  // Float and quantized models do not turn into each other.
  QuantizedModelOptions o;
  auto float_model = QuantizedModel::Create(m, *a, o);
  ASSERT_TRUE(float_model.ok());
  EXPECT_FALSE((*float_model)->Reset(std::vector<LayerBits>(12, {8, 8})).ok());
  EXPECT_TRUE((*float_model)->Reset({}).ok());
}

}  // namespace
}  // namespace autoq::qat

namespace autoq::qat {
namespace {

// The exact fold (Krishnamoorthi 2018) evaluates like the approximate one
// (both are the deployed folded layer once BN uses running statistics), but
// trains with the float convolution's batch statistics.
TEST(ExactFoldTest, EvalMatchesApproximateFoldAndTrainingUsesFloatStats) {
  at::manual_seed(8);
  torch::jit::Module m = Builtin();
  auto a = AnalyzeModel(m, {1, 28, 28});
  ASSERT_TRUE(a.ok());
  RandomizeBatchNorms(m, *a);
  QuantizedModelOptions approx;
  approx.bits.assign(12, {4, 8});
  QuantizedModelOptions exact = approx;
  exact.scheme.bn_fold = BnFold::kExact;
  auto qa = QuantizedModel::Create(m, *a, approx);
  auto qe = QuantizedModel::Create(m, *a, exact);
  ASSERT_TRUE(qa.ok() && qe.ok()) << qe.status();
  at::Tensor x = at::randn({16, 1, 28, 28});
  {
    at::NoGradGuard no_grad;
    at::Tensor ya = (*qa)->Forward(x);
    at::Tensor ye = (*qe)->Forward(x);
    EXPECT_LT((ya - ye).abs().max().item<double>(), 1e-4);
  }
  // One training forward: the first BN's running mean moves towards the
  // batch mean of the float convolution of the stem.
  QuantizedModel& model = **qe;
  model.Train(true);
  model.SetQuantizeActivations(false);
  const LayerInfo& stem = a->layers[0];
  at::Tensor rm =
      SubmoduleAt(model.module(), stem.bn_path).attr("running_mean").toTensor();
  at::Tensor before = rm.clone();
  at::Tensor master = model.Parameters()[0];
  at::Tensor yf;
  {
    at::NoGradGuard no_grad;
    yf = at::conv2d(x.contiguous(at::MemoryFormat::ChannelsLast), master, {},
                    {1, 1}, {1, 1});
  }
  at::Tensor loss = model.Forward(x).logsumexp(1).mean();
  at::Tensor want = before.lerp(yf.mean({0, 2, 3}), 0.1);
  EXPECT_TRUE(at::allclose(rm, want, 1e-4, 1e-5));
  loss.backward();
  model.PropagateGradients();
  EXPECT_TRUE(master.grad().defined());
  EXPECT_GT(master.grad().abs().sum().item<double>(), 0);
}

}  // namespace
}  // namespace autoq::qat
