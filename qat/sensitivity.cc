#include "qat/sensitivity.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "qat/quantized_model.h"
#include "qat/torch_errors.h"
#include "qat/trainer.h"

namespace autoq::qat {
namespace {

struct LossTop1 {
  double loss = 0, top1 = 0;
};

absl::StatusOr<LossTop1> Probe(QuantizedModel& model, const TensorDataset& data,
                               int64_t batch) {
  ASSIGN_OR_RETURN(at::Tensor logits, PredictLogits(model, data, batch));
  at::Tensor labels = data.labels.to(logits.device());
  LossTop1 out;
  out.loss = at::nll_loss(at::log_softmax(logits.to(at::kFloat), 1), labels)
                 .item<double>();
  out.top1 = Top1(logits, labels);
  return out;
}

}  // namespace

absl::StatusOr<SensitivityTable> MeasureSensitivity(
    const torch::jit::Module& module, const ModelAnalysis& analysis,
    const TensorDataset& data, const QuantScheme& scheme,
    const SensitivityOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  if (data.size() == 0) {
    return absl::InvalidArgumentError("sensitivity needs at least one image");
  }
  SensitivityTable t;
  t.max_bits = std::clamp(options.max_bits, kMinBits, kMaxBits);
  t.min_bits = std::clamp(options.min_bits, kMinBits, t.max_bits);
  const int64_t batch = std::max<int64_t>(1, options.batch_size);
  const size_t genes = static_cast<size_t>(analysis.num_genes());
  for (const LayerInfo* l : analysis.genes())
    t.layers.push_back(l->module_path);
  t.images = data.size();

  // Activations stay float: the probe isolates each layer's weights.
  std::vector<LayerBits> reference(genes, LayerBits{t.max_bits, 0});
  QuantizedModelOptions mo;
  mo.scheme = scheme;
  mo.bits = reference;
  mo.device = options.device;
  ASSIGN_OR_RETURN(std::unique_ptr<QuantizedModel> model,
                   QuantizedModel::Create(module, analysis, mo));
  ASSIGN_OR_RETURN(LossTop1 ref, Probe(*model, data, batch));
  t.reference_loss = ref.loss;
  t.reference_top1 = ref.top1;

  const int widths = t.max_bits - t.min_bits + 1;
  const int64_t total = static_cast<int64_t>(genes) * (widths - 1);
  int64_t done = 0;
  t.loss.assign(genes, std::vector<double>(static_cast<size_t>(widths)));
  t.top1.assign(genes, std::vector<double>(static_cast<size_t>(widths)));
  try {
    for (size_t g = 0; g < genes; ++g) {
      // max_bits is the reference itself.
      t.loss[g].back() = ref.loss;
      t.top1[g].back() = ref.top1;
      for (int b = t.min_bits; b < t.max_bits; ++b) {
        if (options.cancel != nullptr && options.cancel->load()) {
          return absl::CancelledError("sensitivity cancelled");
        }
        std::vector<LayerBits> bits = reference;
        bits[g].wbits = b;
        RETURN_IF_ERROR(model->Reset(bits));
        ASSIGN_OR_RETURN(LossTop1 r, Probe(*model, data, batch));
        t.loss[g][static_cast<size_t>(b - t.min_bits)] = r.loss;
        t.top1[g][static_cast<size_t>(b - t.min_bits)] = r.top1;
        if (options.progress) options.progress(++done, total);
      }
    }
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("sensitivity failed: ", SummarizeTorchError(e)));
  }
  t.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  return t;
}

}  // namespace autoq::qat
