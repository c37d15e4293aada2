// Which device a fine-tune runs on: "cpu" or "cuda:N", checked against
// what this LibTorch build and machine have.
//
// Thread-safety: reentrant.
#ifndef AUTOQ_QAT_DEVICE_H_
#define AUTOQ_QAT_DEVICE_H_

#include <c10/core/Device.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace autoq::qat {

// Parses `text`. InvalidArgument for anything but cpu / cuda[:N] and for a
// CUDA index this machine lacks; FailedPrecondition for CUDA on a LibTorch
// without it. Errors start with "device TEXT".
absl::StatusOr<c10::Device> ParseDevice(absl::string_view text);

}  // namespace autoq::qat

#endif  // AUTOQ_QAT_DEVICE_H_
