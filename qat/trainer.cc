#include "qat/trainer.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <torch/optim/adam.h>
#include <torch/optim/sgd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <numeric>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "qat/augment.h"
#include "qat/batch_prefetcher.h"
#include "qat/cost_model.h"
#include "qat/torch_errors.h"

namespace autoq::qat {
namespace {

using Clock = std::chrono::steady_clock;

// Images whose activation ranges seed the EMA observers before training.
constexpr int64_t kCalibrationSeedImages = 512;

// Decoded batches a streamed dataset keeps ready ahead of training.
constexpr int kPrefetchDepth = 4;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

std::unique_ptr<torch::optim::Optimizer> MakeOptimizer(
    const QatRecipe& r, std::vector<at::Tensor> params) {
  if (r.optimizer == "adam") {
    return std::make_unique<torch::optim::Adam>(
        params, torch::optim::AdamOptions(r.lr).weight_decay(r.weight_decay));
  }
  return std::make_unique<torch::optim::SGD>(params,
                                             torch::optim::SGDOptions(r.lr)
                                                 .momentum(r.momentum)
                                                 .weight_decay(r.weight_decay));
}

double LearningRate(const QatRecipe& r, int epoch, int64_t step,
                    int64_t steps_per_epoch) {
  if (r.lr_schedule == "cosine") {
    double total = static_cast<double>(r.epochs) * steps_per_epoch;
    double t = static_cast<double>(epoch) * steps_per_epoch + step;
    return 0.5 * r.lr * (1.0 + std::cos(M_PI * t / std::max(total, 1.0)));
  }
  if (r.lr_schedule == "step") {
    return r.lr * std::pow(r.step_gamma, epoch / std::max(r.step_epochs, 1));
  }
  return r.lr;
}

void SetLearningRate(torch::optim::Optimizer& opt, double lr) {
  for (auto& group : opt.param_groups()) group.options().set_lr(lr);
}

// Thrown inside RunQat's loops when ProgressOptions::cancel is set; not a
// std::exception, so only RunQat's own handler turns it into CANCELLED.
struct Cancelled {};

void CheckCancel(const std::atomic<bool>* cancel) {
  if (cancel != nullptr && cancel->load(std::memory_order_relaxed)) {
    throw Cancelled{};
  }
}

// Logits of `data` in eval mode, batch by batch; throws on LibTorch errors
// and on `cancel`.
at::Tensor PredictLogitsOrThrow(QuantizedModel& model,
                                const TensorDataset& data, int64_t batch_size,
                                const std::atomic<bool>* cancel) {
  at::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.Train(false);
  model.SetObserveActivations(false);
  std::vector<at::Tensor> parts;
  for (int64_t b = 0; b < data.size(); b += batch_size) {
    CheckCancel(cancel);
    at::Tensor x = SliceImages(data, b, std::min(b + batch_size, data.size()));
    parts.push_back(model.Forward(x).to(at::kCPU));
  }
  model.Train(was_training);
  if (parts.empty()) return at::empty({0, 0});
  return at::cat(parts);
}

// Evaluates in eval mode without touching activation ranges.
double EvalTop1(QuantizedModel& model, const TensorDataset& data, int64_t batch,
                const std::atomic<bool>* cancel) {
  return Top1(PredictLogitsOrThrow(model, data, batch, cancel), data.labels);
}

// Sets activation ranges from a few training batches in eval mode, for
// models evaluated without fine-tuning.
void Calibrate(QuantizedModel& model, const TensorDataset& train, int batches,
               int64_t batch) {
  at::NoGradGuard no_grad;
  model.Train(false);
  model.SetObserveActivations(true);
  for (int b = 0; b < batches; ++b) {
    int64_t begin = b * batch;
    if (begin >= train.size()) break;
    model.Forward(
        SliceImages(train, begin, std::min(begin + batch, train.size())));
  }
  model.SetObserveActivations(false);
}

}  // namespace

double Top1(const at::Tensor& logits, const at::Tensor& labels) {
  if (labels.numel() == 0) return 0.0;
  at::Tensor correct = logits.argmax(1).eq(labels.to(logits.device())).sum();
  return 100.0 * correct.item<int64_t>() / labels.numel();
}

absl::StatusOr<at::Tensor> PredictLogits(QuantizedModel& model,
                                         const TensorDataset& data,
                                         int64_t batch_size) {
  try {
    return PredictLogitsOrThrow(model, data, batch_size, nullptr);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("evaluation failed: ", SummarizeTorchError(e)));
  }
}

absl::StatusOr<QatResult> RunQat(QuantizedModel& model,
                                 const TensorDataset& train,
                                 const TensorDataset& val,
                                 const TensorDataset* test,
                                 const QatRecipe& recipe,
                                 const ProgressOptions& progress) {
  RETURN_IF_ERROR(ValidateRecipe(recipe));
  if (train.size() == 0 && recipe.epochs > 0) {
    return absl::InvalidArgumentError("the training split is empty");
  }
  if (val.size() == 0) {
    return absl::InvalidArgumentError("the validation split is empty");
  }
  const auto wall_start = Clock::now();
  QatResult result;
  const QuantizedModelOptions& opts = model.options();
  if (!opts.bits.empty()) {
    ModelCost cost =
        ComputeCost(model.analysis(), opts.bits, opts.scheme.granularity);
    result.size_bytes = cost.size_bytes;
    result.bops = cost.bops;
  }
  try {
    at::manual_seed(recipe.seed);  // dropout and other in-graph randomness
    const int64_t batch = std::min<int64_t>(recipe.batch_size, train.size());
    const int64_t steps = batch > 0 ? train.size() / batch : 0;
    auto optimizer = MakeOptimizer(recipe, model.Parameters());
    std::vector<int64_t> order(static_cast<size_t>(train.size()));
    std::iota(order.begin(), order.end(), 0);
    const c10::Device device = model.device();
    const int64_t eval_batch = EvalBatchSize(recipe, device.is_cpu());
    const at::Tensor train_labels = train.labels.to(device);

    if (recipe.epochs == 0 || !model.activations_calibrated()) {
      const auto calibration_start = Clock::now();
      // With training to follow, calibration only seeds the EMA ranges that
      // every training step updates. The seed still weighs about half at
      // the end of a 64-step fine-tune (0.99^64), so it comes from a fixed
      // 512 images, not from one (smaller) training batch.
      if (recipe.epochs == 0) {
        Calibrate(model, train, recipe.calibration_batches, eval_batch);
      } else {
        Calibrate(model, train, 1, kCalibrationSeedImages);
      }
      result.calibration_seconds = Seconds(calibration_start);
    }
    for (int epoch = 0; epoch < recipe.epochs; ++epoch) {
      const auto epoch_start = Clock::now();
      if (epoch == recipe.bn_freeze_epoch) model.FreezeBatchNorm();
      const bool quantize_acts = epoch >= recipe.act_quant_delay;
      model.Train(true);
      model.SetObserveActivations(true);
      model.SetQuantizeActivations(quantize_acts);
      std::mt19937_64 rng(recipe.seed * 1000003u +
                          static_cast<uint64_t>(epoch));
      std::shuffle(order.begin(), order.end(), rng);
      at::Tensor perm = at::tensor(order, at::kLong);
      // A streamed dataset's batches are decoded ahead on other threads.
      std::unique_ptr<BatchPrefetcher> prefetch;
      if (train.streamed()) {
        std::vector<at::Tensor> batches;
        for (int64_t s = 0; s < steps; ++s) {
          batches.push_back(perm.slice(0, s * batch, (s + 1) * batch));
        }
        prefetch = std::make_unique<BatchPrefetcher>(
            train, std::move(batches), DefaultDecoderThreads(),
            kPrefetchDepth);
      }

      Progress bar(absl::StrFormat("epoch %d/%d", epoch + 1, recipe.epochs),
                   steps * batch, progress);
      at::Tensor loss_sum = at::zeros({}, at::TensorOptions().device(device));
      at::Tensor correct =
          at::zeros({}, at::TensorOptions().dtype(at::kLong).device(device));
      double lr = recipe.lr;
      for (int64_t s = 0; s < steps; ++s) {
        CheckCancel(progress.cancel);
        at::Tensor idx = perm.slice(0, s * batch, (s + 1) * batch);
        at::Tensor x = Augment(
            recipe,
            (prefetch ? prefetch->Next() : GatherImages(train, idx)).to(device),
            rng);
        at::Tensor y = train_labels.index_select(0, idx.to(device));
        lr = LearningRate(recipe, epoch, s, steps);
        SetLearningRate(*optimizer, lr);
        optimizer->zero_grad();
        at::Tensor logits = model.Forward(x);
        at::Tensor loss = at::cross_entropy_loss(logits, y);
        loss.backward();
        model.PropagateGradients();
        optimizer->step();
        {
          at::NoGradGuard no_grad;
          loss_sum += loss.detach();
          correct += logits.argmax(1).eq(y).sum();
        }
        bar.Update((s + 1) * batch);
      }
      EpochStats st;
      st.epoch = epoch;
      st.lr = lr;
      st.acts_quantized = quantize_acts;
      st.train_loss = steps > 0 ? loss_sum.item<double>() / steps : 0;
      st.train_top1 =
          steps > 0 ? 100.0 * correct.item<int64_t>() / (steps * batch) : 0;
      const double train_s = Seconds(epoch_start);
      result.train_seconds += train_s;
      st.images_per_s = train_s > 0 ? steps * batch / train_s : 0;
      const auto val_start = Clock::now();
      st.val_top1 =
          EvalTop1(model, val, eval_batch, progress.cancel);
      result.val_seconds += Seconds(val_start);
      st.seconds = Seconds(epoch_start);
      bar.Finish(absl::StrFormat("loss %.4f train %.2f%% val %.2f%%",
                                 st.train_loss, st.train_top1, st.val_top1));
      result.curve.push_back(st);
    }
    if (recipe.epochs == 0) {
      model.SetQuantizeActivations(true);
      EpochStats st;
      st.acts_quantized = true;
      const auto val_start = Clock::now();
      st.val_top1 =
          EvalTop1(model, val, eval_batch, progress.cancel);
      result.val_seconds += Seconds(val_start);
      result.curve.push_back(st);
    }
    const bool any_quantized =
        std::any_of(result.curve.begin(), result.curve.end(),
                    [](const EpochStats& s) { return s.acts_quantized; });
    for (const EpochStats& s : result.curve) {
      if (any_quantized && !s.acts_quantized) continue;
      if (result.best_epoch < 0 || s.val_top1 > result.best_val_top1) {
        result.best_val_top1 = s.val_top1;
        result.best_epoch = s.epoch;
      }
    }
    result.final_val_top1 = result.curve.back().val_top1;
    if (test != nullptr && test->size() > 0) {
      const auto test_start = Clock::now();
      result.test_top1 =
          EvalTop1(model, *test, eval_batch, progress.cancel);
      result.test_seconds = Seconds(test_start);
    }
  } catch (const Cancelled&) {
    return absl::CancelledError("the fine-tune was cancelled");
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("training failed: ", SummarizeTorchError(e)));
  }
  result.wall_seconds = Seconds(wall_start);
  return result;
}

}  // namespace autoq::qat
