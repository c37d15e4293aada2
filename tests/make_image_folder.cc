// Writes an example image folder from Debian's Fashion-MNIST: PNG files in
// ROOT/train/<class>/ and ROOT/test/<class>/, the layout a user's own JPEG
// or PNG data has (torchvision's ImageFolder). Class folders are named
// "0_t-shirt" ... "9_ankle-boot" so their sorted order is the label order
// the built-in model was trained with.
//
//   autoq_make_image_folder --out DIR [--train N] [--test N]
//
// N: images per class (default 200 train, 50 test).
#include <png.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/flags.h"
#include "evaluator/dataset.h"
#include "evaluator/test_images.h"

namespace {

constexpr const char* kClasses[] = {
    "0_t-shirt", "1_trouser", "2_pullover", "3_dress", "4_coat",
    "5_sandal",  "6_shirt",   "7_sneaker",  "8_bag",   "9_ankle-boot"};

// Writes up to `per_class` images of each class of `data` under `dir`.
int WriteSplit(const autoq::qat::TensorDataset& data, int64_t per_class,
               const std::filesystem::path& dir) {
  std::vector<int64_t> written(10, 0);
  const at::Tensor images = data.images.contiguous();
  const int64_t h = images.size(2), w = images.size(3);
  int total = 0;
  for (int64_t i = 0; i < data.size(); ++i) {
    const int64_t label = data.labels[i].item<int64_t>();
    if (written[static_cast<size_t>(label)] >= per_class) continue;
    const std::filesystem::path folder = dir / kClasses[label];
    std::filesystem::create_directories(folder);
    const std::string path = (folder / absl::StrCat(i, ".png")).string();
    if (!autoq::evaluator::test_images::WritePng(
            path, images[i].data_ptr<uint8_t>(), static_cast<int>(h),
            static_cast<int>(w), 1)) {
      std::fprintf(stderr, "cannot write %s\n", path.c_str());
      return -1;
    }
    ++written[static_cast<size_t>(label)];
    ++total;
  }
  return total;
}

}  // namespace

int main(int argc, char** argv) {
  autoq::FlagSpec spec{{"out", "train", "test"}, {}};
  absl::StatusOr<autoq::Flags> flags = autoq::Flags::Parse(argc, argv, 1, spec);
  if (!flags.ok() || !flags->Has("out")) {
    std::fprintf(stderr,
                 "usage: autoq_make_image_folder --out DIR [--train N] "
                 "[--test N]\n");
    return 2;
  }
  const int64_t train_n = flags->GetInt("train", 200).value_or(200);
  const int64_t test_n = flags->GetInt("test", 50).value_or(50);
  absl::StatusOr<autoq::evaluator::DataSpec> data_spec =
      autoq::evaluator::ParseDataSpec("fashion-mnist");
  autoq::evaluator::SplitOptions split;
  split.val_size = 1;
  absl::StatusOr<autoq::evaluator::DatasetSplits> data =
      autoq::evaluator::LoadDataset(*data_spec, split);
  if (!data.ok()) {
    std::fprintf(stderr, "%s\n", std::string(data.status().message()).c_str());
    return 1;
  }
  const std::filesystem::path out(flags->Get("out"));
  const int train = WriteSplit(data->train, train_n, out / "train");
  const int test = WriteSplit(data->test, test_n, out / "test");
  if (train < 0 || test < 0) return 1;
  std::printf("wrote %d training and %d test PNG images under %s\n", train,
              test, out.string().c_str());
  return 0;
}
