// The standalone TorchScript half of ExportQuantizedModel: a clone of the
// model's module (own class types, so the model's graph stays as it is)
// whose inlined forward graph gets a fake-quant node after each quantized
// activation.
#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/passes/constant_propagation.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/passes/inliner.h>

#include <set>
#include <sstream>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "qat/export_internal.h"
#include "qat/graph_layers.h"
#include "qat/torch_errors.h"

namespace autoq::qat::export_internal {
namespace {

using torch::jit::Graph;
using torch::jit::Node;
using torch::jit::Value;

// Ops after which a quantized activation keeps its scale and zero point:
// they reshape, select or (pooling, mean) average values, which integer
// runtimes do at the input's scale.
bool KeepsScale(const Node* n) {
  static const auto* names = new std::set<std::string>{
      // clang-format off
      "flatten", "view", "reshape", "contiguous", "squeeze", "unsqueeze",
      "max_pool1d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d",
      "adaptive_max_pool2d", "mean", "dropout", "feature_dropout",
      "alpha_dropout", "clone", "detach",
      // clang-format on
  };
  if (n->kind().ns() != c10::namespaces::aten) return false;
  std::string name = n->kind().toUnqualString();
  if (!name.empty() && name.back() == '_') name.pop_back();  // in-place forms
  return names->count(name) > 0;
}

// The graph_index of the layer whose output `v` is, possibly through ops
// that keep the scale; -1 when none.
int SourceSite(Value* v, const std::unordered_map<const Value*, int>& site_of) {
  while (true) {
    auto it = site_of.find(v);
    if (it != site_of.end()) return it->second;
    Node* n = v->node();
    if (n->inputs().empty() || !KeepsScale(n)) return -1;
    // adaptive_max_pool2d also returns indices: follow the values only.
    if (v != n->output(0)) return -1;
    v = n->input(0);
  }
}

// Inserts aten::fake_quantize_per_tensor_affine after `v` and reroutes all
// of v's uses through it.
void InsertFakeQuant(Graph& graph, Value* v, const HostAffineParams& p) {
  const std::vector<torch::jit::Use> uses = v->uses();
  torch::jit::WithInsertPoint guard(v->node()->next());
  // The float scale goes in as a double holding exactly the same value;
  // ATen converts it back to float.
  Value* fq = graph.insert(
      c10::aten::fake_quantize_per_tensor_affine,
      {v, static_cast<double>(p.scale), p.zero_point, p.qmin, p.qmax});
  for (const torch::jit::Use& u : uses) u.user->replaceInput(u.offset, fq);
}

}  // namespace

absl::StatusOr<std::string> BuildTorchScript(
    QuantizedModel& model, const std::vector<ActivationQuantState>& acts,
    bool quantize_acts, GraphFacts* facts) {
  const ModelAnalysis& analysis = model.analysis();
  try {
    torch::jit::Module m;
    {
      // Under grad mode the cloned parameters would not be leaves.
      at::NoGradGuard no_grad;
      m = model.module().clone();
      m.to(at::Device(at::kCPU));
      // Plain layout: the channels-last weights are a CPU speed choice of
      // training only.
      for (at::Tensor t : m.parameters(/*recurse=*/true)) {
        if (!t.is_contiguous()) t.set_data(t.contiguous());
      }
      for (at::Tensor t : m.buffers(/*recurse=*/true)) {
        if (!t.is_contiguous()) t.set_data(t.contiguous());
      }
    }
    m.eval();
    // The graph of the clone's own forward: mutating it is what gets saved.
    std::shared_ptr<Graph> graph =
        torch::jit::toGraphFunction(m.get_method("forward").function()).graph();
    // The same preparation as PreparedForwardGraph, so FindLayers finds the
    // layers of the analysis.
    torch::jit::Inline(*graph);
    torch::jit::ConstantPropagation(graph);
    torch::jit::EliminateDeadCode(graph);
    std::vector<GraphLayer> found = FindLayers(*graph, m);
    if (found.size() != analysis.layers.size()) {
      return absl::InternalError(
          "exported graph differs from the model's analysis");
    }
    for (size_t i = 0; i < found.size(); ++i) {
      if (found[i].info.weight_path != analysis.layers[i].weight_path) {
        return absl::InternalError(absl::StrCat(
            "exported graph differs from the model's analysis at layer ", i,
            ": ", found[i].info.weight_path, " vs ",
            analysis.layers[i].weight_path));
      }
    }
    std::unordered_map<const Value*, int> site_of;
    for (const GraphLayer& l : found) {
      for (const Value* v : l.outputs) site_of[v] = l.info.graph_index;
    }
    facts->input_site.assign(found.size(), -1);
    facts->quantized_output.assign(found.size(), false);
    for (const GraphLayer& l : found) {
      int source = -2;  // not yet seen
      for (Node* n : l.layer_nodes) {
        const int s = SourceSite(n->input(0), site_of);
        source = source == -2 || source == s ? s : -1;
      }
      facts->input_site[static_cast<size_t>(l.info.graph_index)] =
          std::max(source, -1);
    }
    for (const GraphLayer& l : found) {
      const size_t gi = static_cast<size_t>(l.info.graph_index);
      const ActivationQuantState& a = acts.at(gi);
      if (!quantize_acts || a.abits == 0) continue;
      if (!a.calibrated) {
        return absl::FailedPreconditionError(absl::StrCat(
            "activation of ", l.info.weight_path, " is not calibrated"));
      }
      for (Value* v : l.outputs) InsertFakeQuant(*graph, v, a.params);
      facts->quantized_output[gi] = true;
    }
    torch::jit::EliminateDeadCode(graph);
    std::ostringstream out;
    m.save(out);
    return out.str();
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(
        "cannot build the TorchScript export: ", SummarizeTorchError(e)));
  }
}

}  // namespace autoq::qat::export_internal
