// autoq-worker: serves AutoQ's evaluation tasks on one device. Start one
// per GPU (or one per CPU node); see evaluator/worker.h for the task loop.
//
// Signals: the first SIGTERM / SIGINT finishes the current task and leaves,
// a second one abandons it and leaves at once.
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/flags.h"
#include "common/rpc_util.h"
#include "evaluator/worker.h"
#include "qat/process_tuning.h"

namespace {

constexpr char kUsage[] =
    "usage: autoq-worker --server HOST:PORT --token-file FILE [options]\n"
    "       autoq-worker --server-file FILE --token-file FILE [options]\n"
    "\n"
    "Pulls evaluation tasks (QAT fine-tunes) from an autoq-server and runs\n"
    "them on one device; reconnects with backoff when the server is away.\n"
    "\n"
    "options:\n"
    "  --server HOST:PORT   the server's address\n"
    "  --server-file FILE   or a file whose first line is HOST:PORT; read\n"
    "                       again whenever the server is away, so a server\n"
    "                       restarted on another node is found\n"
    "  --token-file FILE    file holding the worker token (required)\n"
    "  --device DEV         cpu (default) or cuda:N\n"
    "  --name NAME          name shown by the server (default: host name)\n"
    "  --cache-dir DIR      fetched models (default:\n"
    "                       $XDG_CACHE_HOME/autoq/models or\n"
    "                       ~/.cache/autoq/models)\n"
    "  --tls-ca FILE        PEM CA of the server's certificate (TLS)\n"
    "  --threads N          intra-op threads (default: all cores)\n"
    "  --noop               no-op evaluator: synthetic results, no training\n"
    "                       (for testing the service alone)\n"
    "  --max-tasks N        leave after N tasks (default: no limit)\n"
    "  --quiet              no log lines, errors only\n"
    "\n"
    "SIGTERM/SIGINT: finish the current task and leave; a second one:\n"
    "abandon it and leave now.\n";

std::atomic<int> g_stop{autoq::evaluator::kKeepRunning};

void OnSignal(int) {
  // First signal: finish and leave; any later one: abandon and leave.
  int current = g_stop.load();
  const int next = current == autoq::evaluator::kKeepRunning
                       ? autoq::evaluator::kFinishAndLeave
                       : autoq::evaluator::kAbandonAndLeave;
  g_stop.compare_exchange_strong(current, next);
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "autoq-worker: error: %s\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 ||
        std::strcmp(argv[i], "-h") == 0) {
      std::fputs(kUsage, stdout);
      return 0;
    }
  }
  autoq::FlagSpec spec;
  spec.with_value = {"server", "server-file", "token-file",
                     "device", "name",        "cache-dir",
                     "tls-ca", "threads",     "max-tasks"};
  spec.boolean = {"noop", "quiet"};
  absl::StatusOr<autoq::Flags> flags = autoq::Flags::Parse(argc, argv, 1, spec);
  if (!flags.ok()) {
    return Fail(
        absl::StrCat(flags.status().message(), " (see autoq-worker --help)"));
  }
  if (!flags->positional().empty()) {
    return Fail(absl::StrCat("unexpected argument '", flags->positional()[0],
                             "' (see autoq-worker --help)"));
  }
  if (flags->Has("server") == flags->Has("server-file")) {
    return Fail(
        "give one of --server HOST:PORT and --server-file FILE (see "
        "autoq-worker --help)");
  }
  if (!flags->Has("token-file")) {
    return Fail("--token-file FILE is required (see autoq-worker --help)");
  }
  autoq::evaluator::WorkerOptions options;
  options.server = flags->Get("server");
  options.server_file = flags->Get("server-file");
  options.device = flags->Get("device", "cpu");
  options.name = flags->Get("name");
  options.model_cache_dir = flags->Get("cache-dir");
  options.tls_ca_file = flags->Get("tls-ca");
  options.noop = flags->Has("noop");
  if (flags->Has("quiet")) options.log = nullptr;
  absl::StatusOr<int64_t> threads = flags->GetInt("threads", 0);
  if (!threads.ok()) return Fail(std::string(threads.status().message()));
  if (*threads < 0 || *threads > 4096) {
    return Fail(absl::StrCat("--threads: ", *threads, " is not in 0..4096"));
  }
  options.threads = static_cast<int>(*threads);
  absl::StatusOr<int64_t> max_tasks = flags->GetInt("max-tasks", 0);
  if (!max_tasks.ok()) return Fail(std::string(max_tasks.status().message()));
  if (*max_tasks < 0) {
    return Fail(absl::StrCat("--max-tasks: ", *max_tasks, " is negative"));
  }
  options.max_tasks = *max_tasks;
  absl::StatusOr<std::string> token =
      autoq::ReadTokenFile(flags->Get("token-file"));
  if (!token.ok()) return Fail(std::string(token.status().message()));
  options.token = *token;

  // Before any thread starts (the allocator's arenas are per thread).
  if (!options.noop) autoq::qat::TuneProcessForTraining();
  absl::StatusOr<std::unique_ptr<autoq::evaluator::Worker>> worker =
      autoq::evaluator::Worker::Create(options);
  if (!worker.ok()) return Fail(std::string(worker.status().message()));

  struct sigaction action = {};
  action.sa_handler = OnSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);

  const absl::Status status = (*worker)->Run(g_stop);
  if (!status.ok()) return Fail(std::string(status.message()));
  return 0;
}
