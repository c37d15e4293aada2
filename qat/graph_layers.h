// Internal to qat/: locating quantizable layers in a TorchScript graph.
// Shared by analysis (shapes, MACs) and QAT (activation sites), which both
// work on their own private copy of the forward graph.
#ifndef AUTOQ_QAT_GRAPH_LAYERS_H_
#define AUTOQ_QAT_GRAPH_LAYERS_H_

#include <memory>
#include <vector>

#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/ir/ir.h>

#include "qat/model_analysis.h"

namespace autoq::qat {

struct GraphLayer {
  LayerInfo info;  // shapes and MACs are not filled in here
  // Where the layer's result leaves it: the activation's output if one
  // follows, else the batch-norm's, else the layer's own. One entry per
  // call site: scripted models often inline a submodule into both branches
  // of a prim::If (e.g. `if self.use_res_connect`), and loops or reuse call
  // one layer several times.
  std::vector<torch::jit::Value*> outputs;
  // Per call site, aligned with `outputs`: the conv/linear node and its
  // folded batch-norm node (null when none).
  std::vector<torch::jit::Node*> layer_nodes;
  std::vector<torch::jit::Node*> bn_nodes;
  // The activation node per call site (null when none).
  std::vector<torch::jit::Node*> act_nodes;
};

// The attribute at dotted `path` ("features.0.weight") of `module`.
// Throws c10::Error when a component is missing.
c10::IValue AttrAt(const torch::jit::Module& module, const std::string& path);
torch::jit::Module SubmoduleAt(const torch::jit::Module& module,
                               const std::string& path);

// Returns the forward graph of `module`, inlined and constant-propagated,
// as a fresh copy the caller may modify. With `check_ops` (a user's model)
// it throws std::invalid_argument, naming the op, when the graph calls an
// op that is not allowed (qat/op_allowlist.h); AutoQ's own exports, with
// their quantization ops, are read with it off.
std::shared_ptr<torch::jit::Graph> PreparedForwardGraph(
    const torch::jit::Module& module, bool check_ops = true);

// Finds the layers of `graph` (as returned by PreparedForwardGraph), in
// graph order, deduplicated by weight parameter. Fills every LayerInfo field
// except output_shape and macs; `gene` numbers the unmasked layers.
std::vector<GraphLayer> FindLayers(torch::jit::Graph& graph,
                                   const torch::jit::Module& module);

// Inserts an autoq::site node with id = graph_index after each of a layer's
// outputs and reroutes the output's other uses through it. A ReLU, ReLU6 or
// hardtanh with constant bounds that ends the layer is replaced, together
// with its site, by one autoq::site_clamp.
void InsertSites(torch::jit::Graph& graph, const std::vector<GraphLayer>& layers);

// Ids of the exact-fold sites (see InsertExactFoldSites): the master-weight
// site of layer i has id kMasterSiteBase + i, the batch-norm site
// kBnSiteBase + i. Plain activation sites use the layer index itself.
inline constexpr int64_t kMasterSiteBase = 1 << 20;
inline constexpr int64_t kBnSiteBase = 2 << 20;

// Rewrites each folded conv -> batch_norm of the layers marked in `exact`
// (indexed by graph_index) for the exact fold (Krishnamoorthi 2018): the
// conv is run a second time with the float master weights (fetched through
// an autoq::site with id kMasterSiteBase + i), and the batch-norm is
// replaced by autoq::site2(quantized_conv_out, float_conv_out,
// kBnSiteBase + i), which normalizes with the float output's batch
// statistics. Must run before InsertSites; updates the layers' outputs that
// were the replaced batch-norms'.
void InsertExactFoldSites(torch::jit::Graph& graph,
                          std::vector<GraphLayer>& layers,
                          const std::vector<bool>& exact);

}  // namespace autoq::qat

#endif  // AUTOQ_QAT_GRAPH_LAYERS_H_
