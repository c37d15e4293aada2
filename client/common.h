// Pieces shared by the `autoq` subcommands.
#ifndef AUTOQ_CLIENT_COMMON_H_
#define AUTOQ_CLIENT_COMMON_H_

#include <string>

#include <c10/core/Device.h>

#include "absl/status/statusor.h"
#include "common/flags.h"

namespace autoq::client {

// Flags every compute command accepts.
void AddComputeFlags(FlagSpec* spec);

// Sets LibTorch's intra-op threads from --threads (default: all cores).
absl::Status ApplyThreads(const Flags& flags);

// Parses --device (default "cpu"); errors when CUDA is asked for and absent.
absl::StatusOr<c10::Device> ParseDevice(const Flags& flags);

// JSON string literal of `s`, quotes included.
std::string JsonString(const std::string& s);

}  // namespace autoq::client

#endif  // AUTOQ_CLIENT_COMMON_H_
