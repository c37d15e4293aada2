// `autoq results JOB [--json]`: the final front of a finished job and its
// downloadable artifacts.
#include <algorithm>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/commands.h"
#include "client/service_common.h"
#include "common/status_macros.h"

namespace autoq::client {
namespace {

constexpr char kUsage[] = "autoq results JOB [--json]";

constexpr char kHelp[] =
    "  The final Pareto front of finished job JOB: test top-1, size and\n"
    "  bits of every point and of the uniform configurations, the\n"
    "  hypervolumes of front vs. uniform, and the artifacts (get them\n"
    "  with autoq download).\n"
    "  --json              the autoq.JobResults message as JSON\n";

// Why there are no results yet, for a job that is not FINISHED.
absl::Status NotFinished(const JobStatus& s) {
  const std::string id = s.job_id();
  switch (s.state()) {
    case JOB_FAILED:
      return absl::FailedPreconditionError(
          absl::StrCat("job ", id, " failed, it has no results: ",
                       s.error().empty() ? "(no error given)" : s.error()));
    case JOB_CANCELLED:
      return absl::FailedPreconditionError(
          absl::StrCat("job ", id, " was cancelled; it has no results"));
    default:
      return absl::FailedPreconditionError(absl::StrCat(
          "job ", id, " has not finished yet (", StateName(s.state()),
          s.phase().empty() ? "" : absl::StrCat(", phase ", s.phase()),
          s.generation() >= 0 ? absl::StrCat(", generation ", s.generation(),
                                             "/", s.generations())
                              : "",
          "); follow it with: autoq watch ", id));
  }
}

}  // namespace

absl::Status RunResults(int argc, char** argv) {
  ASSIGN_OR_RETURN(std::optional<JobCommand> command,
                   StartJobCommand(argc, argv, FlagSpec{{}, {"json"}}, kUsage,
                                   CommandHelp(kUsage, kHelp)));
  if (!command.has_value()) return absl::OkStatus();  // --help
  const std::string& job_id = command->job_id;
  const Flags& flags = command->flags;
  ASSIGN_OR_RETURN(JobResults results, command->client->GetResults(job_id));
  if (results.status().job_id().empty()) {
    results.mutable_status()->set_job_id(job_id);
  }
  if (flags.Has("json")) {
    // Machines get the message whatever the state; the state is in it.
    std::printf("%s\n", ToJson(results, true).c_str());
    return absl::OkStatus();
  }
  const JobStatus& s = results.status();
  if (s.state() != JOB_FINISHED) return NotFinished(s);
  std::printf("job %s (%s): %s, submitted %s, model %s\n\n", s.job_id().c_str(),
              s.name().c_str(), StateName(s.state()).c_str(),
              FormatUnixMillis(s.submitted_unix_ms()).c_str(),
              FormatBytes(s.model_bytes()).c_str());
  std::fputs(FormatFinalFront(results.final_front()).c_str(), stdout);
  int64_t total = 0;
  size_t width = 0;
  for (const ArtifactInfo& a : results.artifacts()) {
    total += a.size_bytes();
    width = std::max(width, a.name().size());
  }
  std::printf("\nartifacts: %d files, %s\n", results.artifacts_size(),
              FormatBytes(total).c_str());
  for (const ArtifactInfo& a : results.artifacts()) {
    std::printf("  %-*s  %10s\n", static_cast<int>(width), a.name().c_str(),
                FormatBytes(a.size_bytes()).c_str());
  }
  if (results.artifacts_size() > 0) {
    std::printf("download them with: autoq download %s [NAME ...] [-o DIR]\n",
                s.job_id().c_str());
  }
  return absl::OkStatus();
}

}  // namespace autoq::client
