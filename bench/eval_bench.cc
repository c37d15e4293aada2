// Evaluation throughput of a quantized model by batch size: what the
// validation and test passes of every task cost (qat::PredictLogits, the
// path RunQat scores with). Prints images/s per eval batch size, the
// median of --repeats windows over the same images.
//
//   autoq_bench_eval --model M.pt [--threads 2] [--images 4096]
//                    [--batches 64,128,256,512] [--repeats 3]
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "common/flags.h"
#include "qat/model_analysis.h"
#include "qat/process_tuning.h"
#include "qat/quantized_model.h"
#include "qat/trainer.h"

int main(int argc, char** argv) {
  using autoq::Flags;
  autoq::FlagSpec spec{{"model", "threads", "images", "batches", "repeats"},
                       {}};
  absl::StatusOr<Flags> flags = Flags::Parse(argc, argv, 1, spec);
  if (!flags.ok() || !flags->Has("model")) {
    std::fprintf(stderr,
                 "usage: autoq_bench_eval --model M.pt [--threads 2] "
                 "[--images 4096] [--batches 64,128,256,512] [--repeats 3]\n");
    return 2;
  }
  autoq::qat::TuneProcessForTraining();
  at::set_num_threads(
      static_cast<int>(flags->GetInt("threads", 2).value_or(2)));
  const int64_t images = flags->GetInt("images", 4096).value_or(4096);
  const int repeats = static_cast<int>(flags->GetInt("repeats", 3).value_or(3));
  std::vector<int64_t> batches;
  for (absl::string_view s :
       absl::StrSplit(flags->Get("batches", "64,128,256,512"), ',')) {
    int64_t b = 0;
    if (absl::SimpleAtoi(s, &b) && b > 0) batches.push_back(b);
  }
  auto module = autoq::qat::LoadModel(flags->Get("model"));
  if (!module.ok()) {
    std::fprintf(stderr, "%s\n",
                 std::string(module.status().message()).c_str());
    return 1;
  }
  auto analysis = autoq::qat::AnalyzeModel(*module, {1, 28, 28});
  if (!analysis.ok()) return 1;
  autoq::qat::QuantizedModelOptions options;
  options.scheme.granularity = autoq::qat::Granularity::kPerChannelSymmetric;
  options.bits.assign(static_cast<size_t>(analysis->num_genes()), {8, 8});
  auto model = autoq::qat::QuantizedModel::Create(*module, *analysis, options);
  if (!model.ok()) return 1;
  at::manual_seed(1);
  autoq::qat::TensorDataset data;
  data.images = at::randint(0, 256, {images, 1, 28, 28}, at::kByte);
  data.labels = at::randint(0, 10, {images}, at::kLong);
  data.num_classes = 10;
  // Observed ranges first, as after a fine-tune.
  (*model)->SetObserveActivations(true);
  (void)autoq::qat::PredictLogits(**model, data, 256);
  (*model)->SetObserveActivations(false);
  std::printf("eval images/s (%lld images, %d threads, median of %d)\n",
              static_cast<long long>(images), at::get_num_threads(), repeats);
  for (int64_t b : batches) {
    (void)autoq::qat::PredictLogits(**model, data, b);  // warm-up
    std::vector<double> rates;
    for (int r = 0; r < repeats; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      (void)autoq::qat::PredictLogits(**model, data, b);
      const double s =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
              .count();
      rates.push_back(images / s);
    }
    std::sort(rates.begin(), rates.end());
    std::printf("  batch %4lld: %8.1f\n", static_cast<long long>(b),
                rates[rates.size() / 2]);
  }
  return 0;
}
