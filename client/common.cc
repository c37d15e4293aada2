#include "client/common.h"

#include <ATen/Parallel.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "qat/device.h"

namespace autoq::client {

void AddComputeFlags(FlagSpec* spec) {
  spec->with_value.insert({"threads", "device"});
}

absl::Status ApplyThreads(const Flags& flags) {
  const int64_t cores = std::max(1u, std::thread::hardware_concurrency());
  ASSIGN_OR_RETURN(int64_t threads, flags.GetInt("threads", cores));
  if (threads < 1 || threads > 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat("--threads ", threads, " is outside 1..1024"));
  }
  at::set_num_threads(static_cast<int>(threads));
  return absl::OkStatus();
}

absl::StatusOr<c10::Device> ParseDevice(const Flags& flags) {
  absl::StatusOr<c10::Device> device =
      qat::ParseDevice(flags.Get("device", "cpu"));
  if (!device.ok()) {
    return absl::Status(device.status().code(),
                        absl::StrCat("--", device.status().message()));
  }
  return device;
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += absl::StrFormat("\\u%04x", c);
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

}  // namespace autoq::client
