// `autoq download JOB [NAME ...] [-o DIR]`: a finished job's artifacts
// (exported models, reports) into a local folder.
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/commands.h"
#include "client/service_common.h"
#include "common/status_macros.h"

namespace autoq::client {
namespace {

constexpr char kUsage[] = "autoq download JOB [NAME ...] [-o DIR]";

std::string Help() {
  return absl::StrCat(
      "usage: ", kUsage,
      "\n"
      "  Downloads the artifacts of job JOB (all of them, or the NAMEs\n"
      "  given, as `autoq results` lists them) into DIR, keeping their\n"
      "  relative paths. Each file is checked against its size and sha256\n"
      "  and appears only when complete.\n"
      "  -o, --out DIR       output folder (default ./JOB)\n",
      kConnectFlagsHelp);
}

}  // namespace

absl::Status RunDownload(int argc, char** argv) {
  // The flag parser knows only long options: spell -o as --out.
  std::vector<std::string> args(argv, argv + argc);
  for (std::string& arg : args) {
    if (arg == "-o") arg = "--out";
  }
  std::vector<char*> args_ptr;
  for (std::string& arg : args) args_ptr.push_back(arg.data());

  FlagSpec spec{{"out"}, {}};
  AddConnectFlags(&spec);
  ASSIGN_OR_RETURN(Flags flags, Flags::Parse(static_cast<int>(args_ptr.size()),
                                             args_ptr.data(), 2, spec));
  if (flags.Has("help")) {
    std::fputs(Help().c_str(), stdout);
    return absl::OkStatus();
  }
  if (flags.positional().empty()) {
    return absl::InvalidArgumentError(absl::StrCat("missing JOB: ", kUsage));
  }
  const std::string job_id = flags.positional()[0];
  const std::vector<std::string> wanted(flags.positional().begin() + 1,
                                        flags.positional().end());
  const std::string out_dir = flags.Get("out", job_id);
  if (out_dir.empty()) return absl::InvalidArgumentError("--out: empty");
  // A name given on the command line is checked before anything else.
  for (const std::string& name : wanted)
    RETURN_IF_ERROR(CheckArtifactName(name));

  ASSIGN_OR_RETURN(std::unique_ptr<JobClient> client, ConnectFromFlags(flags));
  ASSIGN_OR_RETURN(JobResults results, client->GetResults(job_id));
  std::map<std::string, int64_t> available;
  for (const ArtifactInfo& a : results.artifacts()) {
    available[a.name()] = a.size_bytes();
  }
  if (available.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "job ", job_id, " has no artifacts",
        results.status().state() == JOB_FINISHED
            ? ""
            : absl::StrCat(" (it is ", StateName(results.status().state()),
                           "; artifacts appear when it has finished)")));
  }
  std::vector<std::pair<std::string, int64_t>> todo;
  if (wanted.empty()) {
    todo.assign(available.begin(), available.end());
  } else {
    std::set<std::string> seen;
    for (const std::string& name : wanted) {
      auto it = available.find(name);
      if (it == available.end()) {
        std::vector<std::string> names;
        for (const auto& [n, size] : available) names.push_back(n);
        return absl::NotFoundError(
            absl::StrCat("job ", job_id, " has no artifact '", name,
                         "'; it has: ", absl::StrJoin(names, ", ")));
      }
      if (seen.insert(name).second) todo.push_back(*it);
    }
  }
  // Every name is checked before the first file is written: a server that
  // names a file outside the folder gets nothing written at all.
  for (const auto& [name, size] : todo)
    RETURN_IF_ERROR(CheckArtifactName(name));

  int64_t total = 0;
  for (const auto& [name, size] : todo) {
    ASSIGN_OR_RETURN(std::string path,
                     client->DownloadInto(job_id, name, out_dir, size));
    std::printf("%s  %s\n", path.c_str(), FormatBytes(size).c_str());
    std::fflush(stdout);
    total += size;
  }
  std::printf("%zu files, %s in %s\n", todo.size(), FormatBytes(total).c_str(),
              out_dir.c_str());
  return absl::OkStatus();
}

}  // namespace autoq::client
