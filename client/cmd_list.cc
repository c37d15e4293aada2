// `autoq list [--json]`: the caller's jobs on the server.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/commands.h"
#include "client/service_common.h"
#include "common/status_macros.h"

namespace autoq::client {
namespace {

std::string Help() {
  return absl::StrCat(
      "usage: autoq list [--json]\n"
      "  Lists the jobs of your token: id, name, state, phase,\n"
      "  generation/generations, evaluations computed/cached, submit time.\n"
      "  --json              {\"jobs\": [autoq.JobStatus...]}\n",
      kConnectFlagsHelp);
}

// Left-aligned columns, two spaces apart.
std::string Table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& row : rows) {
    width.resize(std::max(width.size(), row.size()), 0);
    for (size_t i = 0; i < row.size(); ++i) {
      width[i] = std::max(width[i], row[i].size());
    }
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      absl::StrAppend(&line, row[i]);
      if (i + 1 < row.size()) {
        line.append(width[i] - row[i].size() + 2, ' ');
      }
    }
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

}  // namespace

absl::Status RunList(int argc, char** argv) {
  FlagSpec spec{{}, {"json"}};
  AddConnectFlags(&spec);
  ASSIGN_OR_RETURN(Flags flags, Flags::Parse(argc, argv, 2, spec));
  if (flags.Has("help")) {
    std::fputs(Help().c_str(), stdout);
    return absl::OkStatus();
  }
  if (!flags.positional().empty()) {
    return absl::InvalidArgumentError(absl::StrCat("unexpected argument '",
                                                   flags.positional()[0],
                                                   "': autoq list [--json]"));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<JobClient> client, ConnectFromFlags(flags));
  ASSIGN_OR_RETURN(std::vector<JobStatus> jobs, client->ListJobs());
  if (flags.Has("json")) {
    ListJobsResponse response;
    for (JobStatus& job : jobs) *response.add_jobs() = std::move(job);
    std::printf("%s\n", ToJson(response, true).c_str());
    return absl::OkStatus();
  }
  if (jobs.empty()) {
    std::printf("no jobs on %s\n", client->server().c_str());
    return absl::OkStatus();
  }
  std::vector<std::vector<std::string>> rows = {
      {"ID", "NAME", "STATE", "PHASE", "GENERATION", "COMPUTED/CACHED",
       "SUBMITTED"}};
  for (const JobStatus& j : jobs) {
    rows.push_back(
        {j.job_id(), j.name(), StateName(j.state()),
         j.phase().empty() ? "-" : j.phase(),
         absl::StrCat(j.generation() < 0 ? "-" : absl::StrCat(j.generation()),
                      "/", j.generations()),
         absl::StrCat(j.computed(), "/", j.cached()),
         FormatUnixMillis(j.submitted_unix_ms())});
  }
  std::fputs(Table(rows).c_str(), stdout);
  return absl::OkStatus();
}

}  // namespace autoq::client
