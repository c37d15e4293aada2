#include "qat/bn_fold.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include "absl/strings/str_cat.h"
#include "qat/graph_layers.h"
#include "qat/torch_errors.h"

namespace autoq::qat {

absl::Status FoldBatchNormInPlace(torch::jit::Module& module,
                                  const ModelAnalysis& analysis) {
  try {
    at::NoGradGuard no_grad;
    for (const LayerInfo& l : analysis.layers) {
      if (l.bn_path.empty()) continue;
      torch::jit::Module bn = SubmoduleAt(module, l.bn_path);
      at::Tensor gamma = bn.attr("weight").toTensor();
      at::Tensor beta = bn.attr("bias").toTensor();
      at::Tensor mean = bn.attr("running_mean").toTensor();
      at::Tensor var = bn.attr("running_var").toTensor();
      at::Tensor s = gamma / (var + l.bn_eps).sqrt();
      at::Tensor w = AttrAt(module, l.weight_path).toTensor();
      std::vector<int64_t> shape(w.dim(), 1);
      shape[0] = s.size(0);
      w.mul_(s.reshape(shape));
      if (!l.bias_path.empty()) {
        AttrAt(module, l.bias_path).toTensor().mul_(s);
      }
      beta.sub_(mean * s);
      gamma.fill_(1.0);
      mean.zero_();
      var.fill_(1.0 - l.bn_eps);
    }
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot fold batch-norms: ", SummarizeTorchError(e)));
  }
  return absl::OkStatus();
}

}  // namespace autoq::qat
