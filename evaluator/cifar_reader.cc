// CIFAR-10 binary-version reader: each file is a plain sequence of 3073-byte
// records, 1 label byte followed by 3 x 32 x 32 pixels in CHW order.
#include <ATen/ATen.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "evaluator/dataset.h"
#include "qat/torch_errors.h"

namespace autoq::evaluator {
namespace {

constexpr int64_t kCifarClasses = 10;
constexpr int64_t kPixels = 3 * 32 * 32;
constexpr int64_t kRecord = 1 + kPixels;

absl::StatusOr<qat::TensorDataset> ReadCifar10Impl(
    const std::vector<std::string>& files) {
  if (files.empty()) {
    return absl::InvalidArgumentError("ReadCifar10: no files given");
  }
  std::vector<std::string> contents;
  int64_t total = 0;
  for (const std::string& path : files) {
    ASSIGN_OR_RETURN(std::string bytes, internal::ReadFileBytes(path));
    const auto size = static_cast<int64_t>(bytes.size());
    if (size == 0 || size % kRecord != 0) {
      const int64_t records = (size + kRecord - 1) / kRecord;
      return absl::DataLossError(absl::StrCat(
          path, ": truncated CIFAR-10 batch: ", size, " bytes, expected ",
          std::max<int64_t>(records, 1) * kRecord, " (a whole number of ",
          kRecord, "-byte records)"));
    }
    total += size / kRecord;
    contents.push_back(std::move(bytes));
  }

  qat::TensorDataset out;
  out.images =
      at::empty({total, 3, 32, 32}, at::TensorOptions().dtype(at::kByte));
  out.labels = at::empty({total}, at::TensorOptions().dtype(at::kLong));
  uint8_t* images = out.images.data_ptr<uint8_t>();
  int64_t* labels = out.labels.data_ptr<int64_t>();
  int64_t row = 0;
  for (size_t f = 0; f < files.size(); ++f) {
    const auto* p = reinterpret_cast<const uint8_t*>(contents[f].data());
    const int64_t n = static_cast<int64_t>(contents[f].size()) / kRecord;
    for (int64_t i = 0; i < n; ++i, p += kRecord) {
      if (p[0] >= kCifarClasses) {
        return absl::InvalidArgumentError(
            absl::StrCat(files[f], ": label ", i, " is ", p[0],
                         ", outside [0, ", kCifarClasses, ")"));
      }
      labels[row + i] = p[0];
      std::memcpy(images + (row + i) * kPixels, p + 1, kPixels);
    }
    row += n;
    contents[f] = std::string();  // Frees each raw copy once consumed.
  }
  out.num_classes = kCifarClasses;
  return out;
}

}  // namespace

absl::StatusOr<qat::TensorDataset> ReadCifar10(
    const std::vector<std::string>& files) {
  try {
    return ReadCifar10Impl(files);
  } catch (const std::exception& e) {
    return absl::InternalError(
        absl::StrCat(files.empty() ? std::string("ReadCifar10") : files.front(),
                     ": ", qat::SummarizeTorchError(e)));
  }
}

}  // namespace autoq::evaluator
