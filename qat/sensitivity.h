// Per-layer sensitivity to weight quantization: for every quantizable layer
// and weight bit-width, how much the validation loss and top-1 change when
// only that layer goes below max_bits (every other layer stays at
// max_bits, nearly lossless). Calibration-free and training-free: weights
// are fake-quantized with the job's scheme, activations stay in float, and
// each probe is one eval pass over a small subset. This is the cheap prior the
// search seeds from (an additive model of the loss, see search/knapsack.h).
//
// Thread-safety: MeasureSensitivity builds its own model copy; concurrent
// calls on distinct threads are safe.
#ifndef AUTOQ_QAT_SENSITIVITY_H_
#define AUTOQ_QAT_SENSITIVITY_H_

#include <torch/csrc/jit/api/module.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "qat/model_analysis.h"
#include "qat/quant_config.h"
#include "qat/sensitivity_table.h"
#include "qat/tensor_dataset.h"

namespace autoq::qat {

struct SensitivityOptions {
  int min_bits = kMinBits;   // clamped to [kMinBits, max_bits]
  int max_bits = kMaxBits;   // clamped to [min_bits, kMaxBits]
  int64_t batch_size = 512;  // eval batch, >= 1
  c10::Device device = c10::Device(c10::kCPU);
  // Called after every probe with (done, total). May be empty.
  std::function<void(int64_t, int64_t)> progress;
  // When it reads true the measurement stops with CANCELLED. May be null.
  const std::atomic<bool>* cancel = nullptr;
};

absl::StatusOr<SensitivityTable> MeasureSensitivity(
    const torch::jit::Module& module, const ModelAnalysis& analysis,
    const TensorDataset& data, const QuantScheme& scheme,
    const SensitivityOptions& options);

}  // namespace autoq::qat

#endif  // AUTOQ_QAT_SENSITIVITY_H_
