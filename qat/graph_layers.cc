#include "qat/graph_layers.h"

#include <algorithm>
#include <limits>
#include <map>
#include <set>
#include <stdexcept>
#include <string>

#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/passes/constant_propagation.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/passes/inliner.h>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "qat/op_allowlist.h"
#include "qat/site_op.h"

namespace autoq::qat {
namespace {

using torch::jit::Block;
using torch::jit::Graph;
using torch::jit::Node;
using torch::jit::Value;

// Activation ops after which activations are quantized. In-place variants
// ("relu_") map to the same name.
const std::set<std::string>& ActivationNames() {
  static const auto* names = new std::set<std::string>{
      "relu",    "relu6", "hardtanh",   "hardswish", "silu",
      "sigmoid", "gelu",  "leaky_relu", "elu",       "tanh",
      "mish",    "hardsigmoid", "prelu", "softplus", "selu"};
  return *names;
}

void Walk(Block* block, const std::function<void(Node*)>& fn) {
  for (Node* n : block->nodes()) {
    fn(n);
    for (Block* b : n->blocks()) Walk(b, fn);
  }
}

// "a.b.weight" for a chain of prim::GetAttr nodes rooted at the graph's
// `self` input; "" when the value is not such a chain.
std::string AttrPath(const Value* v, const Value* self) {
  std::vector<std::string> parts;
  while (v != self) {
    const Node* n = v->node();
    if (n->kind() != c10::prim::GetAttr) return "";
    parts.push_back(n->s(c10::attr::name));
    v = n->input(0);
  }
  std::reverse(parts.begin(), parts.end());
  return absl::StrJoin(parts, ".");
}

std::string ParentPath(const std::string& path) {
  size_t dot = path.rfind('.');
  return dot == std::string::npos ? "" : path.substr(0, dot);
}

bool IsTensor(const Value* v) {
  return v->type()->kind() == c10::TypeKind::TensorType;
}

// The single use of `v` that consumes it as a tensor, ignoring shape queries
// (aten::dim, aten::size, ...) whose outputs are not tensors. Null when there
// are none or several.
Node* SoleTensorConsumer(Value* v) {
  Node* found = nullptr;
  for (const torch::jit::Use& use : v->uses()) {
    Node* user = use.user;
    bool tensor_out = false;
    for (const Value* o : user->outputs()) tensor_out |= IsTensor(o);
    if (!tensor_out) continue;
    if (found != nullptr && found != user) return nullptr;
    found = user;
  }
  return found;
}

int64_t ConstantInt(const Value* v, int64_t fallback) {
  auto iv = torch::jit::toIValue(v);
  return iv && iv->isInt() ? iv->toInt() : fallback;
}

std::string ActivationName(const Node* n) {
  if (n->kind().ns() != c10::namespaces::aten) return "";
  std::string name = n->kind().toUnqualString();
  if (absl::EndsWith(name, "_")) name.pop_back();
  return ActivationNames().count(name) ? name : "";
}

}  // namespace

c10::IValue AttrAt(const torch::jit::Module& module, const std::string& path) {
  torch::jit::Module m = module;
  std::string rest = path;
  size_t dot;
  while ((dot = rest.find('.')) != std::string::npos) {
    m = m.attr(rest.substr(0, dot)).toModule();
    rest = rest.substr(dot + 1);
  }
  return m.attr(rest);
}

torch::jit::Module SubmoduleAt(const torch::jit::Module& module,
                               const std::string& path) {
  return path.empty() ? module : AttrAt(module, path).toModule();
}

std::shared_ptr<Graph> PreparedForwardGraph(const torch::jit::Module& module,
                                            bool check_ops) {
  std::shared_ptr<Graph> graph = module.get_method("forward").graph()->copy();
  torch::jit::Inline(*graph);
  // Before constant propagation, which would run an op on constant inputs
  // (a from_file of a fixed path, say).
  if (check_ops) {
    const absl::Status allowed = CheckOpsAllowed(*graph);
    if (!allowed.ok()) {
      throw std::invalid_argument(std::string(allowed.message()));
    }
  }
  // Folds `if inplace:` style branches of functional wrappers so that a
  // layer's batch-norm and activation are its direct consumers.
  torch::jit::ConstantPropagation(graph);
  torch::jit::EliminateDeadCode(graph);
  return graph;
}

std::vector<GraphLayer> FindLayers(Graph& graph,
                                   const torch::jit::Module& module) {
  const Value* self = graph.inputs().at(0);
  std::vector<GraphLayer> layers;
  std::map<std::string, size_t> seen_weights;  // weight path -> layer
  Walk(graph.block(), [&](Node* n) {
    const bool is_linear = n->kind() == c10::aten::linear;
    const bool is_conv = n->kind() == c10::aten::conv2d ||
                         n->kind() == c10::aten::_convolution;
    if (!is_linear && !is_conv) return;
    GraphLayer layer;
    LayerInfo& info = layer.info;
    info.weight_path = AttrPath(n->input(1), self);
    auto seen = seen_weights.find(info.weight_path);
    GraphLayer* existing = seen == seen_weights.end() ? nullptr
                                                      : &layers[seen->second];
    info.graph_index = static_cast<int>(layers.size());
    info.module_path = ParentPath(info.weight_path);
    if (n->inputs().size() > 2) info.bias_path = AttrPath(n->input(2), self);
    // `bias=False` layers still have a `bias` attribute, holding None.
    if (!info.bias_path.empty() && !AttrAt(module, info.bias_path).isTensor()) {
      info.bias_path.clear();
    }
    at::Tensor weight;
    if (info.weight_path.empty()) {
      info.masked = true;
      info.mask_reason = "weight is not a module parameter";
    } else {
      seen_weights.emplace(info.weight_path, layers.size());
      weight = AttrAt(module, info.weight_path).toTensor();
      info.weight_shape = weight.sizes().vec();
      info.num_weights = weight.numel();
      if (info.num_weights == 0) {
        info.masked = true;
        info.mask_reason = "weight has no elements";
      }
    }
    if (is_linear) {
      info.kind = LayerKind::kLinear;
    } else {
      const bool transposed =
          n->kind() == c10::aten::_convolution &&
          torch::jit::toIValue(n->input(6)).value_or(false).toBool();
      info.groups = ConstantInt(
          n->input(n->kind() == c10::aten::conv2d ? 6 : 8), 1);
      const auto& s = info.weight_shape;
      if (s.size() != 4 || transposed) {
        info.masked = true;
        info.mask_reason = transposed ? "transposed convolution"
                                      : "not a 2-d convolution";
      } else if (info.groups > 1 && s[1] == 1 && s[0] == info.groups) {
        info.kind = LayerKind::kDepthwise;
      } else if (info.groups == 1 && s[2] == 1 && s[3] == 1) {
        info.kind = LayerKind::kPointwise;
      } else {
        info.kind = LayerKind::kConv;
      }
    }
    Value* out = n->output();
    Node* next = SoleTensorConsumer(out);
    Node* bn_node = nullptr;
    if (is_conv && next != nullptr &&
        next->kind() == c10::aten::batch_norm && next->input(0) == out) {
      std::string bn_weight = AttrPath(next->input(1), self);
      std::string bn_mean = AttrPath(next->input(3), self);
      std::string path = !bn_weight.empty() ? ParentPath(bn_weight)
                                            : ParentPath(bn_mean);
      if (!path.empty() && !bn_weight.empty()) {
        info.bn_path = path;
        auto eps = torch::jit::toIValue(next->input(7));
        if (eps && eps->isDouble()) info.bn_eps = eps->toDouble();
        bn_node = next;
        out = next->output();
        next = SoleTensorConsumer(out);
      }
    }
    Node* act_node = nullptr;
    if (next != nullptr && next->inputs().size() > 0 &&
        next->input(0) == out) {
      info.activation = ActivationName(next);
      if (!info.activation.empty()) {
        act_node = next;
        out = next->output();
      }
    }
    GraphLayer& target = existing != nullptr ? *existing : layer;
    // Several call sites: another If branch, a loop, or reuse of one layer.
    target.outputs.push_back(out);
    target.layer_nodes.push_back(n);
    target.bn_nodes.push_back(bn_node);
    target.act_nodes.push_back(act_node);
    if (existing == nullptr) layers.push_back(std::move(layer));
  });
  int gene = 0;
  for (GraphLayer& l : layers) {
    if (!l.info.masked) l.info.gene = gene++;
  }
  return layers;
}

void InsertExactFoldSites(Graph& graph, std::vector<GraphLayer>& layers,
                          const std::vector<bool>& exact) {
  const c10::Symbol site_sym = c10::Symbol::fromQualString(kSiteOpName);
  const c10::Symbol site2_sym = c10::Symbol::fromQualString(kSite2OpName);
  for (GraphLayer& layer : layers) {
    const int64_t index = layer.info.graph_index;
    if (!exact[static_cast<size_t>(index)]) continue;
    for (size_t k = 0; k < layer.layer_nodes.size(); ++k) {
      Node* conv = layer.layer_nodes[k];
      Node* bn = layer.bn_nodes[k];
      if (bn == nullptr) continue;
      torch::jit::WithInsertPoint guard(bn);
      // master = site(weight, kMasterSiteBase + i): the hook returns the
      // float master tensor, so gradients reach it through the statistics.
      Node* master = graph.create(site_sym, 1);
      master->addInput(conv->input(1));
      master->addInput(graph.insertConstant(kMasterSiteBase + index));
      master->output()->setType(conv->input(1)->type());
      graph.insertNode(master);
      Node* float_conv =
          graph.createClone(conv, [](Value* v) { return v; });
      float_conv->replaceInput(1, master->output());
      graph.insertNode(float_conv);
      Node* norm = graph.create(site2_sym, 1);
      norm->addInput(bn->input(0));
      norm->addInput(float_conv->output());
      norm->addInput(graph.insertConstant(kBnSiteBase + index));
      norm->output()->setType(bn->output()->type());
      graph.insertNode(norm);
      if (layer.outputs[k] == bn->output()) layer.outputs[k] = norm->output();
      bn->output()->replaceAllUsesWith(norm->output());
      bn->destroy();
      layer.bn_nodes[k] = nullptr;
    }
  }
}

// Clamp bounds of a ReLU-like activation node, if it is one with constant
// bounds.
bool ClampBounds(const Node* act, double* lo, double* hi) {
  const std::string name = ActivationName(act);
  if (name == "relu") {
    *lo = 0.0;
    *hi = std::numeric_limits<float>::max();
    return true;
  }
  if (name == "relu6") {
    *lo = 0.0;
    *hi = 6.0;
    return true;
  }
  if (name == "hardtanh" && act->inputs().size() >= 3) {
    auto a = torch::jit::toIValue(act->input(1));
    auto b = torch::jit::toIValue(act->input(2));
    if (!a || !b || !a->isDouble() || !b->isDouble()) return false;
    *lo = a->toDouble();
    *hi = b->toDouble();
    return *lo < *hi;
  }
  return false;
}

void InsertSites(Graph& graph, const std::vector<GraphLayer>& layers) {
  const c10::Symbol site_sym = c10::Symbol::fromQualString(kSiteOpName);
  const c10::Symbol clamp_sym = c10::Symbol::fromQualString(kSiteClampOpName);
  for (const GraphLayer& layer : layers) {
    for (size_t k = 0; k < layer.outputs.size(); ++k) {
      Value* v = layer.outputs[k];
      Node* act = layer.act_nodes[k];
      double lo = 0, hi = 0;
      if (act != nullptr && act->output() == v && ClampBounds(act, &lo, &hi)) {
        torch::jit::WithInsertPoint guard(act);
        Node* site = graph.create(clamp_sym, 1);
        site->addInput(act->input(0));
        site->addInput(graph.insertConstant(
            static_cast<int64_t>(layer.info.graph_index)));
        site->addInput(graph.insertConstant(lo));
        site->addInput(graph.insertConstant(hi));
        site->output()->setType(v->type());
        graph.insertNode(site);
        v->replaceAllUsesWith(site->output());
        act->destroy();
        continue;
      }
      Node* site = graph.create(site_sym, 1);
      site->insertAfter(v->node());
      torch::jit::WithInsertPoint guard(site);
      Value* id = graph.insertConstant(
          static_cast<int64_t>(layer.info.graph_index));
      v->replaceAllUsesWith(site->output());
      site->addInput(v);
      site->addInput(id);
      site->output()->setType(v->type());
    }
  }
}

}  // namespace autoq::qat
