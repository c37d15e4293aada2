// QAT on a CUDA device computes what it computes on the CPU: the same
// calibrated activation ranges and eval-mode logits, and a short fine-tune
// with the same losses and the same resulting model, within float32
// rounding (the CPU's fused activation kernel and ATen's CUDA fake-quant
// can round a value on a grid boundary differently, and the CPU path
// quantizes with the range of the step before while training).
//
// Skipped where LibTorch sees no CUDA device (Debian's CPU-only LibTorch,
// machines without a GPU): build against a CUDA LibTorch on a GPU node.
#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <memory>
#include <vector>

#include "qat/builtin_model.h"
#include "qat/model_analysis.h"
#include "qat/quantized_model.h"
#include "qat/test_models.h"
#include "qat/trainer.h"

namespace autoq::qat {
namespace {

using ::autoq::qat::test_util::RandomData;
using ::autoq::qat::test_util::RandomizeBatchNorms;

ProgressOptions Quiet() {
  ProgressOptions quiet;
  quiet.out = nullptr;
  return quiet;
}

// Mean absolute difference of two logit matrices of the same shape.
double MeanAbsDiff(const at::Tensor& a, const at::Tensor& b) {
  return (a - b).abs().mean().item<double>();
}

// Share of rows whose arg-max class is the same in both.
double Top1Agreement(const at::Tensor& a, const at::Tensor& b) {
  return a.argmax(1).eq(b.argmax(1)).to(at::kDouble).mean().item<double>();
}

class DeviceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!torch::cuda::is_available()) {
      GTEST_SKIP() << "no CUDA device visible to this LibTorch (CPU-only "
                      "build or no GPU): build against a CUDA LibTorch on a "
                      "GPU node to run the device tests";
    }
    // Full float32 on the GPU: TF32 convolutions and matmuls differ from
    // the CPU by about 1e-3 relative, enough to move many values across a
    // quantization step. Deterministic cuDNN kernels, so that a failure
    // reproduces.
    at::Context& ctx = at::globalContext();
    tf32_cudnn_ = ctx.allowTF32CuDNN();
    tf32_cublas_ = ctx.allowTF32CuBLAS();
    deterministic_ = ctx.deterministicCuDNN();
    benchmark_ = ctx.benchmarkCuDNN();
    ctx.setAllowTF32CuDNN(false);
    ctx.setAllowTF32CuBLAS(false);
    ctx.setDeterministicCuDNN(true);
    ctx.setBenchmarkCuDNN(false);
    restore_ = true;
  }

  void TearDown() override {
    if (!restore_) return;
    at::Context& ctx = at::globalContext();
    ctx.setAllowTF32CuDNN(tf32_cudnn_);
    ctx.setAllowTF32CuBLAS(tf32_cublas_);
    ctx.setDeterministicCuDNN(deterministic_);
    ctx.setBenchmarkCuDNN(benchmark_);
  }

  // The built-in model in eval mode with non-trivial BN statistics.
  static torch::jit::Module Model(ModelAnalysis* analysis) {
    torch::jit::Module m = MakeBuiltinModel({});
    m.eval();
    auto a = AnalyzeModel(m, {1, 28, 28});
    EXPECT_TRUE(a.ok()) << a.status();
    if (a.ok()) {
      RandomizeBatchNorms(m, *a);
      *analysis = *a;
    }
    return m;
  }

  static std::unique_ptr<QuantizedModel> Make(const torch::jit::Module& m,
                                              const ModelAnalysis& a,
                                              QuantizedModelOptions o,
                                              c10::Device device) {
    o.device = device;
    auto q = QuantizedModel::Create(m, a, o);
    EXPECT_TRUE(q.ok()) << q.status();
    return q.ok() ? std::move(*q) : nullptr;
  }

 private:
  bool restore_ = false;
  bool tf32_cudnn_ = true, tf32_cublas_ = false;
  bool deterministic_ = false, benchmark_ = false;
};

const c10::Device kCuda(c10::kCUDA, 0);
const c10::Device kCpu(c10::kCPU);

// Calibration only (epochs 0), then eval-mode logits on both devices, for
// both weight schemes at 4-bit weights and activations.
TEST_F(DeviceTest, CalibratedModelEvaluatesAlikeOnCpuAndCuda) {
  at::manual_seed(31);
  ModelAnalysis a;
  torch::jit::Module m = Model(&a);
  ASSERT_EQ(a.num_genes(), 12);
  const TensorDataset data = RandomData({1, 28, 28}, 512, 10);
  QatRecipe r;
  r.epochs = 0;
  r.calibration_batches = 4;
  r.eval_batch_size = 64;  // the same calibration batches on both devices

  auto float_model = Make(m, a, {}, kCpu);
  ASSERT_NE(float_model, nullptr);
  auto float_logits = PredictLogits(*float_model, data, 64);
  ASSERT_TRUE(float_logits.ok()) << float_logits.status();

  for (Granularity g :
       {Granularity::kPerTensorAffine, Granularity::kPerChannelSymmetric}) {
    SCOPED_TRACE(GranularityName(g));
    QuantizedModelOptions o;
    o.scheme.granularity = g;
    o.bits.assign(12, {4, 4});
    auto cpu = Make(m, a, o, kCpu);
    auto cuda = Make(m, a, o, kCuda);
    ASSERT_TRUE(cpu != nullptr && cuda != nullptr);
    ASSERT_TRUE(cuda->device().is_cuda());
    const std::vector<WeightQuantState> w = cuda->weight_states();
    ASSERT_FALSE(w.empty());
    EXPECT_TRUE(w[0].master.is_cuda());

    auto cpu_res = RunQat(*cpu, data, data, nullptr, r, Quiet());
    auto cuda_res = RunQat(*cuda, data, data, nullptr, r, Quiet());
    ASSERT_TRUE(cpu_res.ok()) << cpu_res.status();
    ASSERT_TRUE(cuda_res.ok()) << cuda_res.status();
    EXPECT_EQ(cuda_res->size_bytes, cpu_res->size_bytes);

    // The same activation ranges were observed.
    const std::vector<ActivationQuantState> cpu_acts = cpu->activation_states();
    const std::vector<ActivationQuantState> cuda_acts =
        cuda->activation_states();
    ASSERT_EQ(cpu_acts.size(), cuda_acts.size());
    int quantized = 0;
    for (size_t i = 0; i < cpu_acts.size(); ++i) {
      if (cpu_acts[i].abits == 0) continue;
      ++quantized;
      ASSERT_TRUE(cpu_acts[i].calibrated && cuda_acts[i].calibrated) << i;
      const float tol =
          1e-4f * std::max(1.0f, cpu_acts[i].hi - cpu_acts[i].lo);
      EXPECT_NEAR(cuda_acts[i].lo, cpu_acts[i].lo, tol) << "layer " << i;
      EXPECT_NEAR(cuda_acts[i].hi, cpu_acts[i].hi, tol) << "layer " << i;
    }
    EXPECT_GT(quantized, 0);

    auto want = PredictLogits(*cpu, data, 64);
    auto got = PredictLogits(*cuda, data, 64);
    ASSERT_TRUE(want.ok() && got.ok());
    ASSERT_EQ(got->sizes(), want->sizes());
    ASSERT_TRUE(got->is_cpu());
    // 4-bit quantization moves the logits; the device must move them far
    // less than that (a CUDA path that skipped quantization would be off
    // by the whole quantization error).
    const double quant_err = MeanAbsDiff(*want, *float_logits);
    const double device_err = MeanAbsDiff(*got, *want);
    EXPECT_GT(quant_err, 0.0);
    EXPECT_LT(device_err, 0.05 * quant_err)
        << "CPU-vs-CUDA mean |diff| " << device_err
        << ", quantization mean |diff| " << quant_err;
    EXPECT_GE(Top1Agreement(*got, *want), 0.97);
  }
}

// One epoch of QAT (8 steps, BN training, activations quantized from the
// start): the same losses and the same fine-tuned model on both devices.
TEST_F(DeviceTest, ShortFineTuneTrainsAlikeOnCpuAndCuda) {
  at::manual_seed(32);
  ModelAnalysis a;
  torch::jit::Module m = Model(&a);
  ASSERT_EQ(a.num_genes(), 12);
  const TensorDataset data = RandomData({1, 28, 28}, 512, 10);
  QatRecipe r;
  r.epochs = 1;
  r.batch_size = 64;
  r.lr = 0.05;
  r.lr_schedule = "constant";
  r.eval_batch_size = 64;
  r.seed = 9;

  QuantizedModelOptions o;
  o.scheme.granularity = Granularity::kPerChannelSymmetric;
  o.bits.assign(12, {8, 8});
  auto cpu = Make(m, a, o, kCpu);
  auto cuda = Make(m, a, o, kCuda);
  ASSERT_TRUE(cpu != nullptr && cuda != nullptr);
  // Logits before any training (the untrained quantized model, eval mode;
  // calibrated by RunQat below): how far the fine-tune moves the model.
  auto untrained = Make(m, a, o, kCpu);
  ASSERT_NE(untrained, nullptr);
  QatRecipe calibrate_only = r;
  calibrate_only.epochs = 0;
  ASSERT_TRUE(RunQat(*untrained, data, data, nullptr, calibrate_only, Quiet())
                  .ok());
  auto before = PredictLogits(*untrained, data, 64);
  ASSERT_TRUE(before.ok()) << before.status();

  auto cpu_res = RunQat(*cpu, data, data, nullptr, r, Quiet());
  auto cuda_res = RunQat(*cuda, data, data, nullptr, r, Quiet());
  ASSERT_TRUE(cpu_res.ok()) << cpu_res.status();
  ASSERT_TRUE(cuda_res.ok()) << cuda_res.status();
  ASSERT_EQ(cpu_res->curve.size(), 1u);
  ASSERT_EQ(cuda_res->curve.size(), 1u);
  const double cpu_loss = cpu_res->curve[0].train_loss;
  const double cuda_loss = cuda_res->curve[0].train_loss;
  EXPECT_GT(cpu_loss, 0.0);
  EXPECT_NEAR(cuda_loss, cpu_loss, 0.01 * cpu_loss);

  auto want = PredictLogits(*cpu, data, 64);
  auto got = PredictLogits(*cuda, data, 64);
  ASSERT_TRUE(want.ok() && got.ok());
  const double trained = MeanAbsDiff(*want, *before);
  const double device_err = MeanAbsDiff(*got, *want);
  EXPECT_GT(trained, 0.0);
  EXPECT_LT(device_err, 0.05 * trained)
      << "CPU-vs-CUDA mean |diff| " << device_err
      << ", change by the fine-tune " << trained;
  EXPECT_GE(Top1Agreement(*got, *want), 0.97);
}

}  // namespace
}  // namespace autoq::qat
