// The packed-integer half of ExportQuantizedModel: the deployable folded
// layers at their bit-widths, and the manifest that describes them.
#include "qat/export_packed.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "qat/cost_model.h"
#include "qat/export.h"
#include "qat/export_internal.h"
#include "qat/graph_layers.h"
#include "qat/torch_errors.h"

namespace autoq::qat::export_internal {
namespace {

using Json = nlohmann::ordered_json;

constexpr char kPackingDescription[] =
    "Layers in gene order, each as [weights][bias][scales][zero points], no "
    "padding between sections; multi-byte values little-endian. Weights: the "
    "integer codes of the deployable layer (batch-norm folded in where "
    "bn_folded) in the weight tensor's row-major order, each in wbits bits, "
    "packed LSB-first into one bit stream per layer (code i occupies stream "
    "bits i*wbits .. i*wbits+wbits-1; stream bit j is bit j%8 of byte j/8), "
    "zero-padded to a whole byte. Per-tensor affine codes are unsigned, "
    "value = (code - zero_point) * scale; per-channel symmetric codes are "
    "wbits-bit two's complement, value = code * scale[out_channel]. Bias: "
    "int32, one per output channel, value = code * scale[out_channel] * "
    "input_scale (folded bias beta + (b - mean) * gamma / sqrt(var + eps) "
    "when a batch-norm is folded). Scales: float32, one per tensor or per "
    "output channel. Zero points: int32, per-tensor affine only. "
    "input_scale is the scale of the quantized activation feeding the "
    "layer (through reshapes, pooling, dropout); 1.0 when the input is not a "
    "quantized activation (the model input, a residual add, a concat, ...).";

void AppendU32(uint32_t v, std::string* out) {
  for (int i = 0; i < 4; ++i) {
    out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
}

void AppendInt32s(const at::Tensor& t, std::string* out) {
  const at::Tensor c = t.to(at::kInt).contiguous();
  const int32_t* p = c.data_ptr<int32_t>();
  for (int64_t i = 0; i < c.numel(); ++i) {
    AppendU32(static_cast<uint32_t>(p[i]), out);
  }
}

void AppendFloats(const at::Tensor& t, std::string* out) {
  const at::Tensor c = t.to(at::kFloat).contiguous();
  const float* p = c.data_ptr<float>();
  for (int64_t i = 0; i < c.numel(); ++i) {
    uint32_t bits;
    std::memcpy(&bits, &p[i], sizeof(bits));
    AppendU32(bits, out);
  }
}

Json SectionJson(const Section& s) {
  return Json{{"offset", s.offset}, {"bytes", s.bytes}, {"count", s.count}};
}

std::vector<double> ToVector(const at::Tensor& t) {
  const at::Tensor c = t.to(at::kCPU, at::kDouble).contiguous();
  return std::vector<double>(c.data_ptr<double>(),
                             c.data_ptr<double>() + c.numel());
}

std::string LayerName(const LayerInfo& info) {
  return std::string(absl::StripSuffix(info.weight_path, ".weight"));
}

// The activation feeding a layer.
struct LayerInput {
  int src = -1;  // graph_index of the layer whose output it is
  bool quantized = false;
  double scale = 1.0;
};

LayerInput InputOf(const LayerInfo& info,
                   const std::vector<ActivationQuantState>& acts,
                   const GraphFacts& facts) {
  LayerInput in;
  in.src = facts.input_site.at(static_cast<size_t>(info.graph_index));
  in.quantized =
      in.src >= 0 && facts.quantized_output.at(static_cast<size_t>(in.src));
  in.scale =
      in.quantized ? acts.at(static_cast<size_t>(in.src)).params.scale : 1.0;
  return in;
}

// The manifest's description of a layer, before its payload sections.
Json DescribeLayer(const LayerInfo& info, const WeightQuantState& w,
                   Granularity g, const LayerCodes& codes) {
  Json layer;
  layer["gene"] = info.gene;
  layer["name"] = LayerName(info);
  layer["weight_path"] = info.weight_path;
  layer["kind"] = LayerKindName(info.kind);
  layer["shape"] = info.weight_shape;
  layer["groups"] = info.groups;
  layer["wbits"] = w.bits.wbits;
  layer["abits"] = w.bits.abits;
  layer["granularity"] = GranularityName(g);
  layer["qmin"] = w.params.qmin;
  layer["qmax"] = w.params.qmax;
  layer["signed_codes"] = codes.per_channel;
  layer["bn_folded"] = codes.folded;
  if (!info.bn_path.empty()) layer["bn_path"] = info.bn_path;
  return layer;
}

void AddLayout(const LayerLayout& layout, Json* layer) {
  Json& l = *layer;
  l["weights"] = SectionJson(layout.weights);
  l["bias"] = layout.bias ? SectionJson(*layout.bias) : Json(nullptr);
  l["scales"] = SectionJson(layout.scales);
  l["zero_points"] =
      layout.zero_points ? SectionJson(*layout.zero_points) : Json(nullptr);
  l["bytes"] = layout.bytes;
}

Json InputJson(const LayerInput& in, const ModelAnalysis& analysis) {
  Json input;
  input["quantized"] = in.quantized;
  input["scale"] = in.scale;
  input["from"] =
      in.quantized
          ? Json(LayerName(analysis.layers.at(static_cast<size_t>(in.src))))
          : Json(nullptr);
  return input;
}

// The activation after the layer and, when quantized, its parameters.
Json ActivationJson(const LayerInfo& info,
                    const std::vector<ActivationQuantState>& acts,
                    const GraphFacts& facts) {
  const ActivationQuantState& a =
      acts.at(static_cast<size_t>(info.graph_index));
  Json act;
  act["op"] = info.activation.empty() ? Json(nullptr) : Json(info.activation);
  const bool act_quantized =
      facts.quantized_output.at(static_cast<size_t>(info.graph_index));
  act["quantized"] = act_quantized;
  if (act_quantized) {
    act["scale"] = a.params.scale;
    act["zero_point"] = a.params.zero_point;
    act["qmin"] = a.params.qmin;
    act["qmax"] = a.params.qmax;
    act["range"] = {a.lo, a.hi};
  }
  return act;
}

// Per-tensor weights trained without the fold: the BN stays a float
// per-channel affine after the layer.
Json UnfoldedBnJson(const LayerBn& bn) {
  Json j;
  j["scale"] = ToVector(bn.s);
  j["shift"] = ToVector(bn.beta - bn.mean * bn.s);
  j["note"] = "applied in float after the layer: y = x * scale + shift";
  return j;
}

// Packs gene layer `info` onto `payload`; returns its manifest entry.
Json PackLayer(QuantizedModel& model, const LayerInfo& info,
               const WeightQuantState& w,
               const std::vector<ActivationQuantState>& acts,
               const GraphFacts& facts, std::string* payload) {
  const Granularity g = model.options().scheme.granularity;
  const int64_t channels = info.weight_shape.at(0);
  const LayerBn bn = ReadBn(model, info);
  const LayerCodes codes = QuantizeLayer(w, bn, g, channels);
  const LayerInput in = InputOf(info, acts, facts);
  const at::Tensor bias = DeployedBias(model, info, bn, codes.folded, channels);

  Json layer = DescribeLayer(info, w, g, codes);
  AddLayout(AppendLayer(codes, w.bits.wbits, bias, in.scale, payload), &layer);
  layer["input"] = InputJson(in, model.analysis());
  layer["activation"] = ActivationJson(info, acts, facts);
  if (bn.s.defined() && !codes.folded) {
    layer["batch_norm"] = UnfoldedBnJson(bn);
  }
  return layer;
}

std::string ManifestJson(const QuantizedModel& model, const GraphFacts& facts,
                         int64_t payload_bytes, Json layers) {
  const QuantizedModelOptions& opts = model.options();
  bool acts_quantized = false;
  for (bool q : facts.quantized_output) acts_quantized |= q;
  Json manifest;
  manifest["format"] = "autoq-packed";
  manifest["format_version"] = kExportFormatVersion;
  manifest["scheme"] = {
      {"weights", GranularityName(opts.scheme.granularity)},
      {"weight_range", RangeMethodName(opts.scheme.range)},
      {"bn_fold", BnFoldName(opts.scheme.bn_fold)},
      {"activations", "per-tensor affine, unsigned, EMA min/max range"}};
  manifest["activations_quantized"] = acts_quantized;
  manifest["input_shape"] = model.analysis().input_shape;
  manifest["byte_order"] = "little-endian";
  manifest["packing"] = kPackingDescription;
  manifest["payload_bytes"] = payload_bytes;
  manifest["layers"] = std::move(layers);
  return manifest.dump(2);
}

}  // namespace

LayerBn ReadBn(QuantizedModel& model, const LayerInfo& info) {
  LayerBn bn;
  if (info.bn_path.empty()) return bn;
  torch::jit::Module m = SubmoduleAt(model.module(), info.bn_path);
  const at::Tensor gamma = m.attr("weight").toTensor().detach();
  bn.beta = m.attr("bias").toTensor().detach();
  bn.mean = m.attr("running_mean").toTensor().detach();
  const at::Tensor var = m.attr("running_var").toTensor().detach();
  bn.s = gamma / (var + info.bn_eps).sqrt();
  return bn;
}

at::Tensor DeployedBias(QuantizedModel& model, const LayerInfo& info,
                        const LayerBn& bn, bool folded, int64_t channels) {
  if (info.bias_path.empty() && info.bn_path.empty()) return at::Tensor();
  at::Tensor bias = info.bias_path.empty()
                        ? at::zeros({channels}, at::kDouble)
                        : AttrAt(model.module(), info.bias_path)
                              .toTensor()
                              .detach()
                              .to(at::kCPU, at::kDouble);
  if (folded) {
    bias = bn.beta.to(at::kCPU, at::kDouble) +
           (bias - bn.mean.to(at::kCPU, at::kDouble)) *
               bn.s.to(at::kCPU, at::kDouble);
  }
  return bias;
}

// Appends `codes` (int32) in `bits` bits each, LSB-first, to `out`.
void PackBits(const at::Tensor& codes, int bits, std::string* out) {
  const int32_t* c = codes.data_ptr<int32_t>();
  const uint64_t mask = (uint64_t{1} << bits) - 1;
  uint64_t acc = 0;
  int filled = 0;
  for (int64_t i = 0; i < codes.numel(); ++i) {
    // Two's complement of negative codes falls out of the cast and mask.
    acc |= (static_cast<uint64_t>(static_cast<uint32_t>(c[i])) & mask)
           << filled;
    filled += bits;
    while (filled >= 8) {
      out->push_back(static_cast<char>(acc & 0xff));
      acc >>= 8;
      filled -= 8;
    }
  }
  if (filled > 0) out->push_back(static_cast<char>(acc & 0xff));
}

LayerCodes QuantizeLayer(const WeightQuantState& w, const LayerBn& bn,
                         Granularity g, int64_t channels) {
  std::vector<int64_t> channel_shape(w.master.dim(), 1);
  channel_shape[0] = channels;
  LayerCodes out;
  out.per_channel = g == Granularity::kPerChannelSymmetric;
  // Per-tensor weights fold only as the model trained them; per-channel
  // symmetric codes are invariant to the per-channel BN scale, so the
  // BN always folds there (exactly: the zero point is 0).
  out.folded = bn.s.defined() && (out.per_channel || w.bn_folded);
  at::Tensor codes, scales;
  if (out.per_channel) {
    codes = QuantizeToInt(w.master, w.params);
    scales = w.params.scale.reshape({channels}).clone();
    if (out.folded) {
      // A negative s flips the codes' signs so the scales stay
      // positive; the narrow symmetric range is closed under negation.
      at::Tensor sign = at::where(bn.s < 0, -1, 1).to(at::kInt);
      codes = codes * sign.reshape(channel_shape);
      scales = scales * bn.s.abs();
    }
  } else {
    // With the fold, the codes of fq(W*s), which the model evaluates as
    // fq(W*s)/s followed by the BN. (Channels the model could not fold,
    // |s| < 1e-8, get W*s ~ 0 here: the true folded layer.)
    codes = QuantizeToInt(
        out.folded ? w.master * bn.s.reshape(channel_shape) : w.master,
        w.params);
    scales = w.params.scale.reshape({1});
    out.zero_points = w.params.zero_point.reshape({1});
  }
  out.codes = codes.to(at::kCPU).contiguous();
  out.scales = scales.to(at::kCPU, at::kFloat).contiguous();
  return out;
}

LayerLayout AppendLayer(const LayerCodes& layer, int wbits,
                        const at::Tensor& bias, double input_scale,
                        std::string* payload) {
  auto size = [&] { return static_cast<int64_t>(payload->size()); };
  LayerLayout l;
  const int64_t start = size();
  PackBits(layer.codes, wbits, payload);
  l.weights = {start, size() - start, layer.codes.numel()};
  if (bias.defined()) {
    const int64_t bias_at = size();
    at::Tensor bias_scale = layer.scales.to(at::kDouble) * input_scale;
    // nan_to_num: a zero scale (a per-channel BN with gamma = 0).
    at::Tensor q = at::nan_to_num(bias / bias_scale, 0.0)
                       .round()
                       .clamp(std::numeric_limits<int32_t>::min(),
                              std::numeric_limits<int32_t>::max());
    AppendInt32s(q, payload);
    l.bias = Section{bias_at, size() - bias_at, q.numel()};
  }
  const int64_t scales_at = size();
  AppendFloats(layer.scales, payload);
  l.scales = {scales_at, size() - scales_at, layer.scales.numel()};
  if (layer.zero_points.defined()) {
    const int64_t zp_at = size();
    AppendInt32s(layer.zero_points.to(at::kCPU).round(), payload);
    l.zero_points = Section{zp_at, size() - zp_at, layer.zero_points.numel()};
  }
  l.bytes = size() - start;
  return l;
}

absl::StatusOr<Packed> BuildPacked(
    QuantizedModel& model, const std::vector<WeightQuantState>& weights,
    const std::vector<ActivationQuantState>& acts, const GraphFacts& facts) {
  const ModelAnalysis& analysis = model.analysis();
  const QuantizedModelOptions& opts = model.options();
  const std::vector<const LayerInfo*> genes = analysis.genes();
  if (weights.size() != genes.size()) {
    return absl::InternalError("weight states do not match the genes");
  }
  Packed out;
  Json layers = Json::array();
  try {
    at::NoGradGuard no_grad;
    for (size_t i = 0; i < genes.size(); ++i) {
      layers.push_back(
          PackLayer(model, *genes[i], weights[i], acts, facts, &out.payload));
    }
  } catch (const std::exception& e) {
    return absl::InternalError(
        absl::StrCat("cannot pack the weights: ", SummarizeTorchError(e)));
  }

  // The manifest promises the reported size; a mismatch is a bug here or
  // in the cost model, never something to ship.
  const int64_t expected =
      ComputeCost(analysis, opts.bits, opts.scheme.granularity).size_bytes;
  if (static_cast<int64_t>(out.payload.size()) != expected) {
    return absl::InternalError(
        absl::StrCat("packed payload has ", out.payload.size(),
                     " bytes but the cost model says ", expected));
  }
  out.manifest_json =
      ManifestJson(model, facts, static_cast<int64_t>(out.payload.size()),
                   std::move(layers));
  return out;
}

}  // namespace autoq::qat::export_internal
