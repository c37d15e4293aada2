// Image folders: decode throughput, and QAT training throughput from a
// folder against the same images as a tensor file would give them.
//
// Writes its own images into a temporary folder (10 classes):
//  * 256 x 256 JPEG photos-like images (smooth color fields with noise),
//    fitted to 224 x 224 (resize + center crop), as ImageNet-style data;
//  * 32 x 32 PNG images fitted to 32 x 32, as CIFAR-style data.
// Prints decoded images/s for each (ReadImageFolder, all cores), then one
// QAT epoch of the built-in CNN (3 channels, 32 x 32) on the folder's
// images and on a copy of the same pixels made the way a tensor file loads
// (a fresh contiguous uint8 tensor), images/s of each (after a warm-up
// epoch, the better of two alternating epochs) and their ratio.
//
//   autoq_bench_folder [--images224 400] [--images32 5000] [--threads 2]
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/flags.h"
#include "evaluator/image_folder.h"
#include "evaluator/test_images.h"
#include "qat/builtin_model.h"
#include "qat/model_analysis.h"
#include "qat/process_tuning.h"
#include "qat/quantized_model.h"
#include "qat/trainer.h"

namespace {

namespace fs = std::filesystem;
namespace test_images = autoq::evaluator::test_images;
using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// A smooth color field with noise, so the JPEG is not trivially small.
std::vector<uint8_t> FakePhoto(int size, std::mt19937& rng) {
  std::uniform_real_distribution<double> u(0, 1);
  const double a = u(rng), b = u(rng), c = u(rng);
  std::normal_distribution<double> noise(0, 12);
  std::vector<uint8_t> p(static_cast<size_t>(size * size * 3));
  for (int y = 0; y < size; ++y) {
    for (int x = 0; x < size; ++x) {
      for (int k = 0; k < 3; ++k) {
        const double v =
            127 + 100 * std::sin(a * x / 9.0 + b * y / 7.0 + c * k * 2.0) +
            noise(rng);
        p[static_cast<size_t>((y * size + x) * 3 + k)] =
            static_cast<uint8_t>(std::clamp(v, 0.0, 255.0));
      }
    }
  }
  return p;
}

// Writes `n` images over 10 classes under `root`.
void WriteFolder(const fs::path& root, int n, int size, bool jpeg) {
  std::mt19937 rng(7);
  for (int i = 0; i < n; ++i) {
    const fs::path dir = root / absl::StrCat("class", i % 10);
    fs::create_directories(dir);
    const std::vector<uint8_t> p = FakePhoto(size, rng);
    if (jpeg) {
      (void)autoq::WriteFileAtomic(
          (dir / absl::StrCat(i, ".jpg")).string(),
          test_images::EncodeJpeg(p.data(), size, size, 3, /*quality=*/90));
    } else {
      test_images::WritePng((dir / absl::StrCat(i, ".png")).string(), p.data(),
                            size, size, 3);
    }
  }
}

// Decoded images/s reading `root` at `size`.
double DecodeRate(const fs::path& root, int size, int threads, int n,
                  autoq::qat::TensorDataset* out) {
  autoq::evaluator::ImageFolderOptions o;
  o.channels = 3;
  o.height = o.width = size;
  o.threads = threads;
  const auto t0 = Clock::now();
  auto d = autoq::evaluator::ReadImageFolder(root.string(), o);
  const double s = Since(t0);
  if (!d.ok()) {
    std::fprintf(stderr, "%s\n", std::string(d.status().message()).c_str());
    std::exit(1);
  }
  if (out != nullptr) *out = d->data;
  return n / s;
}

// Images/s of one QAT epoch of the built-in CNN (3 x 32 x 32) on `data`.
double TrainRate(const autoq::qat::TensorDataset& data) {
  torch::jit::Module m = autoq::qat::MakeBuiltinModel({3, 10, 1.0, 1});
  auto a = autoq::qat::AnalyzeModel(m, {3, 32, 32});
  autoq::qat::QuantizedModelOptions o;
  o.scheme.granularity = autoq::qat::Granularity::kPerChannelSymmetric;
  o.bits.assign(static_cast<size_t>(a->num_genes()), {4, 8});
  auto q = autoq::qat::QuantizedModel::Create(m, *a, o);
  autoq::qat::QatRecipe r;
  r.epochs = 1;
  r.batch_size = 128;
  autoq::qat::ProgressOptions quiet;
  quiet.out = nullptr;
  auto res = autoq::qat::RunQat(**q, data, autoq::qat::Head(data, 256), nullptr,
                                r, quiet);
  if (!res.ok()) {
    std::fprintf(stderr, "%s\n", std::string(res.status().message()).c_str());
    std::exit(1);
  }
  return res->curve.back().images_per_s;
}

}  // namespace

int main(int argc, char** argv) {
  autoq::FlagSpec spec{{"images224", "images32", "threads"}, {}};
  absl::StatusOr<autoq::Flags> flags = autoq::Flags::Parse(argc, argv, 1, spec);
  if (!flags.ok()) {
    std::fprintf(stderr,
                 "usage: autoq_bench_folder [--images224 400] [--images32 "
                 "5000] [--threads 2]\n");
    return 2;
  }
  autoq::qat::TuneProcessForTraining();
  const int n224 =
      static_cast<int>(flags->GetInt("images224", 400).value_or(400));
  const int n32 =
      static_cast<int>(flags->GetInt("images32", 5000).value_or(5000));
  const int threads = static_cast<int>(flags->GetInt("threads", 2).value_or(2));
  at::set_num_threads(threads);
  const fs::path root = fs::temp_directory_path() /
                        absl::StrCat("autoq-folder-bench-", ::getpid());
  WriteFolder(root / "jpeg256", n224, 256, /*jpeg=*/true);
  WriteFolder(root / "png32", n32, 32, /*jpeg=*/false);
  std::printf("image folders, %d threads\n", threads);
  std::printf("  decode 256x256 JPEG -> 224x224: %8.1f images/s (%d images)\n",
              DecodeRate(root / "jpeg256", 224, threads, n224, nullptr), n224);
  autoq::qat::TensorDataset folder;
  std::printf("  decode 32x32 PNG    -> 32x32:   %8.1f images/s (%d images)\n",
              DecodeRate(root / "png32", 32, threads, n32, &folder), n32);
  // The same pixels as a tensor file gives them: one fresh uint8 tensor.
  autoq::qat::TensorDataset tensor = folder;
  tensor.images = folder.images.clone();
  tensor.labels = folder.labels.clone();
  // The folder streamed as if larger than memory, with no decode cache:
  // every batch decoded by the prefetch threads while training runs.
  autoq::evaluator::ImageFolderOptions so;
  so.channels = 3;
  so.height = so.width = 32;
  so.memory_bytes = 0;
  so.cache_bytes = 0;
  auto streamed = autoq::evaluator::ReadImageFolder((root / "png32").string(),
                                                    so);
  if (!streamed.ok()) {
    std::fprintf(stderr, "%s\n", std::string(streamed.status().message()).c_str());
    return 1;
  }
  // A warm-up epoch, then the three alternately; the better of two each.
  (void)TrainRate(tensor);
  double from_folder = 0, from_tensor = 0, from_stream = 0;
  for (int round = 0; round < 2; ++round) {
    from_folder = std::max(from_folder, TrainRate(folder));
    from_tensor = std::max(from_tensor, TrainRate(tensor));
    from_stream = std::max(from_stream, TrainRate(streamed->data));
  }
  std::printf("  QAT training, 32x32, built-in CNN at 4/8 bits:\n");
  std::printf("    from the folder:      %8.1f images/s\n", from_folder);
  std::printf("    streamed, no cache:   %8.1f images/s\n", from_stream);
  std::printf("    from a tensor file:   %8.1f images/s\n", from_tensor);
  std::printf("    folder / tensor file: %8.3f (target >= 0.90)\n",
              from_folder / from_tensor);
  std::printf("    streamed / tensor:    %8.3f\n", from_stream / from_tensor);
  std::error_code ec;
  fs::remove_all(root, ec);
  return 0;
}
