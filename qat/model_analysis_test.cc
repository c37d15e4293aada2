#include "qat/model_analysis.h"

#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <torch/csrc/jit/passes/inliner.h>

#include "qat/builtin_model.h"
#include "qat/op_allowlist.h"
#include "tests/testing.h"

namespace autoq::qat {
namespace {

using autoq::testing::Fixture;

nlohmann::json Manifest() {
  std::ifstream in(Fixture("manifest.json"));
  if (!in) return nlohmann::json::object();
  return nlohmann::json::parse(in)["models"];
}

// Every valid fixture model: layer and fold counts, activations, classes,
// as written down by hand in the generator's manifest.
TEST(ModelAnalysisTest, FixtureModelsMatchManifest) {
  AUTOQ_REQUIRE_FIXTURE(Fixture("manifest.json"));
  int checked = 0;
  const nlohmann::json manifest = Manifest();
  for (auto& [name, m] : manifest.items()) {
    if (!m["valid"].get<bool>() || m["layers"].get<int>() == 0) continue;
    SCOPED_TRACE(name);
    auto module = LoadModel(Fixture(name));
    ASSERT_TRUE(module.ok()) << module.status();
    auto a = AnalyzeModel(*module, m["input_shape"].get<std::vector<int64_t>>());
    ASSERT_TRUE(a.ok()) << a.status();
    EXPECT_EQ(static_cast<int>(a->layers.size()), m["layers"].get<int>());
    int folds = 0;
    for (const LayerInfo& l : a->layers) folds += l.bn_path.empty() ? 0 : 1;
    EXPECT_EQ(folds, m["bn_folds"].get<int>());
    EXPECT_EQ(a->num_classes, m["num_classes"].get<int64_t>());
    if (m["activations"].is_array()) {
      ASSERT_EQ(m["activations"].size(), a->layers.size());
      for (size_t i = 0; i < a->layers.size(); ++i) {
        std::string want = m["activations"][i].is_null()
                               ? ""
                               : m["activations"][i].get<std::string>();
        EXPECT_EQ(a->layers[i].activation, want) << "layer " << i;
      }
    }
    // Every layer that ran has MACs; weights are parameters (no masking).
    for (const LayerInfo& l : a->layers) {
      EXPECT_FALSE(l.masked) << l.weight_path;
      EXPECT_GT(l.num_weights, 0);
    }
    ++checked;
  }
  EXPECT_GE(checked, 10);
}

// Scripted and traced torchvision models give the same layers and MACs.
TEST(ModelAnalysisTest, ScriptedAndTracedAgree) {
  for (const char* net : {"mobilenet_v2", "resnet18"}) {
    std::string scripted = Fixture(std::string(net) + "_scripted.pt");
    std::string traced = Fixture(std::string(net) + "_traced.pt");
    AUTOQ_REQUIRE_FIXTURE(scripted);
    auto a = AnalyzeModel(*LoadModel(scripted), {3, 224, 224});
    auto b = AnalyzeModel(*LoadModel(traced), {3, 224, 224});
    ASSERT_TRUE(a.ok() && b.ok());
    ASSERT_EQ(a->layers.size(), b->layers.size());
    for (size_t i = 0; i < a->layers.size(); ++i) {
      EXPECT_EQ(a->layers[i].weight_path, b->layers[i].weight_path);
      EXPECT_EQ(a->layers[i].kind, b->layers[i].kind);
      EXPECT_EQ(a->layers[i].macs, b->layers[i].macs) << a->layers[i].weight_path;
      EXPECT_EQ(a->layers[i].bn_path, b->layers[i].bn_path);
    }
    EXPECT_EQ(a->total_macs, b->total_macs);
  }
}

TEST(ModelAnalysisTest, MobileNetV2KindsAndMacs) {
  std::string path = Fixture("mobilenet_v2_scripted.pt");
  AUTOQ_REQUIRE_FIXTURE(path);
  auto a = AnalyzeModel(*LoadModel(path), {3, 224, 224});
  ASSERT_TRUE(a.ok()) << a.status();
  int dw = 0, pw = 0, conv = 0, linear = 0;
  for (const LayerInfo& l : a->layers) {
    switch (l.kind) {
      case LayerKind::kDepthwise: ++dw; break;
      case LayerKind::kPointwise: ++pw; break;
      case LayerKind::kConv: ++conv; break;
      case LayerKind::kLinear: ++linear; break;
    }
  }
  EXPECT_EQ(dw, 17);
  EXPECT_EQ(pw, 34);
  EXPECT_EQ(conv, 1);
  EXPECT_EQ(linear, 1);
  // The stem: 32 x 112 x 112 outputs, 27 MACs each.
  EXPECT_EQ(a->layers[0].macs, 32LL * 112 * 112 * 27);
  // MobileNet v2 (1.0, 224) is ~300 M MACs.
  EXPECT_NEAR(a->total_macs / 1e6, 300.8, 1.0);
  EXPECT_EQ(a->layers[0].activation, "hardtanh");
}

TEST(ModelAnalysisTest, BuiltinModel) {
  auto a = AnalyzeModel(qat::MakeBuiltinModel(), {1, 28, 28});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->layers.size(), 12u);
  EXPECT_EQ(a->num_genes(), 12);
  int folds = 0;
  for (const LayerInfo& l : a->layers) folds += l.bn_path.empty() ? 0 : 1;
  EXPECT_EQ(folds, 11);
  EXPECT_EQ(a->layers[1].kind, LayerKind::kDepthwise);
  EXPECT_EQ(a->layers[2].kind, LayerKind::kPointwise);
  EXPECT_EQ(a->layers[11].kind, LayerKind::kLinear);
  EXPECT_EQ(a->layers[0].weight_path, "stem.conv.weight");
  EXPECT_EQ(a->layers[0].bn_path, "stem.bn");
  EXPECT_EQ(a->layers[0].activation, "relu");
  EXPECT_EQ(a->num_classes, 10);
}

TEST(ModelAnalysisTest, BadModelsGetClearErrors) {
  auto missing = LoadModel("/nonexistent/model.pt");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  AUTOQ_REQUIRE_FIXTURE(Fixture("not_torchscript.pt"));
  auto garbage = LoadModel(Fixture("not_torchscript.pt"));
  EXPECT_EQ(garbage.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(garbage.status().message().find("not a readable TorchScript"),
            std::string::npos);
  auto truncated = LoadModel(Fixture("truncated.pt"));
  EXPECT_EQ(truncated.status().code(), absl::StatusCode::kInvalidArgument);

  auto no_layers = LoadModel(Fixture("no_layers.pt"));
  ASSERT_TRUE(no_layers.ok());
  auto a = AnalyzeModel(*no_layers, {1, 28, 28});
  EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(a.status().message().find("no quantizable layer"), std::string::npos);

  auto wrong_shape = AnalyzeModel(qat::MakeBuiltinModel(), {3, 5, 5});
  EXPECT_EQ(wrong_shape.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(wrong_shape.status().message().find("rejects input shape [3,5,5]"),
            std::string::npos)
      << wrong_shape.status();
}

// A model is code: one whose forward reaches the file system is refused,
// naming the op and where it is called, before anything of it runs.
TEST(ModelAnalysisTest, ModelsCallingNonTensorOpsAreRefused) {
  AUTOQ_REQUIRE_FIXTURE(Fixture("reads_file.pt"));
  absl::StatusOr<torch::jit::Module> m = LoadModel(Fixture("reads_file.pt"));
  ASSERT_TRUE(m.ok()) << m.status();
  absl::StatusOr<ModelAnalysis> a = AnalyzeModel(*m, {1, 28, 28});
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string msg(a.status().message());
  EXPECT_NE(msg.find("aten::from_file"), std::string::npos) << msg;
  EXPECT_NE(msg.find("gen_models.py:"), std::string::npos) << msg;
  EXPECT_FALSE(IsAllowedOp("aten::from_file"));
  EXPECT_FALSE(IsAllowedOp("aten::save"));
  EXPECT_FALSE(IsAllowedOp("prim::PythonOp"));
  EXPECT_FALSE(IsAllowedOp("prim::Print"));
  EXPECT_FALSE(IsAllowedOp("aten::empty"));
  EXPECT_TRUE(IsAllowedOp("aten::conv2d"));
  EXPECT_TRUE(IsAllowedOp("prim::If"));
}

// Every op of every test model (torchvision's scripted and traced
// networks included) is on the list.
TEST(ModelAnalysisTest, EveryFixtureModelUsesAllowedOpsOnly) {
  AUTOQ_REQUIRE_FIXTURE(Fixture("manifest.json"));
  const nlohmann::json manifest = Manifest();
  for (const auto& [name, e] : manifest.items()) {
    if (!e["valid"].get<bool>()) continue;
    absl::StatusOr<torch::jit::Module> m = LoadModel(Fixture(name));
    ASSERT_TRUE(m.ok()) << name << ": " << m.status();
    std::shared_ptr<torch::jit::Graph> g =
        m->get_method("forward").graph()->copy();
    torch::jit::Inline(*g);
    EXPECT_TRUE(CheckOpsAllowed(*g).ok()) << name << ": " << CheckOpsAllowed(*g);
  }
  EXPECT_TRUE(AnalyzeModel(MakeBuiltinModel(), {1, 28, 28}).ok());
  // AutoQ's own exports (fake-quant ops) are models users load again.
  EXPECT_TRUE(IsAllowedOp("aten::fake_quantize_per_tensor_affine"));
  EXPECT_TRUE(IsAllowedOp("aten::fake_quantize_per_channel_affine"));
}

TEST(ModelAnalysisTest, ParseShape) {
  EXPECT_EQ(*ParseShape("1,28,28"), (std::vector<int64_t>{1, 28, 28}));
  EXPECT_FALSE(ParseShape("1,x,28").ok());
  EXPECT_FALSE(ParseShape("0,28,28").ok());
  EXPECT_FALSE(ParseShape("").ok());
}

}  // namespace
}  // namespace autoq::qat
