// The quantization-aware training loop and evaluation of a QuantizedModel.
//
// Thread-safety: RunQat and Evaluate use the model exclusively for their
// duration; distinct models may train on distinct threads at once (the
// intra-op thread pool is shared, so size it with --threads).
#ifndef AUTOQ_QAT_TRAINER_H_
#define AUTOQ_QAT_TRAINER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "qat/progress.h"
#include "qat/quantized_model.h"
#include "qat/recipe.h"
#include "qat/tensor_dataset.h"

namespace autoq::qat {

// Fine-tunes `model` on `train`, scoring on `val` after every epoch and on
// `test` (may be null) at the end. Deterministic on CPU for a given seed and
// thread count.
absl::StatusOr<QatResult> RunQat(QuantizedModel& model,
                                 const TensorDataset& train,
                                 const TensorDataset& val,
                                 const TensorDataset* test,
                                 const QatRecipe& recipe,
                                 const ProgressOptions& progress = {});

// Logits of `model` in eval mode on all of `data` (N x classes, CPU).
absl::StatusOr<at::Tensor> PredictLogits(QuantizedModel& model,
                                         const TensorDataset& data,
                                         int64_t batch_size = 512);

// Top-1 accuracy in percent.
double Top1(const at::Tensor& logits, const at::Tensor& labels);

}  // namespace autoq::qat

#endif  // AUTOQ_QAT_TRAINER_H_
