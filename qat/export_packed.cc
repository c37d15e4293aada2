// The packed-integer half of ExportQuantizedModel: the deployable folded
// layers at their bit-widths, and the manifest that describes them.
#include <ATen/ATen.h>

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

Json Section(int64_t offset, int64_t bytes, int64_t count) {
  return Json{{"offset", offset}, {"bytes", bytes}, {"count", count}};
}

std::vector<double> ToVector(const at::Tensor& t) {
  const at::Tensor c = t.to(at::kCPU, at::kDouble).contiguous();
  return std::vector<double>(c.data_ptr<double>(),
                             c.data_ptr<double>() + c.numel());
}

std::string LayerName(const LayerInfo& info) {
  return std::string(absl::StripSuffix(info.weight_path, ".weight"));
}

}  // namespace

absl::StatusOr<Packed> BuildPacked(
    QuantizedModel& model, const std::vector<WeightQuantState>& weights,
    const std::vector<ActivationQuantState>& acts, const GraphFacts& facts) {
  const ModelAnalysis& analysis = model.analysis();
  const QuantizedModelOptions& opts = model.options();
  const Granularity g = opts.scheme.granularity;
  const std::vector<const LayerInfo*> genes = analysis.genes();
  if (weights.size() != genes.size()) {
    return absl::InternalError("weight states do not match the genes");
  }
  Packed out;
  Json layers = Json::array();
  try {
    at::NoGradGuard no_grad;
    for (size_t i = 0; i < genes.size(); ++i) {
      const LayerInfo& info = *genes[i];
      const WeightQuantState& w = weights[i];
      const int64_t channels = info.weight_shape.at(0);
      std::vector<int64_t> channel_shape(info.weight_shape.size(), 1);
      channel_shape[0] = channels;

      // s = gamma / sqrt(var + eps), computed as RefreshWeights does.
      at::Tensor s, beta, mean, bn_gamma, bn_var;
      if (!info.bn_path.empty()) {
        torch::jit::Module bn = SubmoduleAt(model.module(), info.bn_path);
        bn_gamma = bn.attr("weight").toTensor().detach();
        beta = bn.attr("bias").toTensor().detach();
        mean = bn.attr("running_mean").toTensor().detach();
        bn_var = bn.attr("running_var").toTensor().detach();
        s = bn_gamma / (bn_var + info.bn_eps).sqrt();
      }
      const bool per_channel = g == Granularity::kPerChannelSymmetric;
      // Per-tensor weights fold only as the model trained them; per-channel
      // symmetric codes are invariant to the per-channel BN scale, so the
      // BN always folds there (exactly: the zero point is 0).
      const bool folded = s.defined() && (per_channel || w.bn_folded);
      at::Tensor codes, scales, zero_points;
      if (per_channel) {
        codes = QuantizeToInt(w.master, w.params);
        scales = w.params.scale.reshape({channels}).clone();
        if (folded) {
          // A negative s flips the codes' signs so the scales stay
          // positive; the narrow symmetric range is closed under negation.
          at::Tensor sign = at::where(s < 0, -1, 1).to(at::kInt);
          codes = codes * sign.reshape(channel_shape);
          scales = scales * s.abs();
        }
      } else {
        // With the fold, the codes of fq(W*s), which the model evaluates as
        // fq(W*s)/s followed by the BN. (Channels the model could not fold,
        // |s| < 1e-8, get W*s ~ 0 here: the true folded layer.)
        codes = QuantizeToInt(
            folded ? w.master * s.reshape(channel_shape) : w.master, w.params);
        scales = w.params.scale.reshape({1});
        zero_points = w.params.zero_point.reshape({1});
      }
      codes = codes.to(at::kCPU).contiguous();
      scales = scales.to(at::kCPU, at::kFloat).contiguous();

      // The activation feeding the layer.
      const int src =
          facts.input_site.at(static_cast<size_t>(info.graph_index));
      const bool input_quantized =
          src >= 0 && facts.quantized_output.at(static_cast<size_t>(src));
      const double input_scale =
          input_quantized ? acts.at(static_cast<size_t>(src)).params.scale
                          : 1.0;

      // Float bias of the deployed layer, in double.
      const bool has_bias = !info.bias_path.empty() || !info.bn_path.empty();
      at::Tensor bias;
      if (has_bias) {
        bias = info.bias_path.empty() ? at::zeros({channels}, at::kDouble)
                                      : AttrAt(model.module(), info.bias_path)
                                            .toTensor()
                                            .detach()
                                            .to(at::kCPU, at::kDouble);
        if (folded) {
          bias = beta.to(at::kCPU, at::kDouble) +
                 (bias - mean.to(at::kCPU, at::kDouble)) *
                     s.to(at::kCPU, at::kDouble);
        }
      }

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
      layer["signed_codes"] = per_channel;
      layer["bn_folded"] = folded;
      if (!info.bn_path.empty()) layer["bn_path"] = info.bn_path;

      const int64_t start = static_cast<int64_t>(out.payload.size());
      PackBits(codes, w.bits.wbits, &out.payload);
      const int64_t after_weights = static_cast<int64_t>(out.payload.size());
      layer["weights"] = Section(start, after_weights - start, codes.numel());
      if (has_bias) {
        at::Tensor bias_scale = scales.to(at::kDouble) * input_scale;
        // nan_to_num: a zero scale (a per-channel BN with gamma = 0).
        at::Tensor q = at::nan_to_num(bias / bias_scale, 0.0)
                           .round()
                           .clamp(std::numeric_limits<int32_t>::min(),
                                  std::numeric_limits<int32_t>::max());
        AppendInt32s(q, &out.payload);
        layer["bias"] = Section(after_weights, 4 * channels, channels);
      } else {
        layer["bias"] = nullptr;
      }
      const int64_t scales_at = static_cast<int64_t>(out.payload.size());
      AppendFloats(scales, &out.payload);
      layer["scales"] = Section(scales_at, 4 * scales.numel(), scales.numel());
      if (zero_points.defined()) {
        const int64_t zp_at = static_cast<int64_t>(out.payload.size());
        AppendInt32s(zero_points.to(at::kCPU).round(), &out.payload);
        layer["zero_points"] = Section(zp_at, 4, 1);
      } else {
        layer["zero_points"] = nullptr;
      }
      layer["bytes"] = static_cast<int64_t>(out.payload.size()) - start;

      Json input;
      input["quantized"] = input_quantized;
      input["scale"] = input_scale;
      input["from"] =
          input_quantized
              ? Json(LayerName(analysis.layers.at(static_cast<size_t>(src))))
              : Json(nullptr);
      layer["input"] = input;

      const ActivationQuantState& a =
          acts.at(static_cast<size_t>(info.graph_index));
      Json act;
      act["op"] =
          info.activation.empty() ? Json(nullptr) : Json(info.activation);
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
      layer["activation"] = act;

      if (s.defined() && !folded) {
        // Per-tensor weights trained without the fold: the BN stays a float
        // per-channel affine after the layer.
        Json bn;
        bn["scale"] = ToVector(s);
        bn["shift"] = ToVector(beta - mean * s);
        bn["note"] = "applied in float after the layer: y = x * scale + shift";
        layer["batch_norm"] = bn;
      }
      layers.push_back(std::move(layer));
    }
  } catch (const std::exception& e) {
    return absl::InternalError(
        absl::StrCat("cannot pack the weights: ", SummarizeTorchError(e)));
  }

  const int64_t expected =
      ComputeCost(analysis, opts.bits, opts.scheme.granularity).size_bytes;
  if (static_cast<int64_t>(out.payload.size()) != expected) {
    return absl::InternalError(
        absl::StrCat("packed payload has ", out.payload.size(),
                     " bytes but the cost model says ", expected));
  }
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
  manifest["input_shape"] = analysis.input_shape;
  manifest["byte_order"] = "little-endian";
  manifest["packing"] = kPackingDescription;
  manifest["payload_bytes"] = static_cast<int64_t>(out.payload.size());
  manifest["layers"] = std::move(layers);
  out.manifest_json = manifest.dump(2);
  return out;
}

}  // namespace autoq::qat::export_internal
