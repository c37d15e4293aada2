#include "qat/quantized_model.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/ir/constants.h>

#include <unordered_set>

#include "absl/strings/str_cat.h"
#include "qat/act_fake_quant.h"
#include "qat/graph_layers.h"
#include "qat/site_op.h"
#include "qat/torch_errors.h"

namespace autoq::qat {
namespace {

// BN scales below this are treated as 1: such a channel's output is the BN
// bias alone, so folding it would only divide by ~0.
constexpr double kMinFoldScale = 1e-8;

struct QLayer {
  const LayerInfo* info = nullptr;
  LayerBits bits;
  at::Tensor weight;  // the module's own tensor, overwritten each refresh
  at::Tensor master;  // float master copy, updated by the optimizer
  at::Tensor mask;    // STE mask of the last refresh
  torch::jit::Module bn;
  bool fold = false;
  bool exact = false;  // exact fold: BN replaced by an autoq::site2
  bool bn_graph_eval =
      false;  // traced in eval mode: BN always uses running stats
  double bn_momentum = 0.1;
  QuantParams params;
};

struct ActSite {
  int abits = 0;  // 0: left in float
  bool initialized = false;
  // EMA range: host floats on the CPU path, 0-dim device tensors elsewhere
  // (so a GPU never waits for a value to come back).
  float lo_host = 0, hi_host = 0;
  at::Tensor lo, hi;
};

}  // namespace

struct QuantizedModel::Impl : public SiteHook {
  QuantizedModelOptions options;
  ModelAnalysis analysis;
  torch::jit::Module module;
  std::unique_ptr<torch::jit::GraphFunction> forward;
  std::vector<QLayer> layers;           // one per gene
  std::vector<QLayer*> by_graph_index;  // null for masked layers
  std::vector<ActSite> sites;           // by graph_index
  std::vector<QuantParams> params;      // mirror of layers[i].params
  std::vector<torch::jit::Module> bns;  // every module with running stats
  // Every parameter and buffer of `module` and its value after Create, for
  // Reset.
  std::vector<at::Tensor> state;
  std::vector<at::Tensor> initial_state;
  bool training = false;
  bool observe = false;
  bool quantize_acts = true;
  bool bn_frozen = false;
  bool weights_dirty = true;

  at::Tensor OnSite(const at::Tensor& x, int64_t id) override {
    if (id >= kMasterSiteBase) {
      return by_graph_index[static_cast<size_t>(id - kMasterSiteBase)]->master;
    }
    ActSite& site = sites[static_cast<size_t>(id)];
    if (site.abits == 0) return x;
    if (x.is_cpu() && x.scalar_type() == at::kFloat) {
      return OnSiteCpu(x, site, ActQuantArgs());
    }
    if (observe) {
      at::NoGradGuard no_grad;
      auto [lo, hi] = at::aminmax(x.detach());
      if (!site.initialized) {
        site.lo = lo.clone();
        site.hi = hi.clone();
        site.initialized = true;
      } else {
        site.lo.lerp_(lo, options.act_ema);
        site.hi.lerp_(hi, options.act_ema);
      }
    }
    if (!quantize_acts || !site.initialized) return x;
    QuantParams p = AffineParamsFromRange(site.lo, site.hi, site.abits);
    return at::fake_quantize_per_tensor_affine(
        x, p.scale.reshape({1}), p.zero_point.reshape({1}).to(at::kInt), p.qmin,
        p.qmax);
  }

  // Exact fold: `y` is the conv output with shadowed weights fq(W*s)/s,
  // `yf` the conv output with the float masters. While the BN trains, `y`
  // is normalized with yf's batch statistics (so quantization noise does not
  // leak into them) and the running statistics follow yf; frozen or in eval
  // it is the regular eval BN, which equals the deployed folded layer.
  at::Tensor OnSite2(const at::Tensor& y, const at::Tensor& yf,
                     int64_t id) override {
    QLayer& q = *by_graph_index[static_cast<size_t>(id - kBnSiteBase)];
    at::Tensor gamma = q.bn.attr("weight").toTensor();
    at::Tensor beta = q.bn.attr("bias").toTensor();
    at::Tensor rmean = q.bn.attr("running_mean").toTensor();
    at::Tensor rvar = q.bn.attr("running_var").toTensor();
    const bool batch_stats = !q.bn_graph_eval && q.bn.attr("training").toBool();
    std::vector<int64_t> shape(y.dim(), 1);
    shape[1] = y.size(1);
    at::Tensor mean, var;
    if (batch_stats) {
      std::vector<int64_t> dims;
      for (int64_t d = 0; d < y.dim(); ++d) {
        if (d != 1) dims.push_back(d);
      }
      var = yf.var(dims, /*unbiased=*/false);
      mean = yf.mean(dims);
      at::NoGradGuard no_grad;
      const double n = static_cast<double>(yf.numel() / yf.size(1));
      rmean.lerp_(mean.detach(), q.bn_momentum);
      rvar.lerp_(var.detach() * (n / std::max(n - 1.0, 1.0)), q.bn_momentum);
    } else {
      mean = rmean;
      var = rvar;
    }
    at::Tensor inv = (var + q.info->bn_eps).rsqrt() * gamma;
    return (y - mean.reshape(shape)) * inv.reshape(shape) + beta.reshape(shape);
  }

  // One fused pass: fake-quantize with the range as it stood before this
  // batch and measure the batch's min/max for the EMA. The one-step lag is
  // immaterial at an EMA constant of 0.01 and saves a pass over the tensor.
  // ReLU / ReLU6 / hardtanh fused with the site: one pass on the CPU.
  at::Tensor OnSiteClamp(const at::Tensor& x, int64_t id, double lo,
                         double hi) override {
    ActSite& site = sites[static_cast<size_t>(id)];
    if (site.abits == 0 || !x.is_cpu() || x.scalar_type() != at::kFloat) {
      return SiteHook::OnSiteClamp(x, id, lo, hi);
    }
    ActQuantArgs args;
    args.clamp = true;
    args.clamp_lo = static_cast<float>(lo);
    args.clamp_hi = static_cast<float>(hi);
    return OnSiteCpu(x, site, args);
  }

  at::Tensor OnSiteCpu(const at::Tensor& x, ActSite& site, ActQuantArgs args) {
    args.quantize = quantize_acts && site.initialized;
    if (args.quantize) {
      HostAffineParams p =
          AffineParamsFromRangeHost(site.lo_host, site.hi_host, site.abits);
      args.scale = p.scale;
      args.zero_point = p.zero_point;
      args.qmin = p.qmin;
      args.qmax = p.qmax;
    }
    float lo = 0, hi = 0;
    at::Tensor y = ActFakeQuantCpu(x, args, observe ? &lo : nullptr,
                                   observe ? &hi : nullptr);
    if (observe) {
      const float c = static_cast<float>(options.act_ema);
      if (!site.initialized) {
        site.lo_host = lo;
        site.hi_host = hi;
        site.initialized = true;
      } else {
        site.lo_host += c * (lo - site.lo_host);
        site.hi_host += c * (hi - site.hi_host);
      }
    }
    return y;
  }
};

QuantizedModel::QuantizedModel(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}
QuantizedModel::~QuantizedModel() = default;

namespace {

absl::Status CheckBits(const std::vector<LayerBits>& bits, int genes) {
  if (!bits.empty() && static_cast<int>(bits.size()) != genes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bit list has ", bits.size(), " entries but the model has ", genes,
        " quantizable layers"));
  }
  for (size_t i = 0; i < bits.size(); ++i) {
    const LayerBits& b = bits[i];
    if (b.wbits < kMinBits || b.wbits > kMaxBits ||
        (b.abits != 0 && (b.abits < kMinBits || b.abits > kMaxBits))) {
      return absl::InvalidArgumentError(
          absl::StrCat("layer ", i, ": bits w", b.wbits, "/a", b.abits,
                       " outside ", kMinBits, "..", kMaxBits));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<QuantizedModel>> QuantizedModel::Create(
    const torch::jit::Module& module, const ModelAnalysis& analysis,
    QuantizedModelOptions options) {
  const bool quantized = !options.bits.empty();
  if (absl::Status st = CheckBits(options.bits, analysis.num_genes());
      !st.ok()) {
    return st;
  }
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  impl->analysis = analysis;
  try {
    {
      // Under grad mode deepcopy would make the copies non-leaf tensors.
      at::NoGradGuard no_grad;
      impl->module = module.deepcopy();
    }
    impl->module.to(impl->options.device);
    // Saved or freshly built modules may hold parameters without
    // requires_grad; every parameter is trained (or shadowed) here.
    for (at::Tensor p : impl->module.parameters(/*recurse=*/true)) {
      if (impl->options.channels_last && p.dim() == 4) {
        at::NoGradGuard no_grad;
        p.set_data(p.contiguous(at::MemoryFormat::ChannelsLast));
      }
      p.set_requires_grad(true);
    }
    std::shared_ptr<torch::jit::Graph> graph =
        PreparedForwardGraph(impl->module);
    std::vector<GraphLayer> found = FindLayers(*graph, impl->module);
    if (found.size() != analysis.layers.size()) {
      return absl::InternalError(
          "model graph differs from its analysis (analyze the same model)");
    }
    std::vector<bool> exact(found.size(), false);
    const QuantScheme& scheme = impl->options.scheme;
    if (quantized && scheme.bn_fold == BnFold::kExact &&
        scheme.granularity == Granularity::kPerTensorAffine) {
      for (const GraphLayer& l : found) {
        exact[static_cast<size_t>(l.info.graph_index)] =
            !l.info.masked && !l.info.bn_path.empty();
      }
    }
    // BN momentum and train flag as the graph passes them (constants in
    // scripted and traced torchvision models).
    std::vector<double> momentum(found.size(), 0.1);
    std::vector<bool> graph_eval(found.size(), false);
    for (const GraphLayer& l : found) {
      for (torch::jit::Node* bn : l.bn_nodes) {
        if (bn == nullptr) continue;
        const size_t i = static_cast<size_t>(l.info.graph_index);
        auto m = torch::jit::toIValue(bn->input(6));
        if (m && m->isDouble()) momentum[i] = m->toDouble();
        auto t = torch::jit::toIValue(bn->input(5));
        if (t && t->isBool() && !t->toBool()) graph_eval[i] = true;
      }
    }
    InsertExactFoldSites(*graph, found, exact);
    InsertSites(*graph, found);
    impl->forward = std::make_unique<torch::jit::GraphFunction>(
        "autoq_forward", graph, nullptr,
        torch::jit::ExecutorExecutionMode::SIMPLE);
    impl->sites.resize(found.size());
    std::unordered_set<c10::TensorImpl*> quantized_weights;
    for (const LayerInfo& info : impl->analysis.layers) {
      if (info.masked || !quantized) continue;
      QLayer q;
      q.info = &info;
      q.bits = impl->options.bits[static_cast<size_t>(info.gene)];
      q.weight = AttrAt(impl->module, info.weight_path).toTensor();
      q.master = q.weight.detach().clone().set_requires_grad(true);
      const size_t gi = static_cast<size_t>(info.graph_index);
      q.exact = exact[gi];
      q.fold =
          !info.bn_path.empty() &&
          impl->options.scheme.bn_fold != BnFold::kNone &&
          impl->options.scheme.granularity == Granularity::kPerTensorAffine;
      q.bn_momentum = momentum[gi];
      q.bn_graph_eval = graph_eval[gi];
      if (!info.bn_path.empty()) q.bn = SubmoduleAt(impl->module, info.bn_path);
      impl->sites[static_cast<size_t>(info.graph_index)].abits = q.bits.abits;
      quantized_weights.insert(q.weight.unsafeGetTensorImpl());
      impl->layers.push_back(std::move(q));
    }
    impl->by_graph_index.assign(found.size(), nullptr);
    for (QLayer& q : impl->layers) {
      impl->by_graph_index[static_cast<size_t>(q.info->graph_index)] = &q;
    }
    for (const torch::jit::Module& m : impl->module.modules()) {
      if (m.hasattr("running_var") && m.hasattr("training")) {
        impl->bns.push_back(m);
      }
    }
    at::NoGradGuard no_grad;
    for (const at::Tensor& t : impl->module.parameters(/*recurse=*/true)) {
      impl->state.push_back(t);
    }
    for (const at::Tensor& t : impl->module.buffers(/*recurse=*/true)) {
      impl->state.push_back(t);
    }
    for (const at::Tensor& t : impl->state) {
      impl->initial_state.push_back(t.detach().clone());
    }
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot prepare the model for quantization: ", SummarizeTorchError(e)));
  }
  auto model =
      std::unique_ptr<QuantizedModel>(new QuantizedModel(std::move(impl)));
  model->Train(false);
  return model;
}

absl::Status QuantizedModel::Reset(std::vector<LayerBits> bits) {
  Impl& m = *impl_;
  if (absl::Status st = CheckBits(bits, m.analysis.num_genes()); !st.ok()) {
    return st;
  }
  if (bits.empty() != m.options.bits.empty()) {
    return absl::InvalidArgumentError(
        "a model built in float mode resets only to float mode, and a "
        "quantized one only to bits");
  }
  try {
    {
      at::NoGradGuard no_grad;
      for (size_t i = 0; i < m.state.size(); ++i) {
        m.state[i].copy_(m.initial_state[i]);
        if (m.state[i].requires_grad()) m.state[i].mutable_grad().reset();
      }
    }
    m.options.bits = std::move(bits);
    for (ActSite& site : m.sites) site = ActSite{};
    for (QLayer& q : m.layers) {
      q.bits = m.options.bits[static_cast<size_t>(q.info->gene)];
      q.master = q.weight.detach().clone().set_requires_grad(true);
      q.mask = at::Tensor();
      q.params = QuantParams();
      m.sites[static_cast<size_t>(q.info->graph_index)].abits = q.bits.abits;
    }
    m.params.clear();
    m.observe = false;
    m.quantize_acts = true;
    m.bn_frozen = false;
    Train(false);
  } catch (const std::exception& e) {
    return absl::InternalError(
        absl::StrCat("cannot reset the model: ", SummarizeTorchError(e)));
  }
  return absl::OkStatus();
}

void QuantizedModel::RefreshWeights() {
  Impl& m = *impl_;
  at::NoGradGuard no_grad;
  m.params.resize(m.layers.size());
  for (size_t i = 0; i < m.layers.size(); ++i) {
    QLayer& q = m.layers[i];
    const QuantScheme& scheme = m.options.scheme;
    if (q.fold) {
      at::Tensor gamma = q.bn.attr("weight").toTensor();
      at::Tensor var = q.bn.attr("running_var").toTensor();
      at::Tensor s = gamma / (var + q.info->bn_eps).sqrt();
      s = s.masked_fill(s.abs() < kMinFoldScale, 1.0);
      std::vector<int64_t> shape(q.master.dim(), 1);
      shape[0] = s.size(0);
      s = s.reshape(shape);
      at::Tensor scaled = q.master * s;
      q.params = ChooseWeightParams(scaled, q.bits.wbits, scheme.granularity,
                                    scheme.range);
      FakeQuantOutput fq = FakeQuantize(scaled, q.params);
      q.weight.copy_(fq.values.div_(s));
      q.mask = fq.mask;
    } else {
      q.params = ChooseWeightParams(q.master, q.bits.wbits, scheme.granularity,
                                    scheme.range);
      FakeQuantOutput fq = FakeQuantize(q.master, q.params);
      q.weight.copy_(fq.values);
      q.mask = fq.mask;
    }
    m.params[i] = q.params;
  }
  m.weights_dirty = false;
}

at::Tensor QuantizedModel::Forward(const at::Tensor& x) {
  Impl& m = *impl_;
  // In training BN statistics (hence the fold) and masters change every
  // step; in eval only after an optimizer step or a mode switch.
  if (m.training || m.weights_dirty) RefreshWeights();
  ScopedSiteHook hook(&m);
  at::Tensor input = x.to(m.options.device);
  if (m.options.channels_last && input.dim() == 4) {
    input = input.contiguous(at::MemoryFormat::ChannelsLast);
  }
  c10::IValue out = (*m.forward)({m.module._ivalue(), input});
  TORCH_CHECK(out.isTensor(),
              "the model's forward must return one tensor, got ",
              out.tagKind());
  return out.toTensor();
}

void QuantizedModel::Train(bool on) {
  Impl& m = *impl_;
  m.training = on;
  m.module.train(on);
  if (m.bn_frozen) {
    for (torch::jit::Module& bn : m.bns) bn.train(false);
  }
  m.weights_dirty = true;
}

bool QuantizedModel::is_training() const { return impl_->training; }
void QuantizedModel::SetObserveActivations(bool on) { impl_->observe = on; }
void QuantizedModel::SetQuantizeActivations(bool on) {
  impl_->quantize_acts = on;
}

void QuantizedModel::FreezeBatchNorm() {
  impl_->bn_frozen = true;
  for (torch::jit::Module& bn : impl_->bns) bn.train(false);
}

bool QuantizedModel::activations_calibrated() const {
  for (const ActSite& s : impl_->sites) {
    if (s.abits != 0 && !s.initialized) return false;
  }
  return true;
}

std::vector<at::Tensor> QuantizedModel::Parameters() {
  std::unordered_set<c10::TensorImpl*> shadowed;
  std::vector<at::Tensor> out;
  for (QLayer& q : impl_->layers) {
    shadowed.insert(q.weight.unsafeGetTensorImpl());
    out.push_back(q.master);
  }
  for (const at::Tensor& p : impl_->module.parameters(/*recurse=*/true)) {
    if (!shadowed.count(p.unsafeGetTensorImpl())) out.push_back(p);
  }
  return out;
}

void QuantizedModel::PropagateGradients() {
  for (QLayer& q : impl_->layers) {
    at::Tensor& g = q.weight.mutable_grad();
    if (!g.defined()) continue;
    // With the exact fold the master already has a gradient of its own
    // (through the float convolution's batch statistics): add to it.
    at::Tensor& mg = q.master.mutable_grad();
    if (mg.defined()) {
      mg.add_(g.mul_(q.mask));
    } else {
      mg = g.mul_(q.mask);
    }
    g = at::Tensor();
  }
  impl_->weights_dirty = true;
}

const std::vector<QuantParams>& QuantizedModel::weight_params() const {
  return impl_->params;
}

std::vector<WeightQuantState> QuantizedModel::weight_states() {
  if (impl_->weights_dirty) RefreshWeights();
  std::vector<WeightQuantState> out;
  for (const QLayer& q : impl_->layers) {
    WeightQuantState w;
    w.bits = q.bits;
    w.master = q.master.detach();
    w.bn_folded = q.fold;
    w.params = q.params;
    out.push_back(std::move(w));
  }
  return out;
}

std::vector<ActivationQuantState> QuantizedModel::activation_states() const {
  std::vector<ActivationQuantState> out;
  for (const ActSite& site : impl_->sites) {
    ActivationQuantState a;
    a.abits = site.abits;
    a.calibrated = site.initialized;
    if (site.initialized) {
      // The CPU float path keeps the range on the host; others in 0-dim
      // tensors (see ActSite).
      if (site.lo.defined()) {
        a.lo = site.lo.item<float>();
        a.hi = site.hi.item<float>();
      } else {
        a.lo = site.lo_host;
        a.hi = site.hi_host;
      }
      if (site.abits > 0) {
        a.params = AffineParamsFromRangeHost(a.lo, a.hi, site.abits);
      }
    }
    out.push_back(a);
  }
  return out;
}

bool QuantizedModel::quantizing_activations() const {
  return impl_->quantize_acts;
}

torch::jit::Module& QuantizedModel::module() { return impl_->module; }
const ModelAnalysis& QuantizedModel::analysis() const {
  return impl_->analysis;
}
const QuantizedModelOptions& QuantizedModel::options() const {
  return impl_->options;
}
c10::Device QuantizedModel::device() const { return impl_->options.device; }

}  // namespace autoq::qat
