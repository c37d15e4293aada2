#include "qat/builtin_model.h"

#include <ATen/ATen.h>

#include <cmath>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace autoq::qat {
namespace {

using torch::jit::Module;

class Builder {
 public:
  Builder() : cu_(std::make_shared<torch::jit::CompilationUnit>()) {}

  Module NewModule(const std::string& type) {
    Module m(c10::QualifiedName(absl::StrCat("__torch__.autoq.", type, "_",
                                             counter_++)),
             cu_, /*shouldMangle=*/true);
    m.register_attribute("training", c10::BoolType::get(), true);
    return m;
  }

  Module Conv(int64_t cin, int64_t cout, int64_t k, int64_t stride,
              int64_t groups) {
    Module m = NewModule("Conv2d");
    const double fan_in = static_cast<double>(cin / groups * k * k);
    m.register_parameter(
        "weight", at::randn({cout, cin / groups, k, k}) * std::sqrt(2.0 / fan_in),
        false);
    const int64_t pad = k / 2;
    m.define(absl::StrFormat(R"(
def forward(self, x):
    return torch.conv2d(x, self.weight, None, [%d, %d], [%d, %d], [1, 1], %d)
)", stride, stride, pad, pad, groups));
    return m;
  }

  Module BatchNorm(int64_t c) {
    Module m = NewModule("BatchNorm2d");
    m.register_parameter("weight", at::ones({c}), false);
    m.register_parameter("bias", at::zeros({c}), false);
    m.register_buffer("running_mean", at::zeros({c}));
    m.register_buffer("running_var", at::ones({c}));
    m.define(R"(
def forward(self, x):
    return torch.batch_norm(x, self.weight, self.bias, self.running_mean,
                            self.running_var, self.training, 0.1, 1e-05, False)
)");
    return m;
  }

  // conv -> BN -> ReLU, as submodules "conv" and "bn".
  Module ConvBnRelu(int64_t cin, int64_t cout, int64_t k, int64_t stride,
                    int64_t groups) {
    Module m = NewModule("ConvBnReLU");
    m.register_module("conv", Conv(cin, cout, k, stride, groups));
    m.register_module("bn", BatchNorm(cout));
    m.define(R"(
def forward(self, x):
    return torch.relu(self.bn.forward(self.conv.forward(x)))
)");
    return m;
  }

  Module Linear(int64_t in, int64_t out) {
    Module m = NewModule("Linear");
    const double bound = 1.0 / std::sqrt(static_cast<double>(in));
    m.register_parameter("weight", at::rand({out, in}) * 2 * bound - bound,
                         false);
    m.register_parameter("bias", at::zeros({out}), false);
    m.define(R"(
def forward(self, x):
    return torch.linear(x, self.weight, self.bias)
)");
    return m;
  }

 private:
  std::shared_ptr<torch::jit::CompilationUnit> cu_;
  int counter_ = 0;
};

}  // namespace

Module MakeBuiltinModel(const BuiltinModelOptions& options) {
  at::manual_seed(options.seed);
  Builder b;
  auto ch = [&](int64_t c) {
    return std::max<int64_t>(8, static_cast<int64_t>(c * options.width));
  };
  Module net = b.NewModule("BuiltinNet");
  // Full resolution for the stem only; the blocks work at 14x14 and 7x7,
  // where the compute goes into width.
  net.register_module("stem", b.ConvBnRelu(options.in_channels, ch(32), 3, 1, 1));
  struct Block {
    int64_t cin, cout, stride;
  };
  const Block blocks[] = {{32, 64, 2}, {64, 128, 1}, {128, 128, 2},
                          {128, 256, 1}, {256, 256, 1}};
  std::string body;
  int i = 0;
  for (const Block& blk : blocks) {
    ++i;
    const int64_t cin = ch(blk.cin), cout = ch(blk.cout);
    net.register_module(absl::StrCat("dw", i),
                        b.ConvBnRelu(cin, cin, 3, blk.stride, cin));
    net.register_module(absl::StrCat("pw", i), b.ConvBnRelu(cin, cout, 1, 1, 1));
    absl::StrAppend(&body, "    x = self.pw", i, ".forward(self.dw", i, ".forward(x))\n");
  }
  net.register_module("fc", b.Linear(ch(256), options.num_classes));
  net.define(absl::StrCat(R"(
def forward(self, x):
    x = self.stem.forward(x)
)", body, R"(    x = torch.mean(x, [2, 3])
    return self.fc.forward(x)
)"));
  return net;
}

}  // namespace autoq::qat
