// `autoq watch JOB [--json]`: follows a job's events until it ends,
// reconnecting after a dropped stream; exit 0 when the job finished.
#include <chrono>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "client/commands.h"
#include "client/service_common.h"
#include "common/status_macros.h"

namespace autoq::client {
namespace {

constexpr char kUsage[] = "autoq watch JOB [--json]";

constexpr char kHelp[] =
    "  Follows job JOB as it runs: a table of the current Pareto front\n"
    "  after each generation (hypervolume, evaluation counts), one line per\n"
    "  evaluation, workers joining and leaving, the final front and the\n"
    "  end state. A dropped stream is resumed from the last event.\n"
    "  Exit status 0 when the job finished, 1 when it failed or was\n"
    "  cancelled.\n"
    "  --json              one JSON object (an autoq.JobEvent) per line\n";

}  // namespace

absl::Status WatchAndPrint(const JobClient& client, const std::string& job_id,
                           bool json, std::FILE* out) {
  EventPrinter printer(out, json);
  WatchOptions options;
  options.on_reconnect = [](const absl::Status& why,
                            std::chrono::milliseconds wait, int64_t seq) {
    if (wait.count() == 0) return;  // a stream's window ended: routine
    std::fprintf(stderr,
                 "autoq: watch stream lost (%s); reconnecting in %.1f s, "
                 "after event %lld\n",
                 std::string(why.message()).c_str(), wait.count() / 1000.0,
                 static_cast<long long>(seq));
  };
  ASSIGN_OR_RETURN(
      JobStatus ended,
      client.Watch(
          job_id, 0, [&](const JobEvent& event) { printer.Print(event); },
          options));
  switch (ended.state()) {
    case JOB_FINISHED:
      return absl::OkStatus();
    case JOB_FAILED:
      return absl::AbortedError(absl::StrCat(
          "job ", job_id, " failed: ",
          ended.error().empty() ? "(no error given)" : ended.error()));
    case JOB_CANCELLED:
      return absl::CancelledError(
          absl::StrCat("job ", job_id, " was cancelled"));
    default:
      return absl::InternalError(absl::StrCat(
          "job ", job_id, " ended in state ", StateName(ended.state())));
  }
}

absl::Status RunWatch(int argc, char** argv) {
  ASSIGN_OR_RETURN(std::optional<JobCommand> command,
                   StartJobCommand(argc, argv, FlagSpec{{}, {"json"}}, kUsage,
                                   CommandHelp(kUsage, kHelp)));
  if (!command.has_value()) return absl::OkStatus();  // --help
  return WatchAndPrint(*command->client, command->job_id,
                       command->flags.Has("json"), stdout);
}

}  // namespace autoq::client
