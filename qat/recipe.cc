#include "qat/recipe.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace autoq::qat {

absl::Status ValidateRecipe(const QatRecipe& r) {
  auto bad = [](const std::string& field, const std::string& why) {
    return absl::InvalidArgumentError(
        absl::StrCat("recipe.", field, ": ", why));
  };
  if (r.epochs < 0) return bad("epochs", "must be >= 0");
  if (r.batch_size < 1) return bad("batch_size", "must be >= 1");
  if (r.eval_batch_size < 0) {
    return bad("eval_batch_size", "must be >= 0 (0: by device)");
  }
  if (!(r.lr > 0) || !std::isfinite(r.lr)) return bad("lr", "must be > 0");
  if (r.momentum < 0 || r.momentum >= 1)
    return bad("momentum", "must be in [0, 1)");
  if (r.weight_decay < 0) return bad("weight_decay", "must be >= 0");
  if (r.optimizer != "sgd" && r.optimizer != "adam") {
    return bad("optimizer", "'" + r.optimizer + "' (expected sgd or adam)");
  }
  if (r.lr_schedule != "constant" && r.lr_schedule != "cosine" &&
      r.lr_schedule != "step") {
    return bad("lr_schedule",
               "'" + r.lr_schedule + "' (expected constant, cosine or step)");
  }
  if (r.act_quant_delay < 0) return bad("act_quant_delay", "must be >= 0");
  if (r.bn_freeze_epoch < -1) return bad("bn_freeze_epoch", "must be >= -1");
  if (r.calibration_batches < 1)
    return bad("calibration_batches", "must be >= 1");
  if (r.random_resized_crop != 0 &&
      !(r.random_resized_crop >= 0.01 && r.random_resized_crop <= 1)) {
    return bad("random_resized_crop",
               "must be 0 (off) or the smallest area share, in 0.01..1");
  }
  if (r.crop_pad < 0 || r.crop_pad > 64)
    return bad("crop_pad", "must be in 0..64");
  return absl::OkStatus();
}

int64_t EvalBatchSize(const QatRecipe& recipe, bool on_cpu) {
  if (recipe.eval_batch_size > 0) return recipe.eval_batch_size;
  return on_cpu ? 64 : 512;
}

}  // namespace autoq::qat
