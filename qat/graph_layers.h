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
};

// The attribute at dotted `path` ("features.0.weight") of `module`.
// Throws c10::Error when a component is missing.
c10::IValue AttrAt(const torch::jit::Module& module, const std::string& path);
torch::jit::Module SubmoduleAt(const torch::jit::Module& module,
                               const std::string& path);

// Returns the forward graph of `module`, inlined and constant-propagated,
// as a fresh copy the caller may modify.
std::shared_ptr<torch::jit::Graph> PreparedForwardGraph(
    const torch::jit::Module& module);

// Finds the layers of `graph` (as returned by PreparedForwardGraph), in
// graph order, deduplicated by weight parameter. Fills every LayerInfo field
// except output_shape and macs; `gene` numbers the unmasked layers.
std::vector<GraphLayer> FindLayers(torch::jit::Graph& graph,
                                   const torch::jit::Module& module);

// Inserts an autoq::site node with id = graph_index after each of a layer's
// outputs and reroutes the output's other uses through it.
void InsertSites(torch::jit::Graph& graph, const std::vector<GraphLayer>& layers);

}  // namespace autoq::qat

#endif  // AUTOQ_QAT_GRAPH_LAYERS_H_
