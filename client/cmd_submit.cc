// `autoq submit CONFIG.json [--model PATH] [--watch]`: validates a job spec
// locally, uploads it with its model and prints the new job's id.
#include <google/protobuf/util/json_util.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "client/commands.h"
#include "client/service_common.h"
#include "common/file_util.h"
#include "common/status_macros.h"
#include "evaluator/job_config.h"
#include "proto/autoq.pb.h"

namespace autoq::client {
namespace {

constexpr char kUsage[] = "autoq submit CONFIG.json [--model PATH] [--watch]";

std::string Help() {
  return absl::StrCat(
      "usage: ", kUsage,
      "\n"
      "  Submits the search job CONFIG (an autoq.JobSpec in JSON, see\n"
      "  configs/) to the server with its TorchScript model, and prints the\n"
      "  job id on stdout. The config is checked here first.\n"
      "  --config F          the config, instead of the first argument\n"
      "  --model PATH        the model to upload (default: model.path of the\n"
      "                      config)\n"
      "  --watch             then follow the job as `autoq watch` does\n"
      "  --json              with --watch: one JSON event per line\n",
      kConnectFlagsHelp);
}

// The config file as a JobSpec with the model path replaced by `model` (when
// not empty), validated as `autoq run` would; errors name the file.
absl::StatusOr<JobSpec> LoadSpec(const std::string& path,
                                 const std::string& model,
                                 evaluator::JobConfig* config) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  JobSpec spec;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  auto parsed =
      google::protobuf::util::JsonStringToMessage(text, &spec, options);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": invalid job spec: ", parsed.message().as_string()));
  }
  if (!model.empty()) spec.mutable_model()->set_path(model);
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(spec, &json);
  absl::StatusOr<evaluator::JobConfig> c = evaluator::ParseJobConfig(json);
  if (!c.ok()) {
    return absl::Status(c.status().code(),
                        absl::StrCat(path, ": ", c.status().message()));
  }
  *config = *std::move(c);
  return spec;
}

}  // namespace

absl::Status RunSubmit(int argc, char** argv) {
  FlagSpec spec{{"model", "config"}, {"watch", "json"}};
  AddConnectFlags(&spec);
  ASSIGN_OR_RETURN(Flags flags, Flags::Parse(argc, argv, 2, spec));
  if (flags.Has("help")) {
    std::fputs(Help().c_str(), stdout);
    return absl::OkStatus();
  }
  std::string config_path = flags.Get("config");
  if (config_path.empty()) {
    ASSIGN_OR_RETURN(config_path, OnePositional(flags, "CONFIG.json", kUsage));
  } else if (!flags.positional().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unexpected argument '", flags.positional()[0], "': ", kUsage));
  }
  if (flags.Has("json") && !flags.Has("watch")) {
    return absl::InvalidArgumentError("--json goes with --watch");
  }
  if (flags.Has("model") && flags.Get("model").empty()) {
    return absl::InvalidArgumentError("--model: empty path");
  }
  evaluator::JobConfig config;
  ASSIGN_OR_RETURN(JobSpec job_spec,
                   LoadSpec(config_path, flags.Get("model"), &config));
  for (const std::string& w : config.warnings) {
    std::fprintf(stderr, "autoq: warning: %s\n", w.c_str());
  }
  const std::string& model = config.model_path;
  if (!std::filesystem::is_regular_file(model)) {
    if (!config.builtin.empty() && !flags.Has("model")) {
      return absl::FailedPreconditionError(absl::StrCat(
          "model ", model,
          " does not exist yet: the config names the "
          "built-in model, so train it first with `autoq train-baseline "
          "--out ",
          model, "` (or run the job once locally with `autoq run ", config_path,
          "`)"));
    }
    return absl::NotFoundError(absl::StrCat(
        "model file ", model, " does not exist (",
        flags.Has("model") ? "--model" : "model.path of the config", ")"));
  }

  ASSIGN_OR_RETURN(std::unique_ptr<JobClient> client, ConnectFromFlags(flags));
  const bool tty = isatty(fileno(stderr));
  ASSIGN_OR_RETURN(
      SubmitJobResponse response,
      client->Submit(job_spec, model, [tty](int64_t sent, int64_t total) {
        if (tty && total > 0) {
          std::fprintf(stderr, "\ruploading the model: %3d%%",
                       static_cast<int>(100 * sent / total));
          if (sent == total) std::fputc('\n', stderr);
        }
      }));
  for (const std::string& w : response.warnings()) {
    std::fprintf(stderr, "autoq: server warning: %s\n", w.c_str());
  }
  // Once the job is accepted (a refused one fails in one line): a model
  // AutoQ did not train was most likely trained on the files the
  // validation split is carved from. (An image folder's val/ lives on the
  // workers: its absence is only known there.)
  if (config.builtin.empty() &&
      config.data_spec.find(";val=") == std::string::npos &&
      config.data_spec.rfind("folder:", 0) != 0) {
    std::fprintf(stderr,
                 "autoq: warning: the validation split is carved from the "
                 "training files; a model trained on those files scores too "
                 "high on it (give your own with ;val=FILE)\n");
  }
  const JobStatus& s = response.status();
  if (s.job_id().empty()) {
    return absl::InternalError("the server accepted the job but sent no id");
  }
  std::printf("%s\n", s.job_id().c_str());
  std::fflush(stdout);
  std::fprintf(stderr, "submitted job %s (%s, model %s, %s) to %s\n",
               s.job_id().c_str(), s.name().c_str(),
               FormatBytes(s.model_bytes()).c_str(),
               StateName(s.state()).c_str(), client->server().c_str());
  if (!flags.Has("watch")) {
    std::fprintf(stderr, "follow it with: autoq watch %s\n",
                 s.job_id().c_str());
    return absl::OkStatus();
  }
  return WatchAndPrint(*client, s.job_id(), flags.Has("json"), stdout);
}

}  // namespace autoq::client
