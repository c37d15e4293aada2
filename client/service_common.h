// Pieces shared by the `autoq` service commands (submit, watch, list,
// cancel, results, download): the connection flags, and the text forms of
// job states, fronts and events.
//
// Thread-safety: plain functions; an EventPrinter belongs to one thread.
#ifndef AUTOQ_CLIENT_SERVICE_COMMON_H_
#define AUTOQ_CLIENT_SERVICE_COMMON_H_

#include <google/protobuf/message.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/job_client.h"
#include "common/flags.h"
#include "proto/autoq.pb.h"

namespace autoq::client {

// Help text of the connection flags, for the commands' --help.
extern const char kConnectFlagsHelp[];

// Adds --server, --token-file, --tls-ca, --timeout and --help.
void AddConnectFlags(FlagSpec* spec);

// ConnectOptions from those flags over DefaultConnectOptions(); errors name
// the flag.
absl::StatusOr<ConnectOptions> ConnectOptionsFromFlags(const Flags& flags);

// JobClient::Create(ConnectOptionsFromFlags(flags)).
absl::StatusOr<std::unique_ptr<JobClient>> ConnectFromFlags(const Flags& flags);

// The one positional argument `what` (e.g. "JOB") of `usage`, or an error.
absl::StatusOr<std::string> OnePositional(const Flags& flags, const char* what,
                                          const char* usage);

// "usage: USAGE\n" + `body` (indented lines ending in "\n") + the
// connection flags: the --help text of a service command.
std::string CommandHelp(const char* usage, const char* body);

// What a JOB command (cancel, results, watch) works with.
struct JobCommand {
  Flags flags;
  std::string job_id;
  std::unique_ptr<JobClient> client;
};

// The common start of a JOB command: parses argv (from argv[2]) with
// `spec` plus the connection flags; on --help prints `help` and returns
// nullopt; otherwise the one JOB positional and a client connected by the
// flags. Errors name the flag or say the usage.
absl::StatusOr<std::optional<JobCommand>> StartJobCommand(
    int argc, char** argv, FlagSpec spec, const char* usage,
    const std::string& help);

// "RUNNING" for JOB_RUNNING, and so on.
std::string StateName(JobState state);

// Local time "2024-05-01 12:34:56"; "-" for 0.
std::string FormatUnixMillis(int64_t unix_ms);

// "12.3 KB", "4.5 MB".
std::string FormatBytes(int64_t bytes);

// Protobuf's JSON form (proto field names, defaults printed): one line, or
// indented when `pretty`.
std::string ToJson(const google::protobuf::Message& message, bool pretty);

// The final front for people: the table of front and uniform points by test
// top-1 with size and bits, the hypervolumes of front vs. uniform, the
// points that beat every uniform configuration, evaluation counts, times.
std::string FormatFinalFront(const FinalFront& front);
// The table of the final front and uniform points, then the comparison:
// the deploy region's hypervolumes, the smallest point near float, the
// whole-space hypervolumes and the points that beat uniform.
std::string FormatFrontComparison(const FinalFront& front);

// Prints a job's events as `autoq watch` does: for people (one line per
// evaluation, a front table per generation, worker changes, the final
// front, the end), or one JSON object per line. Flushes after each event.
// Evaluations print from their structured events (the server sends no log
// line for them). A job whose events include the server's log lines (the
// pipeline's generation tables, as `autoq run` prints them) shows its
// generations through those; the structured generation events then print
// nothing, so no table appears twice.
class EventPrinter {
 public:
  EventPrinter(std::FILE* out, bool json) : out_(out), json_(json) {}
  void Print(const JobEvent& event);

 private:
  std::FILE* out_;
  bool json_;
  // The float model's validation top-1 and size, from its STAGE_FLOAT
  // evaluation: the reference row of the generation tables.
  double float_val_top1_ = -1;
  int64_t float_size_bytes_ = 0;
  bool saw_log_ = false;  // the job's log lines carry the generation tables
};

// Watches the job from its first event, printing with an EventPrinter on
// `out` and reconnect notes on stderr. OK when the job FINISHED; an error
// saying so when it FAILED (with its error) or was CANCELLED. Defined in
// cmd_watch.cc; `autoq submit --watch` uses it too.
absl::Status WatchAndPrint(const JobClient& client, const std::string& job_id,
                           bool json, std::FILE* out);

}  // namespace autoq::client

#endif  // AUTOQ_CLIENT_SERVICE_COMMON_H_
