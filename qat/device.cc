#include "qat/device.h"

#include <torch/cuda.h>

#include <string>

#include "absl/strings/str_cat.h"

namespace autoq::qat {

absl::StatusOr<c10::Device> ParseDevice(absl::string_view text) {
  const std::string name(text);
  c10::Device device(c10::kCPU);
  try {
    device = c10::Device(name);
  } catch (const std::exception&) {
    return absl::InvalidArgumentError(absl::StrCat(
        "device '", name, "' is not a device (expected cpu or cuda:N)"));
  }
  if (device.is_cuda()) {
    const int64_t count = static_cast<int64_t>(torch::cuda::device_count());
    if (count == 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "device ", name,
          ": this build of LibTorch has no CUDA device (build against a CUDA "
          "LibTorch on GPU nodes, or use cpu)"));
    }
    if (device.index() >= count) {
      return absl::InvalidArgumentError(absl::StrCat(
          "device ", name, ": only ", count, " CUDA devices present"));
    }
  } else if (!device.is_cpu()) {
    return absl::InvalidArgumentError(
        absl::StrCat("device ", name, ": expected cpu or cuda:N"));
  }
  return device;
}

}  // namespace autoq::qat
