// Which TorchScript operations a model may use. A TorchScript model is code:
// its forward graph runs on the server (one probe forward in AnalyzeModel)
// and on every worker, and ATen has ops that reach the file system
// (aten::from_file maps any file into a tensor, shared and writable if
// asked). So a model is accepted only when every op of its inlined forward
// graph, nested blocks included, is a tensor computation or control flow on
// the list in op_allowlist.cc; anything else is refused, naming the op.
//
// Thread-safety: reentrant.
#ifndef AUTOQ_QAT_OP_ALLOWLIST_H_
#define AUTOQ_QAT_OP_ALLOWLIST_H_

#include <torch/csrc/jit/ir/ir.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace autoq::qat {

// Whether the op `kind` ("aten::conv2d", "prim::If", ...) is allowed.
bool IsAllowedOp(absl::string_view kind);

// InvalidArgument naming the first op of `graph` (in graph order, nested
// blocks included) that is not allowed, with the source line TorchScript
// recorded for it when there is one. Check the graph right after
// inlining: constant propagation would already run an op whose inputs are
// constants.
absl::Status CheckOpsAllowed(const torch::jit::Graph& graph);

}  // namespace autoq::qat

#endif  // AUTOQ_QAT_OP_ALLOWLIST_H_
