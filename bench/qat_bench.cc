// QAT training throughput of AutoQ on one model, against its own float step
// and a plain LibTorch float loop, in one process on the same batches.
// bench/run_qat_bench.sh runs it beside PyTorch's own QAT (the peer) and
// prints the ratios; see bench/README.md.
//
//   autoq_bench_qat --model M.pt [--threads 2] [--batch 128] [--steps 40]
//                   [--warmup 8] [--repeats 3] [--data random|SPEC]
//                   [--device cpu|cuda:N]
//
// --data takes `autoq eval`'s dataset specs (fashion-mnist, idx:DIR, ...);
// the batches are moved to --device before timing. On a GPU each window
// ends with a synchronize, so images/s counts finished work.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>
#include <torch/cuda.h>
#include <torch/optim/sgd.h>

#include <algorithm>
#include <cstdlib>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/flags.h"
#include "evaluator/dataset.h"
#include "qat/device.h"
#include "qat/model_analysis.h"
#include "qat/process_tuning.h"
#include "qat/quantized_model.h"
#include "qat/tensor_dataset.h"

namespace {

using autoq::Flags;
using Clock = std::chrono::steady_clock;

struct Batches {
  std::vector<at::Tensor> x, y;
};

Batches MakeBatches(const std::string& data, int64_t batch, int n,
                    c10::Device device) {
  Batches b;
  if (data != "random") {
    auto spec = autoq::evaluator::ParseDataSpec(data);
    if (!spec.ok()) {
      std::fprintf(stderr, "%s\n", std::string(spec.status().message()).c_str());
      std::exit(1);
    }
    autoq::evaluator::SplitOptions split;
    split.val_size = 0;
    auto d = autoq::evaluator::LoadDataset(*spec, split);
    if (!d.ok()) {
      std::fprintf(stderr, "%s\n", std::string(d.status().message()).c_str());
      std::exit(1);
    }
    for (int i = 0; i < n; ++i) {
      int64_t s = (i * batch) % (d->train.size() - batch);
      b.x.push_back(autoq::qat::SliceImages(d->train, s, s + batch));
      b.y.push_back(d->train.labels.slice(0, s, s + batch));
    }
  } else {
    at::manual_seed(1234);
    for (int i = 0; i < n; ++i) {
      b.x.push_back(at::rand({batch, 1, 28, 28}));
      b.y.push_back(at::randint(0, 10, {batch}, at::kLong));
    }
  }
  for (size_t i = 0; i < b.x.size(); ++i) {
    b.x[i] = b.x[i].to(device);
    b.y[i] = b.y[i].to(device);
  }
  return b;
}

// Waits for the GPU's queued work (no-op on the CPU).
void Sync(c10::Device device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
}

// One timed window: images/s over `steps` steps after `warmup`.
double Window(const std::function<void(int)>& step, int warmup, int steps,
              int64_t batch, c10::Device device) {
  for (int i = 0; i < warmup; ++i) step(i);
  Sync(device);
  auto t0 = Clock::now();
  for (int i = 0; i < steps; ++i) step(warmup + i);
  Sync(device);
  double s = std::chrono::duration<double>(Clock::now() - t0).count();
  return steps * batch / s;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  autoq::FlagSpec spec{
      {"model", "threads", "batch", "steps", "warmup", "repeats", "data",
       "device"},
      {}};
  auto flags = Flags::Parse(argc, argv, 1, spec);
  if (!flags.ok() || !flags->Has("model")) {
    std::fprintf(stderr, "usage: autoq_bench_qat --model M.pt [--threads N] "
                         "[--batch B] [--steps S] [--warmup W] [--repeats R] "
                         "[--data random|SPEC] [--device cpu|cuda:N]\n");
    return 2;
  }
  const std::string device_name = flags->Get("device", "cpu");
  auto parsed_device = autoq::qat::ParseDevice(device_name);
  if (!parsed_device.ok()) {
    std::fprintf(stderr, "--%s\n",
                 std::string(parsed_device.status().message()).c_str());
    return 2;
  }
  const c10::Device device = *parsed_device;
  const int threads = static_cast<int>(flags->GetInt("threads", 2).value_or(2));
  const int64_t batch = flags->GetInt("batch", 128).value_or(128);
  const int steps = static_cast<int>(flags->GetInt("steps", 40).value_or(40));
  const int warmup = static_cast<int>(flags->GetInt("warmup", 8).value_or(8));
  const int repeats = static_cast<int>(flags->GetInt("repeats", 3).value_or(3));
  at::set_num_threads(threads);
  autoq::qat::TuneProcessForTraining();

  auto module = autoq::qat::LoadModel(flags->Get("model"));
  if (!module.ok()) {
    std::fprintf(stderr, "%s\n", std::string(module.status().message()).c_str());
    return 1;
  }
  auto analysis = autoq::qat::AnalyzeModel(*module, {1, 28, 28});
  if (!analysis.ok()) {
    std::fprintf(stderr, "%s\n", std::string(analysis.status().message()).c_str());
    return 1;
  }
  const int genes = analysis->num_genes();
  Batches data = MakeBatches(flags->Get("data", "random"), batch, 64, device);
  auto batch_at = [&](int i) { return static_cast<size_t>(i) % data.x.size(); };

  // Variant -> a step function over its own copy of the model.
  struct Variant {
    std::string name;
    std::function<void(int)> step;
    std::vector<double> rates;
  };
  std::vector<Variant> variants;
  std::vector<std::shared_ptr<void>> keep_alive;

  // Plain LibTorch: module.forward, SGD over its parameters.
  {
    std::shared_ptr<torch::jit::Module> m;
    {
      at::NoGradGuard no_grad;
      m = std::make_shared<torch::jit::Module>(module->deepcopy());
    }
    m->to(device);
    m->train();
    std::vector<at::Tensor> params;
    for (at::Tensor p : m->parameters()) params.push_back(p.set_requires_grad(true));
    auto opt = std::make_shared<torch::optim::SGD>(
        params, torch::optim::SGDOptions(0.01).momentum(0.9));
    keep_alive.push_back(m);
    keep_alive.push_back(opt);
    variants.push_back({"libtorch_float", [&, m, opt](int i) {
                          opt->zero_grad();
                          at::Tensor out =
                              m->forward({data.x[batch_at(i)]}).toTensor();
                          at::cross_entropy_loss(out, data.y[batch_at(i)]).backward();
                          opt->step();
                        }, {}});
  }
  auto add_autoq = [&](const std::string& name,
                       autoq::qat::QuantizedModelOptions o) {
    o.device = device;
    auto q = autoq::qat::QuantizedModel::Create(*module, *analysis, o);
    if (!q.ok()) {
      std::fprintf(stderr, "%s\n", std::string(q.status().message()).c_str());
      std::exit(1);
    }
    std::shared_ptr<autoq::qat::QuantizedModel> model = std::move(*q);
    model->Train(true);
    model->SetObserveActivations(true);
    model->SetQuantizeActivations(true);
    auto opt = std::make_shared<torch::optim::SGD>(
        model->Parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
    keep_alive.push_back(model);
    keep_alive.push_back(opt);
    variants.push_back({name, [&, model, opt](int i) {
                          opt->zero_grad();
                          at::Tensor out = model->Forward(data.x[batch_at(i)]);
                          at::cross_entropy_loss(out, data.y[batch_at(i)]).backward();
                          model->PropagateGradients();
                          opt->step();
                        }, {}});
  };
  autoq::qat::QuantizedModelOptions float_opts;
  add_autoq("autoq_float", float_opts);
  autoq::qat::QuantizedModelOptions pc;
  pc.scheme.granularity = autoq::qat::Granularity::kPerChannelSymmetric;
  pc.bits.assign(genes, {8, 8});
  add_autoq("autoq_qat_per_channel", pc);
  autoq::qat::QuantizedModelOptions pt;
  pt.bits.assign(genes, {8, 8});
  add_autoq("autoq_qat_per_tensor", pt);
  autoq::qat::QuantizedModelOptions wonly;
  wonly.scheme.granularity = autoq::qat::Granularity::kPerChannelSymmetric;
  wonly.bits.assign(genes, {8, 0});
  add_autoq("autoq_qat_weights_only", wonly);
  autoq::qat::QuantizedModelOptions mixed;
  mixed.scheme.granularity = autoq::qat::Granularity::kPerChannelSymmetric;
  mixed.bits.assign(genes, {4, 4});
  add_autoq("autoq_qat_per_channel_w4a4", mixed);

  // Variants take turns so machine noise hits them alike.
  for (int r = 0; r < repeats; ++r) {
    for (Variant& v : variants) {
      v.rates.push_back(
          Window(v.step, r == 0 ? warmup : 2, steps, batch, device));
    }
  }
  std::vector<std::string> fields;
  for (Variant& v : variants) {
    fields.push_back(absl::StrCat("\"", v.name, "\":", Median(v.rates)));
    std::fprintf(stderr, "%-28s %8.1f images/s  (windows: %s)\n", v.name.c_str(),
                 Median(v.rates), absl::StrJoin(v.rates, ", ").c_str());
  }
  std::printf("{%s,\"threads\":%d,\"batch\":%lld,\"device\":\"%s\"}\n",
              absl::StrJoin(fields, ",").c_str(), threads,
              static_cast<long long>(batch), device.str().c_str());
  return 0;
}
