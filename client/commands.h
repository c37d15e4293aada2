// The `autoq` subcommands. Each parses argv[2..] and returns a Status; main
// prints a failed Status as one line and exits non-zero.
#ifndef AUTOQ_CLIENT_COMMANDS_H_
#define AUTOQ_CLIENT_COMMANDS_H_

#include "absl/status/status.h"

namespace autoq::client {

absl::Status RunInspect(int argc, char** argv);
absl::Status RunEval(int argc, char** argv);
absl::Status RunTrainBaseline(int argc, char** argv);
absl::Status RunRun(int argc, char** argv);

}  // namespace autoq::client

#endif  // AUTOQ_CLIENT_COMMANDS_H_
