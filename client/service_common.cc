#include "client/service_common.h"

#include <google/protobuf/util/json_util.h>

#include <ctime>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "common/status_macros.h"
#include "search/report.h"

namespace autoq::client {
namespace {

search::TableRow Row(const FrontPointInfo& p, double top1) {
  search::TableRow row;
  row.label = p.label();
  row.size_bytes = p.size_bytes();
  row.top1 = top1;
  row.wbits.assign(p.wbits().begin(), p.wbits().end());
  row.abits.assign(p.abits().begin(), p.abits().end());
  return row;
}

// The score a point has during the search: its short-QAT validation top-1.
double SearchTop1(const FrontPointInfo& p) {
  return p.search_val_top1() >= 0 ? p.search_val_top1() : p.val_top1();
}

std::string StageName(TaskStage stage) {
  switch (stage) {
    case STAGE_FLOAT:
      return "float";
    case STAGE_SEARCH:
      return "search";
    case STAGE_FINAL:
      return "final";
    case STAGE_SENSITIVITY:
      return "sensitivity";
    case STAGE_FLOAT16:
      return "float16";
    case STAGE_PTQ_PER_TENSOR:
      return "ptq-per-tensor";
    case STAGE_PTQ_PER_CHANNEL:
      return "ptq-per-channel";
    default:
      return "task";
  }
}

}  // namespace

const char kConnectFlagsHelp[] =
    "  --server HOST:PORT  the AutoQ server (default $AUTOQ_SERVER, else\n"
    "                      localhost:50051)\n"
    "  --token-file F      client token (default $AUTOQ_TOKEN_FILE, else\n"
    "                      ~/.config/autoq/token)\n"
    "  --tls-ca F          PEM of the CA of the server's TLS certificate\n"
    "                      (default: plain TCP)\n"
    "  --timeout SECONDS   deadline of each call (default 30)\n";

void AddConnectFlags(FlagSpec* spec) {
  spec->with_value.insert({"server", "token-file", "tls-ca", "timeout"});
  spec->boolean.insert("help");
}

absl::StatusOr<ConnectOptions> ConnectOptionsFromFlags(const Flags& flags) {
  ConnectOptions options = DefaultConnectOptions();
  if (flags.Has("server")) {
    options.server = flags.Get("server");
    if (options.server.empty()) {
      return absl::InvalidArgumentError("--server: expected HOST:PORT");
    }
  }
  if (flags.Has("token-file")) {
    options.token_file = flags.Get("token-file");
    if (options.token_file.empty()) {
      return absl::InvalidArgumentError("--token-file: expected a file");
    }
  }
  options.tls_ca_file = flags.Get("tls-ca");
  absl::StatusOr<double> seconds = flags.GetDouble("timeout", 30);
  if (!seconds.ok()) return seconds.status();
  if (!(*seconds > 0 && *seconds <= 7 * 24 * 3600)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--timeout ", flags.Get("timeout"), ": expected seconds > 0"));
  }
  options.timeout =
      std::chrono::milliseconds(static_cast<int64_t>(*seconds * 1000 + 0.5));
  if (options.timeout.count() < 1)
    options.timeout = std::chrono::milliseconds(1);
  return options;
}

absl::StatusOr<std::unique_ptr<JobClient>> ConnectFromFlags(
    const Flags& flags) {
  absl::StatusOr<ConnectOptions> options = ConnectOptionsFromFlags(flags);
  if (!options.ok()) return options.status();
  return JobClient::Create(*options);
}

absl::StatusOr<std::string> OnePositional(const Flags& flags, const char* what,
                                          const char* usage) {
  if (flags.positional().size() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(flags.positional().empty() ? "missing " : "expected one ",
                     what, ": ", usage));
  }
  return flags.positional()[0];
}

std::string CommandHelp(const char* usage, const char* body) {
  return absl::StrCat("usage: ", usage, "\n", body, kConnectFlagsHelp);
}

absl::StatusOr<std::optional<JobCommand>> StartJobCommand(
    int argc, char** argv, FlagSpec spec, const char* usage,
    const std::string& help) {
  AddConnectFlags(&spec);
  ASSIGN_OR_RETURN(Flags flags, Flags::Parse(argc, argv, 2, spec));
  if (flags.Has("help")) {
    std::fputs(help.c_str(), stdout);
    return std::nullopt;
  }
  ASSIGN_OR_RETURN(std::string job_id, OnePositional(flags, "JOB", usage));
  ASSIGN_OR_RETURN(std::unique_ptr<JobClient> client, ConnectFromFlags(flags));
  return JobCommand{std::move(flags), std::move(job_id), std::move(client)};
}

std::string StateName(JobState state) {
  std::string name = JobState_Name(state);
  if (absl::StartsWith(name, "JOB_STATE_")) return name.substr(10);
  if (absl::StartsWith(name, "JOB_")) return name.substr(4);
  return name.empty() ? absl::StrCat(static_cast<int>(state)) : name;
}

std::string FormatUnixMillis(int64_t unix_ms) {
  if (unix_ms <= 0) return "-";
  const std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string FormatBytes(int64_t bytes) {
  if (bytes < 1024) return absl::StrCat(bytes, " B");
  if (bytes < 1024 * 1024) return absl::StrFormat("%.1f KB", bytes / 1024.0);
  return absl::StrFormat("%.1f MB", bytes / (1024.0 * 1024.0));
}

std::string ToJson(const google::protobuf::Message& message, bool pretty) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = pretty;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string out;
  auto status =
      google::protobuf::util::MessageToJsonString(message, &out, options);
  if (!status.ok()) {
    // Only a message with invalid UTF-8 gets here; say so in JSON.
    return absl::StrCat(
        "{\"error\": \"cannot print as JSON: ",
        absl::StrReplaceAll(status.message().as_string(), {{"\"", "'"}}),
        "\"}");
  }
  // add_whitespace ends with a newline; the one-line form has none.
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

std::string FormatFrontComparison(const FinalFront& f) {
  std::vector<search::TableRow> rows;
  for (const auto* list : {&f.front(), &f.uniform(), &f.baselines()}) {
    for (const FrontPointInfo& p : *list) rows.push_back(Row(p, p.test_top1()));
  }
  std::string out = absl::StrFormat(
      "== final front after the full fine-tune, test top-1 (float %.2f%%)%s\n",
      f.float_test_top1(),
      f.baselines_size() > 0
          ? "; float16 and int8-ptq rows: post-training, no fine-tune"
          : "");
  absl::StrAppend(&out, search::FormatFrontTable(rows, f.float_test_top1(),
                                                 f.float_size_bytes()));
  if (f.uniform_size() > 0 && f.region_size_bytes() > 0) {
    const double u = f.region_uniform_hypervolume();
    absl::StrAppendFormat(
        &out,
        "deploy region (test loss <= %.2f pp, size <= %.1f KB): hypervolume "
        "front %.4f, uniform %.4f",
        f.max_accuracy_drop(), f.region_size_bytes() / 1024.0,
        f.region_front_hypervolume(), u);
    if (u > 0) {
      absl::StrAppendFormat(&out, " (%+.1f %%)",
                            100.0 * (f.region_front_hypervolume() / u - 1.0));
    }
    absl::StrAppend(&out, "\n");
    auto near = [&](int64_t bytes) {
      return bytes <= 0 ? std::string("none")
                        : absl::StrFormat("%.1f KB (%.0f %% of %.1f KB)",
                                          bytes / 1024.0,
                                          100.0 * bytes / f.region_size_bytes(),
                                          f.region_size_bytes() / 1024.0);
    };
    absl::StrAppend(&out, "smallest within 0.5 pp of float: front ",
                    near(f.front_smallest_near_float()), ", uniform ",
                    near(f.uniform_smallest_near_float()), "\n");
  }
  absl::StrAppendFormat(&out,
                        "hypervolume (test, normalized loss x size, ref "
                        "(1,1)): front %.4f, uniform %.4f\n",
                        f.front_hypervolume(), f.uniform_hypervolume());
  if (f.uniform_size() > 0) {
    absl::StrAppend(&out,
                    "inside the region, smaller than every uniform "
                    "configuration at least as accurate: ",
                    f.beating_points().empty()
                        ? "none"
                        : absl::StrJoin(f.beating_points(), ", "),
                    "\n");
  }
  return out;
}

std::string FormatFinalFront(const FinalFront& f) {
  std::string out = FormatFrontComparison(f);
  absl::StrAppendFormat(
      &out,
      "evaluations: %d computed, %d cached; time: search %.1f s, final "
      "fine-tune %.1f s, total %.1f s\n",
      f.computed(), f.cached(), f.search_seconds(), f.final_seconds(),
      f.total_seconds());
  return out;
}

void EventPrinter::Print(const JobEvent& event) {
  if (json_) {
    std::fprintf(out_, "%s\n", ToJson(event, false).c_str());
    std::fflush(out_);
    return;
  }
  std::string text;
  switch (event.event_case()) {
    case JobEvent::kAccepted: {
      const JobStatus& s = event.accepted();
      text = absl::StrCat(
          "job ", s.job_id(), " (", s.name(),
          ") accepted: ", StateName(s.state()), ", model ",
          FormatBytes(s.model_bytes()),
          s.model_sha256().empty()
              ? ""
              : absl::StrCat(" sha256 ", s.model_sha256().substr(0, 12)),
          ", ", s.generations(), " generations\n");
      break;
    }
    case JobEvent::kLog:
      saw_log_ = true;
      text = absl::StrCat(event.log(), "\n");
      break;
    case JobEvent::kWorker: {
      const WorkerChange& w = event.worker();
      const std::string who = w.name().empty() ? w.worker_id() : w.name();
      text = w.joined() ? absl::StrCat("worker ", who, " joined (",
                                       absl::StrJoin(w.devices(), ", "), ")\n")
                        : absl::StrCat("worker ", who, " left\n");
      break;
    }
    case JobEvent::kEvaluation: {
      const EvaluationDone& e = event.evaluation();
      const FrontPointInfo& p = e.point();
      if (e.stage() == STAGE_FLOAT) {
        float_val_top1_ = p.val_top1();
        float_size_bytes_ = p.size_bytes();
      }
      const double val =
          e.stage() == STAGE_SEARCH ? SearchTop1(p) : p.val_top1();
      std::string where = "cached";
      if (!e.cached()) {
        where = e.device().empty() || e.worker().empty()
                    ? absl::StrCat(e.device(), e.worker())
                    : absl::StrCat(e.device(), "@", e.worker());
        if (where.empty()) where = "-";
      }
      const std::string stage = e.total() > 0
                                    ? absl::StrCat(StageName(e.stage()), " ",
                                                   e.done(), "/", e.total())
                                    : StageName(e.stage());
      text = absl::StrFormat("  [%s] %-16s val %6.2f%%", stage, where, val);
      if (p.test_top1() >= 0) {
        absl::StrAppendFormat(&text, " test %6.2f%%", p.test_top1());
      }
      std::vector<int> wbits(p.wbits().begin(), p.wbits().end());
      absl::StrAppendFormat(
          &text, "  %8.1f KB  %6.1f s  %s%s\n", p.size_bytes() / 1024.0,
          e.cached() ? 0.0 : e.seconds(),
          e.stage() == STAGE_FLOAT         ? "float"
          : e.stage() == STAGE_FLOAT16     ? "float16 parameters"
          : e.stage() == STAGE_SENSITIVITY ? "one layer at a time"
                                           : absl::StrJoin(wbits, ","),
          p.label().empty() ? "" : absl::StrCat(" ", p.label()));
      break;
    }
    case JobEvent::kGeneration: {
      if (saw_log_) return;
      const GenerationDone& g = event.generation();
      std::vector<search::TableRow> rows;
      for (const FrontPointInfo& p : g.front()) {
        rows.push_back(Row(p, SearchTop1(p)));
      }
      text = absl::StrFormat(
          "\n== generation %d/%d: %d points on the front, hypervolume %.4f; "
          "evaluations: %d computed, %d cached\n",
          g.generation(), g.generations(), g.front_size(), g.hypervolume(),
          g.computed(), g.cached());
      absl::StrAppend(&text, search::FormatFrontTable(rows, float_val_top1_,
                                                      float_size_bytes_));
      break;
    }
    case JobEvent::kFinalFront:
      text = absl::StrCat("\n", FormatFinalFront(event.final_front()));
      break;
    case JobEvent::kEnded: {
      const JobStatus& s = event.ended();
      text = absl::StrCat(
          "job ", s.job_id(), " ", StateName(s.state()),
          s.error().empty() ? "" : absl::StrCat(": ", s.error()), "\n");
      break;
    }
    case JobEvent::EVENT_NOT_SET:
      return;  // an event kind newer than this client
  }
  std::fputs(text.c_str(), out_);
  std::fflush(out_);
}

}  // namespace autoq::client
