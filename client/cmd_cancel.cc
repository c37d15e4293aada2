// `autoq cancel JOB`: stops a queued or running job.
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "client/commands.h"
#include "client/service_common.h"
#include "common/status_macros.h"

namespace autoq::client {
namespace {

constexpr char kUsage[] = "autoq cancel JOB";

constexpr char kHelp[] =
    "  Cancels job JOB: its queued and running evaluations are dropped;\n"
    "  results already computed stay in the server's cache.\n";

}  // namespace

absl::Status RunCancel(int argc, char** argv) {
  ASSIGN_OR_RETURN(std::optional<JobCommand> command,
                   StartJobCommand(argc, argv, FlagSpec{}, kUsage,
                                   CommandHelp(kUsage, kHelp)));
  if (!command.has_value()) return absl::OkStatus();  // --help
  const std::string& job_id = command->job_id;
  ASSIGN_OR_RETURN(JobStatus status, command->client->Cancel(job_id));
  const char* note = "";
  if (status.state() == JOB_FINISHED || status.state() == JOB_FAILED) {
    note = " (it had already ended; nothing to cancel)";
  } else if (status.state() != JOB_CANCELLED) {
    note = " (cancellation requested)";
  }
  std::printf(
      "job %s: %s%s\n",
      status.job_id().empty() ? job_id.c_str() : status.job_id().c_str(),
      StateName(status.state()).c_str(), note);
  return absl::OkStatus();
}

}  // namespace autoq::client
