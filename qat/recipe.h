// What a QAT fine-tune is asked to do (QatRecipe) and what it reports
// (QatResult): plain values, no LibTorch, so that the search, the service
// and the job config can use them without compiling LibTorch headers.
#ifndef AUTOQ_QAT_RECIPE_H_
#define AUTOQ_QAT_RECIPE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace autoq::qat {

// A QAT fine-tune. Defaults suit a short fine-tune of a trained model.
struct QatRecipe {
  int epochs = 1;  // 0: calibrate activations, evaluate
  int64_t batch_size = 128;
  std::string optimizer = "sgd";  // "sgd" (momentum) or "adam"
  double lr = 0.005;
  double momentum = 0.9;  // sgd only
  double weight_decay = 0.0;
  std::string lr_schedule = "cosine";  // "constant", "cosine", "step"
  double step_gamma = 0.1;             // "step": lr *= gamma every step_epochs
  int step_epochs = 1;
  int act_quant_delay = 0;  // epochs with activations observed, not quantized
  int bn_freeze_epoch =
      -1;  // from this epoch on BN uses running stats; -1 never
  int calibration_batches = 8;  // for activation ranges when epochs == 0
  // Training-time augmentation (off by default: a fine-tune sees the data as
  // the model was trained on it). hflip mirrors half of each batch; crop_pad
  // pads by this many pixels and crops back at a random offset per batch;
  // random_resized_crop > 0 is torchvision's RandomResizedCrop for each
  // image: a crop of this to 1 of the area at an aspect ratio in 3/4..4/3,
  // resized back to the input (bilinear).
  bool hflip = false;
  int crop_pad = 0;
  double random_resized_crop = 0;
  // Images per forward in validation, test and calibration passes; 0 picks
  // by device (EvalBatchSize). Results do not depend on it.
  int64_t eval_batch_size = 0;
  uint64_t seed = 0;
};

// The eval batch size `recipe` asks for, or when it says 0: 64 on a CPU
// (small batches stay in cache: 7,600-7,900 images/s at 64 against
// 6,600-7,000 at 512 for the default model, bench/eval_bench.cc), 512 on
// an accelerator, where large batches amortize kernel launches.
int64_t EvalBatchSize(const QatRecipe& recipe, bool on_cpu);

// Clear error naming the field for a recipe out of range.
absl::Status ValidateRecipe(const QatRecipe& recipe);

struct EpochStats {
  int epoch = 0;
  double lr = 0;
  double train_loss = 0;
  double train_top1 = 0;
  double val_top1 = 0;
  bool acts_quantized = false;
  double seconds = 0;
  double images_per_s = 0;
};

struct QatResult {
  // Best validation top-1 (percent) over epochs whose activations were
  // quantized (all epochs when none were), and where it was reached.
  double best_val_top1 = 0;
  int best_epoch = -1;
  double final_val_top1 = 0;
  double test_top1 = -1;  // -1 when no test split was given
  std::vector<EpochStats> curve;
  int64_t size_bytes = 0;  // 0 in float mode
  int64_t bops = 0;
  // Where the wall time went (seconds): training steps, validation passes,
  // activation calibration, the test pass; model preparation and exports
  // are the task runner's (evaluator/task_runner.h), 0 from RunQat.
  double train_seconds = 0;
  double val_seconds = 0;
  double calibration_seconds = 0;
  double test_seconds = 0;
  double prepare_seconds = 0;
  double export_seconds = 0;
  double wall_seconds = 0;
};

}  // namespace autoq::qat

#endif  // AUTOQ_QAT_RECIPE_H_
