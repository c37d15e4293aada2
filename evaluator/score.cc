#include "evaluator/score.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "qat/quantized_model.h"
#include "qat/torch_errors.h"
#include "qat/trainer.h"

namespace autoq::evaluator {
namespace {

absl::Status CheckClasses(const qat::ModelAnalysis& analysis,
                          const DatasetSplits& data) {
  int64_t classes = std::max({data.train.num_classes, data.val.num_classes,
                              data.test.num_classes});
  if (analysis.num_classes > 0 && classes > analysis.num_classes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the dataset has ", classes, " classes but the model outputs ",
        analysis.num_classes));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Score> ScoreChromosome(const torch::jit::Module& model,
                                      const qat::ModelAnalysis& analysis,
                                      const DatasetSplits& data,
                                      const ScoreRequest& request) {
  RETURN_IF_ERROR(CheckClasses(analysis, data));
  qat::QuantizedModelOptions options;
  options.scheme = request.scheme;
  options.bits = request.bits;
  options.device = request.device;
  ASSIGN_OR_RETURN(std::unique_ptr<qat::QuantizedModel> qmodel,
                   qat::QuantizedModel::Create(model, analysis, options));
  Score score;
  const qat::TensorDataset* test = data.test.size() > 0 ? &data.test : nullptr;
  ASSIGN_OR_RETURN(score.qat, qat::RunQat(*qmodel, data.train, data.val, nullptr,
                                          request.recipe, request.progress));
  if (test != nullptr) {
    ASSIGN_OR_RETURN(at::Tensor logits,
                     qat::PredictLogits(
                         *qmodel, *test,
                         qat::EvalBatchSize(request.recipe,
                                            qmodel->device().is_cpu())));
    MetricsAccumulator acc(test->num_classes);
    acc.Add(logits, test->labels);
    score.test = acc.Result();
    score.qat.test_top1 = score.test.top1;
  }
  return score;
}

absl::StatusOr<ClassificationMetrics> EvaluateFloat(
    const torch::jit::Module& model, const qat::ModelAnalysis& analysis,
    const qat::TensorDataset& data, c10::Device device) {
  qat::QuantizedModelOptions options;
  options.device = device;
  ASSIGN_OR_RETURN(std::unique_ptr<qat::QuantizedModel> qmodel,
                   qat::QuantizedModel::Create(model, analysis, options));
  ASSIGN_OR_RETURN(at::Tensor logits, qat::PredictLogits(*qmodel, data));
  MetricsAccumulator acc(std::max(data.num_classes, analysis.num_classes));
  acc.Add(logits, data.labels);
  return acc.Result();
}

absl::StatusOr<torch::jit::Module> WithFloat16Parameters(
    const torch::jit::Module& model) {
  try {
    torch::jit::Module copy = model.clone();
    at::NoGradGuard no_grad;
    auto round = [](at::Tensor t) {
      if (t.is_floating_point()) t.copy_(t.to(at::kHalf));
    };
    for (const auto& p : copy.named_parameters(/*recurse=*/true)) {
      round(p.value);
    }
    for (const auto& b : copy.named_buffers(/*recurse=*/true)) {
      round(b.value);
    }
    return copy;
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot round the model to float16: ", qat::SummarizeTorchError(e)));
  }
}

}  // namespace autoq::evaluator
