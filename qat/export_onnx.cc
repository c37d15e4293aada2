// The ONNX half of ExportQuantizedModel; see export_onnx.h.
#include "qat/export_onnx.h"

#ifdef AUTOQ_WITH_ONNX

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/serialization/import.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "qat/export.h"
#include "qat/export_packed.h"
#include "qat/graph_layers.h"
#include "qat/torch_errors.h"

namespace autoq::qat::export_internal {
namespace {

using Json = nlohmann::ordered_json;
using torch::jit::Node;
using torch::jit::Value;

constexpr int kOpset = 13;
constexpr int kIrVersion = 7;  // the IR version of opset 13

// A translation error: InvalidArgument naming the node.
struct Unsupported {
  std::string why;
};

std::string NodeText(const Node* n) {
  std::ostringstream s;
  s << *n;
  std::string text = s.str();
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) {
    text.pop_back();
  }
  return text;
}

[[noreturn]] void Fail(const Node* n, const std::string& why) {
  throw Unsupported{absl::StrCat(why, " (", NodeText(n), ")")};
}

// Fills `t` (name, dims, type, raw data) from a CPU tensor.
void SetTensor(const std::string& name, const at::Tensor& value,
               onnx::TensorProto* t) {
  const at::Tensor c = value.cpu().contiguous();
  t->set_name(name);
  for (int64_t d : c.sizes()) t->add_dims(d);
  switch (c.scalar_type()) {
    case at::kFloat:
      t->set_data_type(onnx::TensorProto::FLOAT);
      break;
    case at::kChar:
      t->set_data_type(onnx::TensorProto::INT8);
      break;
    case at::kByte:
      t->set_data_type(onnx::TensorProto::UINT8);
      break;
    case at::kLong:
      t->set_data_type(onnx::TensorProto::INT64);
      break;
    case at::kInt:
      t->set_data_type(onnx::TensorProto::INT32);
      break;
    default:
      throw Unsupported{absl::StrCat("tensor ", name, " has dtype ",
                                     c10::toString(c.scalar_type()))};
  }
  t->set_raw_data(std::string(static_cast<const char*>(c.data_ptr()),
                              c.numel() * c.element_size()));
}

class Translator {
 public:
  Translator(QuantizedModel& model, const torch::jit::Module& exported,
             const std::vector<WeightQuantState>& weights)
      : model_(model), exported_(exported), weights_(weights) {}

  OnnxExport Run() {
    std::shared_ptr<torch::jit::Graph> graph = PreparedForwardGraph(exported_, /*check_ops=*/false);
    layers_ = FindLayers(*graph, exported_);
    const ModelAnalysis& analysis = model_.analysis();
    if (layers_.size() != analysis.layers.size()) {
      throw Unsupported{"the exported graph differs from the model's analysis"};
    }
    for (const GraphLayer& l : layers_) {
      for (size_t k = 0; k < l.layer_nodes.size(); ++k) {
        layer_of_[l.layer_nodes[k]] = &l;
        if (l.bn_nodes[k] != nullptr) bn_of_[l.bn_nodes[k]] = &l;
      }
    }
    onnx::ModelProto proto;
    proto.set_ir_version(kIrVersion);
    proto.set_producer_name("autoq");
    proto.set_producer_version(absl::StrCat(kExportFormatVersion));
    onnx::OperatorSetIdProto* opset = proto.add_opset_import();
    opset->set_domain("");
    opset->set_version(kOpset);
    graph_ = proto.mutable_graph();
    graph_->set_name("autoq_qdq");

    // The model input (after `self`).
    if (graph->inputs().size() != 2) {
      throw Unsupported{"forward must take exactly one tensor input"};
    }
    AddValueInfo(graph_->add_input(), "input", analysis.input_shape);
    names_[graph->inputs()[1]] = "input";

    for (Node* n : graph->nodes()) Translate(n);

    if (graph->outputs().size() != 1 ||
        names_.count(graph->outputs()[0]) == 0) {
      throw Unsupported{"forward must return one tensor"};
    }
    AddNode("Identity", {Name(graph->outputs()[0])}, {"output"});
    // The output's shape from one forward of a zero image.
    std::vector<int64_t> input = {1};
    input.insert(input.end(), analysis.input_shape.begin(),
                 analysis.input_shape.end());
    const at::Tensor y =
        exported_.forward({at::zeros(input, at::kFloat)}).toTensor();
    if (y.dim() < 1) throw Unsupported{"forward returns a scalar"};
    AddValueInfo(graph_->add_output(), "output",
                 std::vector<int64_t>(y.sizes().begin() + 1, y.sizes().end()));

    AddMetadata(&proto);
    OnnxExport result;
    onnx::checker::check_model(proto);
    result.model = proto.SerializeAsString();
    result.encodings_json = encodings_.dump(2);
    return result;
  }

 private:
  // A float tensor of shape [batch, dims...].
  static void AddValueInfo(onnx::ValueInfoProto* v, const std::string& name,
                           const std::vector<int64_t>& chw) {
    v->set_name(name);
    onnx::TypeProto_Tensor* t = v->mutable_type()->mutable_tensor_type();
    t->set_elem_type(onnx::TensorProto::FLOAT);
    onnx::TensorShapeProto* shape = t->mutable_shape();
    shape->add_dim()->set_dim_param("batch");
    for (int64_t d : chw) shape->add_dim()->set_dim_value(d);
  }

  std::string Fresh(const std::string& stem) {
    return absl::StrCat(stem, "_", counter_++);
  }

  onnx::NodeProto* AddNode(const std::string& op,
                           const std::vector<std::string>& inputs,
                           const std::vector<std::string>& outputs) {
    onnx::NodeProto* n = graph_->add_node();
    n->set_op_type(op);
    n->set_name(Fresh(op));
    for (const std::string& i : inputs) n->add_input(i);
    for (const std::string& o : outputs) n->add_output(o);
    return n;
  }

  static void IntsAttr(onnx::NodeProto* n, const std::string& name,
                       const std::vector<int64_t>& v) {
    onnx::AttributeProto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INTS);
    for (int64_t x : v) a->add_ints(x);
  }
  static void IntAttr(onnx::NodeProto* n, const std::string& name, int64_t v) {
    onnx::AttributeProto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(v);
  }
  static void FloatAttr(onnx::NodeProto* n, const std::string& name, float v) {
    onnx::AttributeProto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(v);
  }

  std::string Initializer(const std::string& stem, const at::Tensor& t) {
    const std::string name = Fresh(stem);
    SetTensor(name, t, graph_->add_initializer());
    return name;
  }
  std::string Scalar(float v) {
    return Initializer("const", at::tensor({v}, at::kFloat).reshape({}));
  }

  // The ONNX name of `v`: a translated value, or a tensor constant /
  // parameter turned into an initializer on first use.
  std::string Name(Value* v) {
    auto it = names_.find(v);
    if (it != names_.end()) return it->second;
    std::optional<c10::IValue> iv = Constant(v);
    if (!iv.has_value() || !iv->isTensor()) {
      Fail(v->node(), "a value the export cannot follow");
    }
    at::Tensor t = iv->toTensor().detach().to(at::kCPU);
    if (t.scalar_type() == at::kDouble) t = t.to(at::kFloat);
    const std::string name = Initializer(
        v->debugNameBase().empty() ? "param" : v->debugNameBase(), t);
    names_[v] = name;
    return name;
  }

  // The value of a constant or of a module attribute (prim::GetAttr chain).
  std::optional<c10::IValue> Constant(Value* v) {
    Node* n = v->node();
    if (n->kind() == c10::prim::Constant) {
      if (std::optional<c10::IValue> c = torch::jit::toIValue(v)) return c;
      return std::nullopt;
    }
    if (n->kind() == c10::prim::GetAttr) {
      Value* parent = n->input(0);
      c10::IValue obj;
      if (parent == n->owningGraph()->inputs()[0]) {
        obj = c10::IValue(exported_._ivalue());
      } else {
        std::optional<c10::IValue> p = Constant(parent);
        if (!p.has_value() || !p->isObject()) return std::nullopt;
        obj = *p;
      }
      return obj.toObject()->getAttr(n->s(c10::attr::name));
    }
    if (n->kind() == c10::prim::If) {
      std::optional<c10::IValue> cond = Constant(n->input(0));
      if (!cond.has_value() || !cond->isBool()) return std::nullopt;
      torch::jit::Block* block = n->blocks().at(cond->toBool() ? 0 : 1);
      for (size_t i = 0; i < n->outputs().size(); ++i) {
        if (n->output(i) == v) return Constant(block->outputs()[i]);
      }
      return std::nullopt;
    }
    if (n->kind() == c10::prim::unchecked_cast) return Constant(n->input(0));
    if (n->kind() == c10::aten::__not__) {
      std::optional<c10::IValue> b = Constant(n->input(0));
      if (!b.has_value() || !b->isBool()) return std::nullopt;
      return c10::IValue(!b->toBool());
    }
    if (n->kind() == c10::aten::__and__ || n->kind() == c10::aten::__or__) {
      std::optional<c10::IValue> a = Constant(n->input(0));
      std::optional<c10::IValue> b = Constant(n->input(1));
      if (!a || !b || !a->isBool() || !b->isBool()) return std::nullopt;
      return c10::IValue(n->kind() == c10::aten::__and__
                             ? a->toBool() && b->toBool()
                             : a->toBool() || b->toBool());
    }
    if (n->kind() == c10::aten::__is__ || n->kind() == c10::aten::__isnot__) {
      // Only None can be decided here: `x is None` for attributes.
      std::optional<c10::IValue> a = Constant(n->input(0));
      std::optional<c10::IValue> b = Constant(n->input(1));
      if (!a || !b || !(a->isNone() || b->isNone())) return std::nullopt;
      const bool same = a->isNone() && b->isNone();
      return c10::IValue(n->kind() == c10::aten::__is__ ? same : !same);
    }
    if (n->kind() == c10::prim::ListConstruct) {
      std::vector<int64_t> ints;
      for (Value* in : n->inputs()) {
        std::optional<c10::IValue> x = torch::jit::toIValue(in);
        if (!x.has_value() || !x->isInt()) return std::nullopt;
        ints.push_back(x->toInt());
      }
      return c10::IValue(ints);
    }
    return std::nullopt;
  }

  std::vector<int64_t> Ints(Node* n, size_t i) {
    std::optional<c10::IValue> v = Constant(n->input(i));
    if (!v.has_value()) Fail(n, absl::StrCat("input ", i, " is not constant"));
    if (v->isInt()) return {v->toInt()};
    if (!v->isIntList()) Fail(n, absl::StrCat("input ", i, " is not ints"));
    return v->toIntVector();
  }
  int64_t Int(Node* n, size_t i) {
    std::optional<c10::IValue> v = Constant(n->input(i));
    if (!v.has_value() || !v->isInt()) {
      Fail(n, absl::StrCat("input ", i, " is not a constant int"));
    }
    return v->toInt();
  }
  double Double(Node* n, size_t i) {
    std::optional<c10::IValue> v = Constant(n->input(i));
    if (!v.has_value() || !(v->isDouble() || v->isInt())) {
      Fail(n, absl::StrCat("input ", i, " is not a constant number"));
    }
    return v->isDouble() ? v->toDouble() : static_cast<double>(v->toInt());
  }
  bool Bool(Node* n, size_t i) {
    std::optional<c10::IValue> v = Constant(n->input(i));
    if (!v.has_value() || !v->isBool()) {
      Fail(n, absl::StrCat("input ", i, " is not a constant bool"));
    }
    return v->toBool();
  }
  bool IsNone(Node* n, size_t i) {
    std::optional<c10::IValue> v = Constant(n->input(i));
    return v.has_value() && v->isNone();
  }

  // Pads of ONNX (begin..., end...) from PyTorch's symmetric ones.
  static std::vector<int64_t> Pads(const std::vector<int64_t>& p, size_t dims) {
    std::vector<int64_t> one =
        p.size() == 1 ? std::vector<int64_t>(dims, p[0]) : p;
    std::vector<int64_t> out = one;
    out.insert(out.end(), one.begin(), one.end());
    return out;
  }
  static std::vector<int64_t> Spread(const std::vector<int64_t>& v,
                                     size_t dims) {
    return v.size() == 1 ? std::vector<int64_t>(dims, v[0]) : v;
  }

  static std::optional<int64_t> IntConstant(Value* v) {
    std::optional<c10::IValue> c = torch::jit::toIValue(v);
    if (!c.has_value() || !c->isInt()) return std::nullopt;
    return c->toInt();
  }

  void Alias(Value* out, Value* in) { names_[out] = Name(in); }

  void Unary(Node* n, const std::string& op) {
    const std::string out = Fresh(op);
    AddNode(op, {Name(n->input(0))}, {out});
    names_[n->output(0)] = out;
  }

  void Translate(Node* n) {
    const std::string kind = n->kind().toQualString();
    std::string op = n->kind().toUnqualString();
    if (!op.empty() && op.back() == '_' &&
        n->kind().ns() == c10::namespaces::aten) {
      op.pop_back();  // in-place forms
    }
    if (n->kind() == c10::prim::If) return If(n);
    if (n->kind() == c10::prim::Constant || n->kind() == c10::prim::GetAttr) {
      return;  // parameters and constants become initializers where used
    }
    if (n->kind() == c10::prim::unchecked_cast) {
      return Alias(n->output(0), n->input(0));
    }
    // Scalars, lists, strings and modules (shape checks, attribute reads,
    // flags) are evaluated where a translated op needs them, if at all.
    const bool any_tensor =
        std::any_of(n->outputs().begin(), n->outputs().end(), [](Value* v) {
          return v->type()->kind() == c10::TypeKind::TensorType;
        });
    if (!any_tensor) return;
    if (n->kind().ns() != c10::namespaces::aten) {
      Fail(n, absl::StrCat("op ", kind, " has no ONNX form here"));
    }
    if (layer_of_.count(n) > 0) return Layer(n, layer_of_.at(n));
    if (bn_of_.count(n) > 0 && FoldedBn(*bn_of_.at(n))) {
      // Folded into its layer's weights and bias.
      return Alias(n->output(0), n->input(0));
    }
    if (op == "conv1d" || op == "conv2d" || op == "_convolution" ||
        op == "linear") {
      return Layer(n, nullptr);
    }
    if (op == "batch_norm") return BatchNorm(n);
    if (op == "relu") return Unary(n, "Relu");
    if (op == "sigmoid") return Unary(n, "Sigmoid");
    if (op == "tanh") return Unary(n, "Tanh");
    if (op == "hardtanh" || op == "relu6" || op == "clamp") return Clip(n, op);
    if (op == "hardswish" || op == "silu") return Gated(n, op);
    if (op == "hardsigmoid") {
      const std::string out = Fresh("hardsigmoid");
      onnx::NodeProto* h = AddNode("HardSigmoid", {Name(n->input(0))}, {out});
      FloatAttr(h, "alpha", 1.0f / 6.0f);
      FloatAttr(h, "beta", 0.5f);
      names_[n->output(0)] = out;
      return;
    }
    if (op == "dropout" || op == "feature_dropout" || op == "alpha_dropout" ||
        op == "contiguous" || op == "clone" || op == "detach") {
      return Alias(n->output(0), n->input(0));
    }
    if (op == "add" || op == "mul" || op == "sub" || op == "div") {
      return Binary(n, op);
    }
    if (op == "cat") return Concat(n);
    if (op == "max_pool2d" || op == "avg_pool2d") return Pool(n, op);
    if (op == "adaptive_avg_pool2d" || op == "adaptive_max_pool2d") {
      return GlobalPool(n, op);
    }
    if (op == "mean") return Mean(n);
    if (op == "flatten") return Flatten(n);
    if (op == "view" || op == "reshape") return Reshape(n);
    if (op == "softmax" || op == "log_softmax") return Softmax(n, op);
    if (op == "fake_quantize_per_tensor_affine") return FakeQuant(n);
    Fail(n, absl::StrCat("op ", kind, " has no ONNX form here"));
  }

  // A prim::If: the branch its condition picks when the condition is known
  // in eval mode (`self.training`, `x is None`, ...); a check that only
  // raises (`if x.dim() != 4: raise ...`) is left out, as ONNX graphs
  // validate their inputs themselves.
  void If(Node* n) {
    std::optional<c10::IValue> cond = Constant(n->input(0));
    if (cond.has_value() && cond->isBool()) {
      torch::jit::Block* block = n->blocks().at(cond->toBool() ? 0 : 1);
      for (Node* inner : block->nodes()) Translate(inner);
      for (size_t i = 0; i < n->outputs().size(); ++i) {
        if (n->output(i)->type()->kind() == c10::TypeKind::TensorType) {
          Alias(n->output(i), block->outputs()[i]);
        }
      }
      return;
    }
    bool raises = false;
    for (torch::jit::Block* b : n->blocks()) {
      for (Node* inner : b->nodes()) {
        raises |= inner->kind() == c10::prim::RaiseException;
      }
    }
    if (n->outputs().empty() && raises) return;
    Fail(n, "an if whose condition depends on the input");
  }

  bool FoldedBn(const GraphLayer& l) const {
    if (l.info.gene < 0) return false;
    const size_t g = static_cast<size_t>(l.info.gene);
    const LayerBn bn = ReadBn(
        model_,
        model_.analysis().layers.at(static_cast<size_t>(l.info.graph_index)));
    if (!bn.s.defined()) return false;
    return model_.options().scheme.granularity ==
               Granularity::kPerChannelSymmetric ||
           weights_.at(g).bn_folded;
  }

  // A conv or linear node; `layer` when it is a gene layer (quantized
  // weights, folded batch-norm), else it runs with its float weights.
  void Layer(Node* n, const GraphLayer* layer) {
    const std::string op = n->kind().toUnqualString();
    const bool linear = op == "linear";
    std::string weight, bias;
    const LayerInfo* info = nullptr;
    if (layer != nullptr && layer->info.gene >= 0) {
      info = &model_.analysis().layers.at(
          static_cast<size_t>(layer->info.graph_index));
      QuantizedWeight(*info, linear, &weight, &bias);
    } else if (linear) {
      std::optional<c10::IValue> w = Constant(n->input(1));
      if (!w.has_value() || !w->isTensor())
        Fail(n, "a linear weight that is not a parameter");
      weight =
          Initializer("weight", w->toTensor().detach().cpu().t().contiguous());
      if (!IsNone(n, 2)) bias = Name(n->input(2));
    } else {
      weight = Name(n->input(1));
      if (!IsNone(n, 2)) bias = Name(n->input(2));
    }
    const std::string x = Name(n->input(0));
    if (linear) {
      const std::string mm = Fresh("matmul");
      AddNode("MatMul", {x, weight}, {mm});
      std::string out = mm;
      if (!bias.empty()) {
        out = Fresh("linear");
        AddNode("Add", {mm, bias}, {out});
      }
      names_[n->output(0)] = out;
      return;
    }
    // conv1d/conv2d(x, w, b, stride, padding, dilation, groups) or
    // _convolution(x, w, b, stride, padding, dilation, transposed,
    // output_padding, groups, ...).
    const bool full = op == "_convolution";
    if (full && Bool(n, 6)) Fail(n, "transposed convolution");
    const size_t dims = op == "conv1d" ? 1 : 2;
    if (n->input(4)->type()->kind() == c10::TypeKind::StringType) {
      Fail(n, "padding given as a string");
    }
    std::vector<std::string> inputs = {x, weight};
    if (!bias.empty()) inputs.push_back(bias);
    const std::string out = Fresh("conv");
    onnx::NodeProto* conv = AddNode("Conv", inputs, {out});
    IntsAttr(conv, "strides", Spread(Ints(n, 3), dims));
    IntsAttr(conv, "pads", Pads(Ints(n, 4), dims));
    IntsAttr(conv, "dilations", Spread(Ints(n, 5), dims));
    IntAttr(conv, "group", Int(n, full ? 8 : 6));
    names_[n->output(0)] = out;
  }

  // The gene layer's weight as DequantizeLinear of its integer codes, and
  // its deployed (folded) bias.
  void QuantizedWeight(const LayerInfo& info, bool linear, std::string* weight,
                       std::string* bias) {
    const size_t g = static_cast<size_t>(info.gene);
    const WeightQuantState& w = weights_.at(g);
    const Granularity gran = model_.options().scheme.granularity;
    const int64_t channels = info.weight_shape.at(0);
    const LayerBn bn = ReadBn(model_, info);
    const LayerCodes codes = QuantizeLayer(w, bn, gran, channels);
    const std::string stem =
        std::string(absl::StripSuffix(info.weight_path, ".weight"));
    at::Tensor q = codes.per_channel ? codes.codes.to(at::kChar)
                                     : codes.codes.to(at::kByte);
    at::Tensor scales = codes.scales.to(at::kFloat);
    at::Tensor zero_points;
    if (codes.per_channel) {
      zero_points = at::zeros({channels}, at::kChar);
    } else {
      zero_points =
          codes.zero_points.to(at::kCPU).round().to(at::kByte).reshape({});
      scales = scales.reshape({});
    }
    // Linear weights go transposed into MatMul: output channels last.
    if (linear) q = q.t().contiguous();
    const std::string q_name = Initializer(stem + ".weight_int", q);
    const std::string s_name = Initializer(stem + ".weight_scale", scales);
    const std::string z_name =
        Initializer(stem + ".weight_zero_point", zero_points);
    *weight = Fresh(stem + ".weight");
    onnx::NodeProto* dq =
        AddNode("DequantizeLinear", {q_name, s_name, z_name}, {*weight});
    if (codes.per_channel) IntAttr(dq, "axis", linear ? 1 : 0);
    const at::Tensor b = DeployedBias(model_, info, bn, codes.folded, channels);
    if (b.defined()) *bias = Initializer(stem + ".bias", b.to(at::kFloat));

    // AIMET-style parameter encodings, one per channel or one per tensor.
    Json list = Json::array();
    const int bits = w.bits.wbits;
    for (int64_t c = 0; c < scales.numel(); ++c) {
      const double s = scales.reshape({-1})[c].item<double>();
      const int64_t zp = codes.per_channel ? 0 : zero_points.item<int64_t>();
      const int64_t qmin =
          codes.per_channel ? -((int64_t{1} << (bits - 1)) - 1) : 0;
      const int64_t qmax = codes.per_channel ? (int64_t{1} << (bits - 1)) - 1
                                             : (int64_t{1} << bits) - 1;
      list.push_back(
          Json{{"bitwidth", bits},
               {"dtype", "int"},
               {"is_symmetric", codes.per_channel ? "True" : "False"},
               {"max", (qmax - zp) * s},
               {"min", (qmin - zp) * s},
               {"offset", -zp},
               {"scale", s}});
    }
    encodings_["param_encodings"][q_name] = std::move(list);
    layer_bits_.push_back(Json{{"name", stem},
                               {"weight", q_name},
                               {"wbits", bits},
                               {"abits", w.bits.abits},
                               {"bn_folded", codes.folded}});
  }

  void BatchNorm(Node* n) {
    // batch_norm(x, weight, bias, running_mean, running_var, training,
    // momentum, eps, cudnn_enabled)
    if (Bool(n, 5)) Fail(n, "batch-norm in training mode");
    std::vector<std::string> inputs = {Name(n->input(0))};
    for (size_t i = 1; i <= 4; ++i) {
      if (IsNone(n, i))
        Fail(n, "batch-norm without affine parameters or statistics");
      inputs.push_back(Name(n->input(i)));
    }
    const std::string out = Fresh("bn");
    onnx::NodeProto* bn = AddNode("BatchNormalization", inputs, {out});
    FloatAttr(bn, "epsilon", static_cast<float>(Double(n, 7)));
    names_[n->output(0)] = out;
  }

  void Clip(Node* n, const std::string& op) {
    double lo = 0, hi = 6;
    if (op == "hardtanh") {
      lo = Double(n, 1);
      hi = Double(n, 2);
    } else if (op == "clamp") {
      if (IsNone(n, 1) || IsNone(n, 2)) Fail(n, "clamp with one bound");
      lo = Double(n, 1);
      hi = Double(n, 2);
    }
    const std::string out = Fresh("clip");
    AddNode("Clip",
            {Name(n->input(0)), Scalar(static_cast<float>(lo)),
             Scalar(static_cast<float>(hi))},
            {out});
    names_[n->output(0)] = out;
  }

  // x * gate(x): hardswish's gate is HardSigmoid(1/6, 0.5), silu's Sigmoid.
  void Gated(Node* n, const std::string& op) {
    const std::string x = Name(n->input(0));
    const std::string gate = Fresh("gate");
    onnx::NodeProto* g =
        AddNode(op == "hardswish" ? "HardSigmoid" : "Sigmoid", {x}, {gate});
    if (op == "hardswish") {
      FloatAttr(g, "alpha", 1.0f / 6.0f);
      FloatAttr(g, "beta", 0.5f);
    }
    const std::string out = Fresh(op);
    AddNode("Mul", {x, gate}, {out});
    names_[n->output(0)] = out;
  }

  std::string Operand(Node* n, size_t i) {
    std::optional<c10::IValue> v = torch::jit::toIValue(n->input(i));
    if (v.has_value() && (v->isDouble() || v->isInt())) {
      return Scalar(static_cast<float>(Double(n, i)));
    }
    return Name(n->input(i));
  }

  void Binary(Node* n, const std::string& op) {
    if ((op == "add" || op == "sub") && n->inputs().size() > 2 &&
        Double(n, 2) != 1.0) {
      Fail(n, "add/sub with alpha != 1");
    }
    if (op == "div" && n->inputs().size() > 2 && !IsNone(n, 2)) {
      Fail(n, "div with a rounding mode");
    }
    static const std::map<std::string, std::string> kOps = {
        {"add", "Add"}, {"mul", "Mul"}, {"sub", "Sub"}, {"div", "Div"}};
    const std::string out = Fresh(op);
    AddNode(kOps.at(op), {Operand(n, 0), Operand(n, 1)}, {out});
    names_[n->output(0)] = out;
  }

  void Concat(Node* n) {
    Node* list = n->input(0)->node();
    if (list->kind() != c10::prim::ListConstruct)
      Fail(n, "cat of a non-literal list");
    std::vector<std::string> inputs;
    for (Value* v : list->inputs()) inputs.push_back(Name(v));
    const std::string out = Fresh("cat");
    IntAttr(AddNode("Concat", inputs, {out}), "axis", Int(n, 1));
    names_[n->output(0)] = out;
  }

  void Pool(Node* n, const std::string& op) {
    // max_pool2d(x, kernel, stride, padding, dilation, ceil_mode)
    // avg_pool2d(x, kernel, stride, padding, ceil_mode, count_include_pad,
    //            divisor_override)
    const bool max = op == "max_pool2d";
    const std::vector<int64_t> kernel = Spread(Ints(n, 1), 2);
    std::vector<int64_t> stride = Ints(n, 2);
    if (stride.empty()) stride = kernel;
    const std::string out = Fresh(max ? "maxpool" : "avgpool");
    onnx::NodeProto* p =
        AddNode(max ? "MaxPool" : "AveragePool", {Name(n->input(0))}, {out});
    IntsAttr(p, "kernel_shape", kernel);
    IntsAttr(p, "strides", Spread(stride, 2));
    IntsAttr(p, "pads", Pads(Ints(n, 3), 2));
    if (max) {
      IntsAttr(p, "dilations", Spread(Ints(n, 4), 2));
      IntAttr(p, "ceil_mode", Bool(n, 5) ? 1 : 0);
    } else {
      IntAttr(p, "ceil_mode", Bool(n, 4) ? 1 : 0);
      IntAttr(p, "count_include_pad", Bool(n, 5) ? 1 : 0);
      if (!IsNone(n, 6)) Fail(n, "avg_pool2d with divisor_override");
    }
    names_[n->output(0)] = out;
  }

  void GlobalPool(Node* n, const std::string& op) {
    const std::vector<int64_t> size = Ints(n, 1);
    for (int64_t s : size) {
      if (s != 1) Fail(n, "adaptive pooling to an output other than 1x1");
    }
    const std::string out = Fresh("gap");
    AddNode(op == "adaptive_avg_pool2d" ? "GlobalAveragePool" : "GlobalMaxPool",
            {Name(n->input(0))}, {out});
    names_[n->output(0)] = out;
  }

  void Mean(Node* n) {
    // mean.dim(x, dims, keepdim, dtype)
    if (n->inputs().size() < 3) Fail(n, "mean over every dimension");
    const std::string out = Fresh("mean");
    onnx::NodeProto* r = AddNode("ReduceMean", {Name(n->input(0))}, {out});
    IntsAttr(r, "axes", Ints(n, 1));
    IntAttr(r, "keepdims", Bool(n, 2) ? 1 : 0);
    names_[n->output(0)] = out;
  }

  void Flatten(Node* n) {
    const int64_t start = Int(n, 1), end = Int(n, 2);
    if (start != 1 || end != -1) {
      Fail(n, "flatten other than from dimension 1 to the last");
    }
    const std::string out = Fresh("flatten");
    IntAttr(AddNode("Flatten", {Name(n->input(0))}, {out}), "axis", start);
    names_[n->output(0)] = out;
  }

  void Reshape(Node* n) {
    Node* list = n->input(1)->node();
    // x.view(x.size(0), -1): a flatten from dimension 1.
    if (list->kind() == c10::prim::ListConstruct &&
        list->inputs().size() == 2) {
      Node* first = list->input(0)->node();
      std::optional<c10::IValue> second = torch::jit::toIValue(list->input(1));
      if (first->kind() == c10::aten::size && first->input(0) == n->input(0) &&
          IntConstant(first->input(1)) == std::optional<int64_t>(0) &&
          second.has_value() && second->isInt() && second->toInt() == -1) {
        const std::string out = Fresh("flatten");
        IntAttr(AddNode("Flatten", {Name(n->input(0))}, {out}), "axis", 1);
        names_[n->output(0)] = out;
        return;
      }
    }
    std::optional<c10::IValue> shape = Constant(n->input(1));
    if (!shape.has_value() || !shape->isIntList()) {
      Fail(n, "reshape to a shape computed at run time");
    }
    const std::vector<int64_t> dims = shape->toIntVector();
    const std::string s = Initializer("shape", at::tensor(dims, at::kLong));
    const std::string out = Fresh("reshape");
    AddNode("Reshape", {Name(n->input(0)), s}, {out});
    names_[n->output(0)] = out;
  }

  void Softmax(Node* n, const std::string& op) {
    if (n->inputs().size() > 2 && !IsNone(n, 2))
      Fail(n, "softmax with a dtype");
    const std::string out = Fresh(op);
    IntAttr(AddNode(op == "softmax" ? "Softmax" : "LogSoftmax",
                    {Name(n->input(0))}, {out}),
            "axis", Int(n, 1));
    names_[n->output(0)] = out;
  }

  // fake_quantize_per_tensor_affine(x, scale, zero_point, qmin, qmax):
  // Clip to the b-bit range when narrower than the 8-bit type, then
  // QuantizeLinear + DequantizeLinear.
  void FakeQuant(Node* n) {
    const double scale = Double(n, 1);
    const int64_t zp = Int(n, 2), qmin = Int(n, 3), qmax = Int(n, 4);
    const bool is_signed = qmin < 0;
    const int64_t tmin = is_signed ? -128 : 0, tmax = is_signed ? 127 : 255;
    if (qmin < tmin || qmax > tmax) Fail(n, "a range wider than 8 bits");
    std::string x = Name(n->input(0));
    const std::string tensor = x;
    if (qmin > tmin || qmax < tmax) {
      const std::string clipped = Fresh("clip");
      AddNode("Clip",
              {x, Scalar(static_cast<float>((qmin - zp) * scale)),
               Scalar(static_cast<float>((qmax - zp) * scale))},
              {clipped});
      x = clipped;
    }
    const std::string s = Scalar(static_cast<float>(scale));
    at::Tensor zt = is_signed
                        ? at::tensor({static_cast<int8_t>(zp)}, at::kChar)
                        : at::tensor({static_cast<uint8_t>(zp)}, at::kByte);
    const std::string z = Initializer("zero_point", zt.reshape({}));
    const std::string q = Fresh("q");
    const std::string out = Fresh("dq");
    AddNode("QuantizeLinear", {x, s, z}, {q});
    AddNode("DequantizeLinear", {q, s, z}, {out});
    names_[n->output(0)] = out;
    int bits = 0;
    while ((int64_t{1} << bits) < qmax - qmin + 1) ++bits;
    encodings_["activation_encodings"][tensor] =
        Json::array({Json{{"bitwidth", bits},
                          {"dtype", "int"},
                          {"is_symmetric", "False"},
                          {"max", (qmax - zp) * scale},
                          {"min", (qmin - zp) * scale},
                          {"offset", -zp},
                          {"scale", scale}}});
  }

  void AddMetadata(onnx::ModelProto* proto) {
    auto add = [&](const std::string& key, const std::string& value) {
      onnx::StringStringEntryProto* e = proto->add_metadata_props();
      e->set_key(key);
      e->set_value(value);
    };
    add("autoq.format_version", absl::StrCat(kExportFormatVersion));
    add("autoq.scheme", GranularityName(model_.options().scheme.granularity));
    add("autoq.layers", layer_bits_.dump());
    if (!encodings_.contains("activation_encodings")) {
      encodings_["activation_encodings"] = Json::object();
    }
    if (!encodings_.contains("param_encodings")) {
      encodings_["param_encodings"] = Json::object();
    }
    encodings_["version"] = "0.6.1";
  }

  QuantizedModel& model_;
  torch::jit::Module exported_;  // a handle to the caller's module
  const std::vector<WeightQuantState>& weights_;
  std::vector<GraphLayer> layers_;
  std::unordered_map<const Node*, const GraphLayer*> layer_of_, bn_of_;
  std::unordered_map<const Value*, std::string> names_;
  onnx::GraphProto* graph_ = nullptr;
  int counter_ = 0;
  Json encodings_ = Json::object();
  Json layer_bits_ = Json::array();
};

}  // namespace

bool OnnxExportAvailable() { return true; }

absl::StatusOr<OnnxExport> BuildOnnx(
    QuantizedModel& model, const std::string& torchscript,
    const std::vector<WeightQuantState>& weights) {
  try {
    at::NoGradGuard no_grad;
    std::istringstream in(torchscript);
    torch::jit::Module exported = torch::jit::load(in, at::Device(at::kCPU));
    exported.eval();
    return Translator(model, exported, weights).Run();
  } catch (const Unsupported& u) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot express the model in ONNX: ", u.why));
  } catch (const onnx::checker::ValidationError& e) {
    return absl::InternalError(
        absl::StrCat("the ONNX export fails onnx::checker: ", e.what()));
  } catch (const std::exception& e) {
    return absl::InternalError(
        absl::StrCat("cannot build the ONNX export: ", SummarizeTorchError(e)));
  }
}

}  // namespace autoq::qat::export_internal

#else  // !AUTOQ_WITH_ONNX

namespace autoq::qat::export_internal {

bool OnnxExportAvailable() { return false; }

absl::StatusOr<OnnxExport> BuildOnnx(QuantizedModel&, const std::string&,
                                     const std::vector<WeightQuantState>&) {
  return absl::UnimplementedError(
      "this build has no ONNX export (install libonnx-dev and rebuild)");
}

}  // namespace autoq::qat::export_internal

#endif  // AUTOQ_WITH_ONNX
