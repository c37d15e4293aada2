// A TorchScript model prepared for quantization-aware training.
//
// Weights are fake-quantized by shadowing: float master copies are what the
// optimizer updates; before each forward pass fq(W) (or, with the
// approximate BN fold, fq(W*s)/s with s = gamma/sqrt(running_var+eps)) is
// written into the module's own weight tensors, and after backward their
// gradients reach the masters through the straight-through estimator (zero
// where the value was clamped). No graph surgery is needed for weights.
//
// Activations are fake-quantized at autoq::site nodes inserted after each
// layer's output (see site_op.h), per tensor with EMA min/max ranges.
//
// Thread-safety: a QuantizedModel is used by one thread at a time. Distinct
// instances (built from the same source module) are independent.
// Methods may throw c10::Error from LibTorch; RunQat and the evaluator turn
// those into absl::Status.
#ifndef AUTOQ_QAT_QUANTIZED_MODEL_H_
#define AUTOQ_QAT_QUANTIZED_MODEL_H_

#include <torch/csrc/jit/api/module.h>

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "qat/fake_quant.h"
#include "qat/model_analysis.h"
#include "qat/quant_config.h"

namespace autoq::qat {

struct QuantizedModelOptions {
  QuantScheme scheme;
  // One entry per gene of the analysis. Empty: the model runs in float
  // (used for the float baseline and the BN-fold check).
  std::vector<LayerBits> bits;
  c10::Device device = c10::Device(c10::kCPU);
  // Keep 4-d weights and inputs in channels-last layout: oneDNN's CPU
  // convolutions (depthwise ones above all) are several times faster so.
  bool channels_last = true;
  // EMA averaging constant of activation ranges (PyTorch's default 0.01).
  double act_ema = 0.01;
};

// Quantization of one layer's output activation as the model evaluates it.
struct ActivationQuantState {
  int abits = 0;            // 0: kept in float (also for masked layers)
  bool calibrated = false;  // an EMA range has been observed
  float lo = 0, hi = 0;     // the EMA range, when calibrated
  // AffineParamsFromRangeHost(lo, hi, abits), when abits > 0 and calibrated.
  HostAffineParams params;
};

// Quantization of one gene's weights as the model evaluates it.
struct WeightQuantState {
  LayerBits bits;
  at::Tensor master;  // float master weights, on the model's device
  // The layer's BN is folded into the quantized weights: the module holds
  // fq(W*s)/s (per-tensor affine with approximate or exact fold).
  bool bn_folded = false;
  QuantParams params;  // of W*s when folded, else of W
};

class QuantizedModel {
 public:
  // Deep-copies `module` (the caller's copy is never modified) onto
  // options.device. `analysis` must come from AnalyzeModel on the same
  // model. Fails on a bit list of the wrong length or out of range.
  static absl::StatusOr<std::unique_ptr<QuantizedModel>> Create(
      const torch::jit::Module& module, const ModelAnalysis& analysis,
      QuantizedModelOptions options);

  ~QuantizedModel();

  // Returns the model to the state Create left it in, with `bits` in place
  // of the bits it was built with: the source module's parameters and
  // buffers, fresh masters, no observed activation ranges, BN not frozen,
  // eval mode. Training it then computes exactly what a model freshly
  // created with `bits` computes, without the deep copy and the graph work
  // (the cheap per-task copy of a job's model). `bits` must be empty
  // exactly when the model was built in float mode; the same checks as
  // Create otherwise.
  absl::Status Reset(std::vector<LayerBits> bits);

  // Runs the model on `x` (moved to the model's device).
  at::Tensor Forward(const at::Tensor& x);

  // Train or eval mode for the whole model; frozen BNs stay in eval mode.
  void Train(bool on);
  bool is_training() const;
  // Whether activation ranges are updated (training, calibration).
  void SetObserveActivations(bool on);
  // Whether activations are fake-quantized (off during the delay epochs).
  void SetQuantizeActivations(bool on);
  // From now on every batch-norm uses (and keeps) its running statistics.
  void FreezeBatchNorm();
  // True once every quantized activation has an observed range.
  bool activations_calibrated() const;

  // What the optimizer updates: master weights of quantized layers and all
  // other parameters of the model.
  std::vector<at::Tensor> Parameters();
  // After backward: moves weight gradients to the masters (STE mask) and
  // clears the shadowed weights' own gradients.
  void PropagateGradients();

  // Quantization parameters of each gene's weights as used by the last
  // forward pass (before any BN unscaling); empty in float mode.
  const std::vector<QuantParams>& weight_params() const;
  // One per gene (empty in float mode). Writes the fake-quantized weights
  // of the current mode into the module first when they are stale, so the
  // module then holds exactly what the next Forward uses.
  std::vector<WeightQuantState> weight_states();
  // One per layer of the analysis, by graph_index. Reads the ranges back
  // from the device where they live there (synchronizes a GPU).
  std::vector<ActivationQuantState> activation_states() const;
  // Whether quantized activations are fake-quantized now (false while the
  // activation-quant delay lasts).
  bool quantizing_activations() const;
  // The underlying module, weights holding the current fake-quantized
  // values (after a forward pass).
  torch::jit::Module& module();
  const ModelAnalysis& analysis() const;
  const QuantizedModelOptions& options() const;
  c10::Device device() const;

 private:
  struct Impl;
  explicit QuantizedModel(std::unique_ptr<Impl> impl);
  void RefreshWeights();

  std::unique_ptr<Impl> impl_;
};

}  // namespace autoq::qat

#endif  // AUTOQ_QAT_QUANTIZED_MODEL_H_
