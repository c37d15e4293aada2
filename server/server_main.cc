// autoq-server: the AutoQ service. See server/server.h and deploy/.
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "absl/strings/str_cat.h"
#include "common/flags.h"
#include "server/auth.h"
#include "server/model_check.h"
#include "server/server.h"

namespace {

constexpr char kHelp[] =
    "usage: autoq-server --client-tokens FILE --worker-tokens FILE [flags]\n"
    "  Serves the AutoQ job API (autoq submit/watch/results) and the worker\n"
    "  API (autoq-worker). All state is in one SQLite file: a restarted\n"
    "  server continues every unfinished job.\n"
    "  --listen HOST:PORT        address (default 0.0.0.0:50051)\n"
    "  --db FILE                 database (default autoq-server.db)\n"
    "  --client-tokens FILE      lines \"NAME TOKEN\": who may submit jobs\n"
    "  --worker-tokens FILE      lines \"NAME TOKEN\": who may run tasks\n"
    "  --tls-cert FILE --tls-key FILE   serve TLS (PEM); default plain TCP\n"
    "  --max-model-mb N          largest model upload (default 512)\n"
    "  --max-message-mb N        largest message (default 256)\n"
    "  --max-jobs-per-client N   queued or running jobs per client "
    "(default 4)\n"
    "  --lease-seconds N         lease without heartbeat (default 60)\n"
    "  --heartbeat-seconds N     worker heartbeat period (default 10)\n"
    "  --restart-grace-seconds N after a restart, how long workers keep\n"
    "                            their leases while reconnecting (default 30)\n"
    "  --model-memory-mb N       memory for loading an uploaded model and\n"
    "                            one forward pass, in a child process\n"
    "                            (default 8192)\n"
    "  --model-seconds N         CPU seconds for the same (default 120; the\n"
    "                            wall-clock limit is 2.5 times this)\n"
    "  --quiet                   no log lines\n"
    "  SIGTERM/SIGINT: stop taking work, finish storing, exit 0.\n";

absl::Status Main(int argc, char** argv) {
  using autoq::Flags;
  autoq::FlagSpec spec{
      {"listen", "db", "client-tokens", "worker-tokens", "tls-cert",
       "tls-key", "max-model-mb", "max-message-mb", "max-jobs-per-client",
       "lease-seconds", "heartbeat-seconds", "restart-grace-seconds",
       "model-memory-mb", "model-seconds"},
      {"help", "quiet"}};
  absl::StatusOr<Flags> flags = Flags::Parse(argc, argv, 1, spec);
  if (!flags.ok()) return flags.status();
  if (flags->Has("help")) {
    std::printf("%s", kHelp);
    return absl::OkStatus();
  }
  if (!flags->positional().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("unexpected argument '", flags->positional()[0], "'"));
  }
  if (!flags->Has("client-tokens") || !flags->Has("worker-tokens")) {
    return absl::InvalidArgumentError(
        "--client-tokens and --worker-tokens are required (files of "
        "\"NAME TOKEN\" lines)");
  }
  autoq::server::ServerOptions options;
  options.listen = flags->Get("listen", options.listen);
  options.database = flags->Get("db", options.database);
  options.tls_cert_file = flags->Get("tls-cert");
  options.tls_key_file = flags->Get("tls-key");
  auto get = [&](const char* name, int64_t def, int64_t lo,
                 int64_t hi) -> absl::StatusOr<int64_t> {
    absl::StatusOr<int64_t> v = flags->GetInt(name, def);
    if (!v.ok()) return v.status();
    if (*v < lo || *v > hi) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", name, " must be in ", lo, "..", hi));
    }
    return v;
  };
  absl::StatusOr<int64_t> model_mb = get("max-model-mb", 512, 1, 2047);
  absl::StatusOr<int64_t> message_mb = get("max-message-mb", 256, 1, 1024);
  absl::StatusOr<int64_t> jobs = get("max-jobs-per-client", 4, 1, 10000);
  absl::StatusOr<int64_t> lease = get("lease-seconds", 60, 2, 86400);
  absl::StatusOr<int64_t> heartbeat = get("heartbeat-seconds", 10, 1, 28800);
  absl::StatusOr<int64_t> grace = get("restart-grace-seconds", 30, 0, 86400);
  absl::StatusOr<int64_t> check_mb =
      get("model-memory-mb", 8192, 256, int64_t{1} << 30);
  absl::StatusOr<int64_t> check_s = get("model-seconds", 120, 1, 86400);
  for (const auto* v : {&model_mb, &message_mb, &jobs, &lease, &heartbeat,
                        &grace, &check_mb, &check_s}) {
    if (!v->ok()) return v->status();
  }
  options.max_model_bytes = *model_mb << 20;
  options.max_message_bytes = static_cast<int>(*message_mb << 20);
  options.max_jobs_per_client = static_cast<int>(*jobs);
  options.lease_seconds = static_cast<int>(*lease);
  options.heartbeat_seconds = static_cast<int>(*heartbeat);
  options.restart_grace_seconds = static_cast<int>(*grace);
  // Uploaded models are loaded by this same program in its analyze-model
  // mode, as a child with limits.
  std::error_code ec;
  options.model_check.analyzer =
      std::filesystem::read_symlink("/proc/self/exe", ec).string();
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot find this program's path: ", ec.message()));
  }
  options.model_check.memory_mb = *check_mb;
  options.model_check.cpu_seconds = static_cast<int>(*check_s);
  options.model_check.wall_seconds = static_cast<int>(*check_s * 5 / 2);
  if (flags->Has("quiet")) options.log = nullptr;

  absl::StatusOr<autoq::server::TokenAuth> auth =
      autoq::server::TokenAuth::Load(flags->Get("client-tokens"),
                                     flags->Get("worker-tokens"));
  if (!auth.ok()) return auth.status();

  // Signals are handled by Asio before the server's threads start, so no
  // thread of the process takes them the default way.
  boost::asio::io_context io;
  boost::asio::signal_set signals(io, SIGTERM, SIGINT);
  absl::StatusOr<std::unique_ptr<autoq::server::AutoqServer>> server =
      autoq::server::AutoqServer::Start(options, *std::move(auth));
  if (!server.ok()) return server.status();
  signals.async_wait([&](const boost::system::error_code& ec, int signo) {
    if (ec) return;
    if (options.log != nullptr) {
      std::fprintf(options.log, "autoq-server: signal %d, shutting down\n",
                   signo);
    }
    (*server)->Shutdown();
  });
  io.run();
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  // The child the server runs to load an uploaded model (model_check.h).
  if (argc == 4 && std::string(argv[1]) == "analyze-model") {
    return autoq::server::AnalyzeModelMain(argv[2], argv[3]);
  }
  absl::Status status = Main(argc, argv);
  if (!status.ok()) {
    std::fprintf(stderr, "autoq-server: error: %s\n",
                 std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}
