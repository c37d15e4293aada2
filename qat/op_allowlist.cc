#include "qat/op_allowlist.h"

#include <string>
#include <tuple>
#include <unordered_set>

#include "absl/strings/str_cat.h"

namespace autoq::qat {
namespace {

// Control flow, constants, attribute reads and the list/tuple/scalar
// plumbing of scripted code. Deliberately absent: prim::PythonOp,
// prim::CallFunction / CallMethod (calls left after inlining cannot be
// checked), prim::Print and anything else with effects outside tensors.
constexpr const char* kPrimOps[] = {
    "Constant", "GetAttr", "If", "Loop", "Return", "ListConstruct",
    "ListUnpack", "TupleConstruct", "TupleUnpack", "TupleIndex",
    "TupleSlice", "DictConstruct", "RaiseException", "Uninitialized",
    "unchecked_cast", "NumToTensor", "device", "dtype", "layout", "shape",
    "max", "min", "is_cuda", "requires_grad", "isinstance", "AutogradZero",
    "ConstantChunk", "ListIndex", "BroadcastSizes", "TypeCheck", "data",
    "EnumValue", "EnumName", "type"};

// Tensor computations: arithmetic, math, comparisons, activations,
// convolutions and linear algebra, normalization, pooling, resampling,
// padding, shape and indexing, reductions, tensor creation from values,
// type and device conversion; and the scalar, list and string helpers
// scripted code calls. Not here: anything that reads or writes files
// (from_file, save, load), prints, calls back into Python, or returns
// uninitialized memory (empty: another job's data in a worker's heap).
constexpr const char* kAtenOps[] = {
    // arithmetic and math
    "add", "add_", "sub", "sub_", "rsub", "mul", "mul_", "div", "div_",
    "true_divide", "floor_divide", "floordiv", "remainder", "fmod", "neg",
    "abs", "pow", "sqrt", "rsqrt", "exp", "log", "log2", "log10", "log1p",
    "expm1", "sin", "cos", "tan", "tanh", "tanh_", "sigmoid", "sigmoid_",
    "reciprocal", "sign", "floor", "ceil", "round", "trunc", "clamp",
    "clamp_", "clamp_min", "clamp_max", "clamp_min_", "clamp_max_", "clip",
    "clip_", "addmm", "addcmul", "addcdiv", "lerp", "erf", "square",
    "maximum", "minimum", "fmax", "fmin", "exp2",
    // comparisons and logic
    "eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or",
    "logical_not", "logical_xor", "where", "masked_fill", "masked_fill_",
    "isnan", "isinf", "isfinite", "__and__", "__or__", "__xor__", "__not__",
    "__is__", "__isnot__", "__contains__", "bitwise_and", "bitwise_or",
    "bitwise_not", "all", "any", "allclose", "equal",
    // activations
    "relu", "relu_", "relu6", "relu6_", "leaky_relu", "leaky_relu_", "elu",
    "elu_", "selu", "selu_", "celu", "gelu", "silu", "silu_", "mish",
    "mish_", "hardswish", "hardswish_", "hardsigmoid", "hardsigmoid_",
    "hardtanh", "hardtanh_", "softplus", "softsign", "prelu", "glu",
    "logsigmoid", "softmax", "log_softmax", "_softmax", "threshold",
    "threshold_",
    // convolution, linear algebra
    "conv1d", "conv2d", "conv3d", "_convolution", "convolution",
    "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "linear",
    "matmul", "mm", "bmm", "mv", "dot", "einsum", "baddbmm", "t",
    "embedding", "bilinear", "outer",
    // normalization and regularization (eval: identity)
    "batch_norm", "layer_norm", "group_norm", "instance_norm",
    "native_batch_norm", "local_response_norm", "normalize", "dropout",
    "dropout_", "feature_dropout", "feature_dropout_", "alpha_dropout",
    "alpha_dropout_", "feature_alpha_dropout", "native_dropout",
    // pooling, resampling, padding
    "max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d",
    "avg_pool3d", "adaptive_avg_pool1d", "adaptive_avg_pool2d",
    "adaptive_avg_pool3d", "adaptive_max_pool1d", "adaptive_max_pool2d",
    "max_pool2d_with_indices", "lp_pool2d", "upsample_nearest1d",
    "upsample_nearest2d", "upsample_bilinear2d", "upsample_bicubic2d",
    "upsample_linear1d", "__interpolate", "interpolate", "pixel_shuffle",
    "pixel_unshuffle", "channel_shuffle", "pad", "constant_pad_nd",
    "reflection_pad1d", "reflection_pad2d", "replication_pad1d",
    "replication_pad2d", "zero_pad2d", "grid_sampler", "affine_grid_generator",
    // shape, indexing, joining
    "size", "dim", "numel", "view", "view_as", "reshape", "reshape_as",
    "flatten", "unflatten", "squeeze", "squeeze_", "unsqueeze", "unsqueeze_",
    "permute", "transpose", "transpose_", "contiguous", "expand",
    "expand_as", "repeat", "repeat_interleave", "tile", "cat", "concat",
    "stack", "hstack", "vstack", "chunk", "split", "split_with_sizes",
    "unbind", "narrow", "slice", "select", "index", "index_select",
    "gather", "scatter", "scatter_add", "take", "roll", "flip", "movedim",
    "__getitem__", "__setitem__", "_set_item", "_get_item", "len", "append",
    "extend", "insert", "pop", "list", "copy", "clear", "reverse",
    "_unwrap_optional", "dict", "keys", "values", "items", "get",
    "tensor_split",
    "masked_select", "nonzero", "one_hot", "tril", "triu", "diag", "diagonal",
    "broadcast_tensors", "meshgrid",
    // reductions
    "sum", "mean", "max", "min", "amax", "amin", "argmax", "argmin", "prod",
    "std", "var", "norm", "frobenius_norm", "logsumexp", "cumsum", "cumprod",
    "topk", "sort", "argsort", "median", "mode",
    // quantization (AutoQ's own exports and QAT models from PyTorch)
    "fake_quantize_per_tensor_affine", "fake_quantize_per_channel_affine",
    "_fake_quantize_learnable_per_tensor_affine",
    "_fake_quantize_learnable_per_channel_affine", "quantize_per_tensor",
    "quantize_per_channel", "dequantize", "int_repr", "q_scale",
    "q_zero_point", "q_per_channel_scales", "q_per_channel_zero_points",
    "round_",
    // creation and conversion
    "zeros", "zeros_like", "ones", "ones_like", "full", "full_like", "arange",
    "linspace", "tensor", "scalar_tensor",
    "as_tensor", "clone", "detach", "detach_", "to", "type_as", "float",
    "int", "long", "half", "bool", "copy_", "fill_", "zero_",
    "Int", "Float", "Bool", "ScalarImplicit", "IntImplicit",
    "FloatImplicit", "item", "__range_length", "__derive_index",
    "is_floating_point", "requires_grad_", "new_zeros", "new_ones",
    "new_full", "rand", "randn", "rand_like", "randn_like",
    "bernoulli", "bernoulli_", "manual_seed",
    // scalars and strings of scripted code
    "format", "warn", "str", "__str__", "join", "startswith", "endswith",
    "lower", "upper", "strip", "__round_to_zero_floordiv", "Complex",
    "ComplexImplicit", "is_scripting", "device", "dtype", "layout",
    "is_contiguous", "stride"};

const std::unordered_set<std::string>& Allowed() {
  static const auto* allowed = [] {
    auto* s = new std::unordered_set<std::string>();
    for (const char* op : kPrimOps) s->insert(absl::StrCat("prim::", op));
    for (const char* op : kAtenOps) s->insert(absl::StrCat("aten::", op));
    return s;
  }();
  return *allowed;
}

// The first node of `block` (depth first, in order) whose kind is not
// allowed, or null.
const torch::jit::Node* FirstRefused(const torch::jit::Block* block) {
  for (const torch::jit::Node* n : block->nodes()) {
    if (!IsAllowedOp(n->kind().toQualString())) return n;
    for (const torch::jit::Block* b : n->blocks()) {
      if (const torch::jit::Node* bad = FirstRefused(b)) return bad;
    }
  }
  return nullptr;
}

}  // namespace

bool IsAllowedOp(absl::string_view kind) {
  return Allowed().count(std::string(kind)) > 0;
}

absl::Status CheckOpsAllowed(const torch::jit::Graph& graph) {
  const torch::jit::Node* bad = FirstRefused(graph.block());
  if (bad == nullptr) return absl::OkStatus();
  std::string where;
  // Where the user wrote it (the debug record of the original source),
  // else where it is in the archive's code.
  torch::jit::SourceRange range = bad->sourceRange();
  if (const auto original = range.findSourceRangeThatGenerated()) {
    range = *original;
  }
  if (const auto flc = range.file_line_col();
      flc && !std::get<0>(*flc).empty()) {
    where = absl::StrCat(" at ", std::get<0>(*flc), ":", std::get<1>(*flc));
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "the model calls ", bad->kind().toQualString(), where,
      ", which is not a tensor operation AutoQ runs: a model may use tensor "
      "math, layers and control flow only (no file, print or Python "
      "calls)"));
}

}  // namespace autoq::qat
