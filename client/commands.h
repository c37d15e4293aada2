// The `autoq` subcommands. Each parses argv[2..] and returns a Status; main
// prints a failed Status as one line and exits non-zero. Called from main's
// thread only.
#ifndef AUTOQ_CLIENT_COMMANDS_H_
#define AUTOQ_CLIENT_COMMANDS_H_

#include "absl/status/status.h"

namespace autoq::client {

absl::Status RunInspect(int argc, char** argv);
absl::Status RunEval(int argc, char** argv);
absl::Status RunTrainBaseline(int argc, char** argv);
absl::Status RunRun(int argc, char** argv);
absl::Status RunSensitivity(int argc, char** argv);

// The service commands: clients of an autoq-server (client/job_client.h).
absl::Status RunSubmit(int argc, char** argv);
absl::Status RunWatch(int argc, char** argv);
absl::Status RunList(int argc, char** argv);
absl::Status RunCancel(int argc, char** argv);
absl::Status RunResults(int argc, char** argv);
absl::Status RunDownload(int argc, char** argv);

}  // namespace autoq::client

#endif  // AUTOQ_CLIENT_COMMANDS_H_
