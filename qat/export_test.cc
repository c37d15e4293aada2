#include "qat/export.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <gtest/gtest.h>
#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/csrc/jit/serialization/import.h>
#include <torch/csrc/jit/serialization/pickle.h>

#include <cctype>
#include <cmath>
#include <cstring>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "qat/builtin_model.h"
#include "qat/cost_model.h"
#include "qat/graph_layers.h"
#include "qat/test_models.h"
#include "qat/trainer.h"
#include "tests/testing.h"

namespace autoq::qat {
namespace {

using Json = nlohmann::json;

using ::autoq::qat::test_util::RandomData;
using ::autoq::qat::test_util::RandomizeBatchNorms;

// Weight bits cycle through 2..8; every fourth activation stays in float.
std::vector<LayerBits> MixedBits(int genes) {
  std::vector<LayerBits> bits;
  for (int i = 0; i < genes; ++i) {
    bits.push_back({2 + (i * 3) % 7, i % 4 == 3 ? 0 : 8});
  }
  return bits;
}

void Walk(torch::jit::Block* block,
          const std::function<void(torch::jit::Node*)>& fn) {
  for (torch::jit::Node* n : block->nodes()) {
    fn(n);
    for (torch::jit::Block* b : n->blocks()) Walk(b, fn);
  }
}

int32_t ReadI32(const std::string& p, int64_t at) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) {
    v |= static_cast<uint32_t>(static_cast<uint8_t>(p.at(at + i))) << (8 * i);
  }
  return static_cast<int32_t>(v);
}

float ReadF32(const std::string& p, int64_t at) {
  const uint32_t v = static_cast<uint32_t>(ReadI32(p, at));
  float f;
  std::memcpy(&f, &v, sizeof(f));
  return f;
}

// Codes of a packed layer (LSB-first, two's complement when signed).
std::vector<int64_t> Unpack(const std::string& p, int64_t offset, int64_t count,
                            int bits, bool is_signed) {
  std::vector<int64_t> out;
  for (int64_t i = 0; i < count; ++i) {
    int64_t v = 0;
    for (int b = 0; b < bits; ++b) {
      const int64_t bit = i * bits + b;
      const uint8_t byte = static_cast<uint8_t>(p.at(offset + bit / 8));
      v |= static_cast<int64_t>((byte >> (bit % 8)) & 1) << b;
    }
    if (is_signed && (v >> (bits - 1)) & 1) v -= int64_t{1} << bits;
    out.push_back(v);
  }
  return out;
}

// Loads the exported archive in plain PyTorch and checks it reproduces
// `want` on `x`.
void ExpectLoadsInPython(const ExportedModel& e, const at::Tensor& x,
                         const at::Tensor& want) {
  testing::TempDir dir;
  testing::WriteFile(dir.File("model.pt"), e.torchscript);
  std::vector<char> data =
      torch::jit::pickle_save(c10::ivalue::Tuple::create({x, want}));
  testing::WriteFile(dir.File("data.pt"),
                     std::string(data.begin(), data.end()));
  testing::WriteFile(dir.File("check.py"), R"(import sys
try:
    import torch
except ImportError:
    print("no torch")
    sys.exit(3)
m = torch.jit.load(sys.argv[1])
m.eval()
x, want = torch.load(sys.argv[2])
with torch.no_grad():
    got = m(x)
assert "autoq::" not in str(m.inlined_graph), "autoq op in the graph"
fq = str(m.inlined_graph).count("aten::fake_quantize_per_tensor_affine")
print("python: max_abs_diff=%.3g fake_quant_nodes=%d" % ((got - want).abs().max().item(), fq))
assert torch.allclose(got, want, rtol=1e-4, atol=1e-4)
)");
  testing::CommandResult r = testing::RunCommand(
      absl::StrCat("/usr/bin/python3 ", dir.File("check.py"), " ",
                   dir.File("model.pt"), " ", dir.File("data.pt")));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  std::cout << r.output;
}

// Every check of an export of `model` (calibrated and fine-tuned): the
// TorchScript reproduces Forward on `x`, the payload has the cost model's
// size and unpacks to the folded fake-quantized weights.
void CheckExport(QuantizedModel& model, const ExportedModel& e,
                 const at::Tensor& x, const std::string& label,
                 bool python = false) {
  at::NoGradGuard no_grad;
  std::istringstream in(e.torchscript);
  torch::jit::Module loaded = torch::jit::load(in);
  loaded.eval();

  // Plain ATen graph: no autoq operators, one fake-quant per quantized
  // activation call site at least.
  std::shared_ptr<torch::jit::Graph> graph =
      torch::jit::toGraphFunction(loaded.get_method("forward").function())
          .graph()
          ->copy();
  torch::jit::Inline(*graph);
  int fake_quants = 0;
  Walk(graph->block(), [&](torch::jit::Node* n) {
    EXPECT_NE(std::string(n->kind().ns().toUnqualString()), "autoq")
        << n->kind().toQualString();
    if (n->kind() == c10::aten::fake_quantize_per_tensor_affine) {
      ++fake_quants;
    }
  });

  model.Train(false);
  at::Tensor want = model.Forward(x);
  at::Tensor got = loaded.forward({x}).toTensor();
  const double max_abs_diff = (got - want).abs().max().item<double>();
  const double argmax_agreement =
      100.0 * got.argmax(1).eq(want.argmax(1)).sum().item<int64_t>() /
      x.size(0);
  const double out_max = want.abs().max().item<double>();
  // Convolutions run channels-last in the model and contiguous in the
  // export: last-bit differences can flip a fake-quant rounding.
  const double differing =
      100.0 * (got - want).abs().gt(1e-6).sum().item<int64_t>() / want.numel();
  std::cout << absl::StrFormat(
      "[%s] max |torchscript - Forward| = %.3g (output max %.3g; %.3f%% of "
      "outputs differ), argmax agreement %.2f%% of %d, %d fake-quant nodes\n",
      label, max_abs_diff, out_max, differing, argmax_agreement, x.size(0),
      fake_quants);
  EXPECT_LE(max_abs_diff, 0.05 * out_max + 1e-6) << label;
  EXPECT_GE(argmax_agreement, 99.0) << label;

  // Payload size is the cost model's size.
  const QuantizedModelOptions& opts = model.options();
  const ModelAnalysis& analysis = model.analysis();
  EXPECT_EQ(
      static_cast<int64_t>(e.packed.size()),
      ComputeCost(analysis, opts.bits, opts.scheme.granularity).size_bytes)
      << label;

  Json manifest = Json::parse(e.manifest_json);
  EXPECT_EQ(manifest["format_version"], kExportFormatVersion);
  EXPECT_EQ(manifest["payload_bytes"].get<int64_t>(),
            static_cast<int64_t>(e.packed.size()));
  const std::vector<const LayerInfo*> genes = analysis.genes();
  EXPECT_EQ(manifest["layers"].size(), genes.size());
  int quantized_acts = 0;
  for (size_t i = 0; i < genes.size() && i < manifest["layers"].size(); ++i) {
    const LayerInfo& info = *genes[i];
    const Json& l = manifest["layers"][i];
    SCOPED_TRACE(label + " " + info.weight_path);
    EXPECT_EQ(l["wbits"].get<int>(), opts.bits[i].wbits);
    EXPECT_EQ(l["abits"].get<int>(), opts.bits[i].abits);
    const bool act_quantized = l["activation"]["quantized"].get<bool>();
    EXPECT_EQ(act_quantized, opts.bits[i].abits > 0);
    quantized_acts += act_quantized;

    // What the deployed layer's weights must dequantize to.
    at::Tensor shadow =
        AttrAt(model.module(), info.weight_path).toTensor().detach().cpu();
    at::Tensor s;
    std::vector<int64_t> channel_shape(shadow.dim(), 1);
    channel_shape[0] = shadow.size(0);
    torch::jit::Module bn;
    if (!info.bn_path.empty()) {
      bn = SubmoduleAt(model.module(), info.bn_path);
      s = (bn.attr("weight").toTensor() /
           (bn.attr("running_var").toTensor() + info.bn_eps).sqrt())
              .cpu();
    }
    const bool per_channel =
        opts.scheme.granularity == Granularity::kPerChannelSymmetric;
    const bool folded = l["bn_folded"].get<bool>();
    // Per-tensor weights trained without the fold keep a float BN.
    EXPECT_EQ(folded, s.defined() && (per_channel ||
                                      opts.scheme.bn_fold != BnFold::kNone));
    EXPECT_EQ(l.contains("batch_norm"), s.defined() && !folded);
    at::Tensor expected = folded ? shadow * s.reshape(channel_shape) : shadow;

    const int64_t count = l["weights"]["count"].get<int64_t>();
    ASSERT_EQ(count, info.num_weights);
    ASSERT_EQ(l["weights"]["bytes"].get<int64_t>(),
              (count * opts.bits[i].wbits + 7) / 8);
    std::vector<int64_t> codes =
        Unpack(e.packed, l["weights"]["offset"].get<int64_t>(), count,
               opts.bits[i].wbits, l["signed_codes"].get<bool>());
    std::vector<float> scales;
    for (int64_t k = 0; k < l["scales"]["count"].get<int64_t>(); ++k) {
      scales.push_back(
          ReadF32(e.packed, l["scales"]["offset"].get<int64_t>() + 4 * k));
    }
    int64_t zp = 0;
    if (!per_channel) {
      ASSERT_FALSE(l["zero_points"].is_null());
      zp = ReadI32(e.packed, l["zero_points"]["offset"].get<int64_t>());
    } else {
      EXPECT_TRUE(l["zero_points"].is_null());
    }
    const int64_t qmin = l["qmin"].get<int64_t>();
    const int64_t qmax = l["qmax"].get<int64_t>();
    const int64_t per_out = count / shadow.size(0);
    std::vector<float> deq(static_cast<size_t>(count));
    for (int64_t k = 0; k < count; ++k) {
      EXPECT_TRUE(codes[k] >= qmin && codes[k] <= qmax) << codes[k];
      const float scale = per_channel ? scales.at(k / per_out) : scales.at(0);
      deq[k] = static_cast<float>(codes[k] - zp) * scale;
    }
    at::Tensor got_w = at::from_blob(deq.data(), shadow.sizes()).clone();
    const double scale_ref = expected.abs().max().item<double>();
    EXPECT_LE((got_w - expected).abs().max().item<double>(),
              1e-5 * scale_ref + 1e-12);

    // int32 biases: the folded float bias, to half a step.
    if (!l["bias"].is_null()) {
      at::Tensor b = info.bias_path.empty()
                         ? at::zeros({shadow.size(0)})
                         : AttrAt(model.module(), info.bias_path)
                               .toTensor()
                               .detach()
                               .cpu();
      if (folded) {
        b = bn.attr("bias").toTensor().cpu() +
            (b - bn.attr("running_mean").toTensor().cpu()) * s;
      }
      const double in_scale = l["input"]["scale"].get<double>();
      for (int64_t c = 0; c < shadow.size(0); ++c) {
        const double step =
            (per_channel ? scales.at(c) : scales.at(0)) * in_scale;
        const double dq =
            ReadI32(e.packed, l["bias"]["offset"].get<int64_t>() + 4 * c) *
            step;
        EXPECT_LE(std::abs(dq - b[c].item<double>()), 0.5001 * step + 1e-7);
      }
    }
  }
  EXPECT_GE(fake_quants, quantized_acts) << label;
  if (python) ExpectLoadsInPython(e, x, got);
}

QatRecipe QuickRecipe(int epochs) {
  QatRecipe r;
  r.epochs = epochs;
  r.batch_size = 32;
  r.eval_batch_size = 64;
  r.calibration_batches = 2;
  r.seed = 3;
  return r;
}

ProgressOptions Quiet() {
  ProgressOptions p;
  p.out = nullptr;
  return p;
}

struct SchemeCase {
  Granularity granularity;
  BnFold fold;
  std::string label;
};

// Short, stable names in test listings (CTest names tests after them).
void PrintTo(const SchemeCase& c, std::ostream* os) { *os << c.label; }

std::string TestName(std::string label) {
  for (char& ch : label) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return label;
}

class BuiltinExportTest : public ::testing::TestWithParam<SchemeCase> {};

TEST_P(BuiltinExportTest, TorchScriptAndPackedMatchTheModel) {
  const SchemeCase& c = GetParam();
  at::manual_seed(21);
  torch::jit::Module m = qat::MakeBuiltinModel({});
  m.eval();
  auto a = AnalyzeModel(m, {1, 28, 28});
  ASSERT_TRUE(a.ok()) << a.status();
  RandomizeBatchNorms(m, *a);
  QuantizedModelOptions o;
  o.scheme.granularity = c.granularity;
  o.scheme.bn_fold = c.fold;
  o.bits = MixedBits(a->num_genes());
  auto q = QuantizedModel::Create(m, *a, o);
  ASSERT_TRUE(q.ok()) << q.status();
  TensorDataset data = RandomData({1, 28, 28}, 128, 10);
  auto r = RunQat(**q, data, data, nullptr, QuickRecipe(1), Quiet());
  ASSERT_TRUE(r.ok()) << r.status();
  auto e = ExportQuantizedModel(**q);
  ASSERT_TRUE(e.ok()) << e.status();
  at::Tensor x = at::rand({256, 1, 28, 28});
  CheckExport(**q, *e, x, "builtin " + c.label,
              /*python=*/c.granularity == Granularity::kPerTensorAffine &&
                  c.fold == BnFold::kApproximate);

  // Where each layer's input scale comes from: the model input for the
  // stem, the previous activation (through the mean) for the classifier.
  Json manifest = Json::parse(e->manifest_json);
  const Json& layers = manifest["layers"];
  EXPECT_FALSE(layers[0]["input"]["quantized"].get<bool>());
  EXPECT_EQ(layers[0]["input"]["scale"].get<double>(), 1.0);
  EXPECT_EQ(layers[1]["input"]["from"], "stem.conv");
  EXPECT_EQ(layers[1]["name"], "dw1.conv");
  const Json& fc = layers[layers.size() - 1];
  EXPECT_EQ(fc["name"], "fc");
  // Gene 10 (pw5) has abits 8 under MixedBits.
  EXPECT_EQ(fc["input"]["from"], "pw5.conv");
  EXPECT_EQ(fc["input"]["scale"].get<double>(),
            layers[10]["activation"]["scale"].get<double>());
  // Gene 3 (dw2) has float activations: pw2 reads a float input.
  EXPECT_FALSE(layers[3]["activation"]["quantized"].get<bool>());
  EXPECT_FALSE(layers[4]["input"]["quantized"].get<bool>());
}

INSTANTIATE_TEST_SUITE_P(
    Schemes, BuiltinExportTest,
    ::testing::Values(SchemeCase{Granularity::kPerTensorAffine,
                                 BnFold::kApproximate, "per-tensor"},
                      SchemeCase{Granularity::kPerTensorAffine, BnFold::kExact,
                                 "per-tensor exact fold"},
                      SchemeCase{Granularity::kPerTensorAffine, BnFold::kNone,
                                 "per-tensor no fold"},
                      SchemeCase{Granularity::kPerChannelSymmetric,
                                 BnFold::kApproximate, "per-channel"}),
    [](const ::testing::TestParamInfo<SchemeCase>& info) {
      return TestName(info.param.label);
    });

// A torchvision MobileNet v2 (scripted: inverted residuals inside prim::If
// branches, ReLU6 as hardtanh, residual adds).
class FixtureExportTest : public ::testing::TestWithParam<SchemeCase> {};

TEST_P(FixtureExportTest, MobileNetV2MatchesTheModel) {
  std::string path = testing::Fixture("mobilenet_v2_scripted.pt");
  AUTOQ_REQUIRE_FIXTURE(path);
  at::manual_seed(22);
  auto m = LoadModel(path);
  ASSERT_TRUE(m.ok()) << m.status();
  m->eval();
  const std::vector<int64_t> shape = {3, 64, 64};
  auto a = AnalyzeModel(*m, shape);
  ASSERT_TRUE(a.ok()) << a.status();
  RandomizeBatchNorms(*m, *a);
  QuantizedModelOptions o;
  o.scheme.granularity = GetParam().granularity;
  o.scheme.bn_fold = GetParam().fold;
  o.bits = MixedBits(a->num_genes());
  // The last conv's activation feeds the classifier: quantize it.
  o.bits[a->num_genes() - 2].abits = 8;
  auto q = QuantizedModel::Create(*m, *a, o);
  ASSERT_TRUE(q.ok()) << q.status();
  TensorDataset data = RandomData(shape, 32, 1000);
  // Per-tensor fine-tunes one epoch (BN statistics move); per-channel only
  // calibrates.
  const int epochs =
      GetParam().granularity == Granularity::kPerTensorAffine ? 1 : 0;
  auto r = RunQat(**q, data, data, nullptr, QuickRecipe(epochs), Quiet());
  ASSERT_TRUE(r.ok()) << r.status();
  auto e = ExportQuantizedModel(**q);
  ASSERT_TRUE(e.ok()) << e.status();
  at::Tensor x = at::rand({100, 3, 64, 64});
  CheckExport(
      **q, *e, x, "mobilenet_v2 " + GetParam().label,
      /*python=*/GetParam().granularity == Granularity::kPerChannelSymmetric);
  Json manifest = Json::parse(e->manifest_json);
  const Json& cls = manifest["layers"][manifest["layers"].size() - 1];
  EXPECT_EQ(cls["name"], "classifier.1");
  // Through adaptive_avg_pool2d, flatten and dropout.
  EXPECT_EQ(cls["input"]["from"], "features.18.0");
}

INSTANTIATE_TEST_SUITE_P(
    Schemes, FixtureExportTest,
    ::testing::Values(SchemeCase{Granularity::kPerTensorAffine,
                                 BnFold::kApproximate, "per-tensor"},
                      SchemeCase{Granularity::kPerChannelSymmetric,
                                 BnFold::kApproximate, "per-channel"}),
    [](const ::testing::TestParamInfo<SchemeCase>& info) {
      return TestName(info.param.label);
    });

TEST(ExportTest, UncalibratedActivationsAreAnError) {
  torch::jit::Module m = qat::MakeBuiltinModel({});
  m.eval();
  auto a = AnalyzeModel(m, {1, 28, 28});
  ASSERT_TRUE(a.ok());
  QuantizedModelOptions o;
  o.bits = MixedBits(a->num_genes());
  auto q = QuantizedModel::Create(m, *a, o);
  ASSERT_TRUE(q.ok());
  auto e = ExportQuantizedModel(**q);
  EXPECT_EQ(e.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(e.status().message(), "calibrated"))
      << e.status();

  // Float activations need no calibration.
  for (LayerBits& b : o.bits) b.abits = 0;
  auto qf = QuantizedModel::Create(m, *a, o);
  ASSERT_TRUE(qf.ok());
  auto ef = ExportQuantizedModel(**qf);
  ASSERT_TRUE(ef.ok()) << ef.status();
  CheckExport(**qf, *ef, at::rand({32, 1, 28, 28}), "builtin float acts");
}

TEST(ExportTest, FloatModelIsRejected) {
  torch::jit::Module m = qat::MakeBuiltinModel({});
  auto a = AnalyzeModel(m, {1, 28, 28});
  ASSERT_TRUE(a.ok());
  auto q = QuantizedModel::Create(m, *a, {});
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(ExportQuantizedModel(**q).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace autoq::qat
