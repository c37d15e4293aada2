// autoq: the AutoQ command line.
#include <cstdio>
#include <cstring>
#include <string>

#include "absl/strings/str_replace.h"
#include "client/commands.h"
#include "qat/process_tuning.h"

namespace {

constexpr char kUsage[] =
    "usage: autoq COMMAND [options]\n"
    "\n"
    "one machine:\n"
#ifndef AUTOQ_CORE_ONLY
    "  run CONFIG.json [--threads N] [--quiet]\n"
    "      search per-layer bit-widths (NSGA-II + QAT), fine-tune and export\n"
    "      the Pareto front; results cached, resumable (see configs/)\n"
#endif
    "  inspect MODEL.pt [--input C,H,W] [--json]\n"
    "      list the quantizable layers, BN folds, activations and MACs\n"
    "  eval --model M --data SPEC --bits 8,4,... [--abits ...]\n"
    "       [--scheme per-tensor|per-channel] [--epochs N] [...]\n"
    "      quantize to a per-layer bit-width config, fine-tune with QAT,\n"
    "      report accuracy, size and BOPs\n"
    "  train-baseline [--data fashion-mnist] [--out model.pt] [--epochs N]\n"
    "      train the built-in small CNN and save it as TorchScript\n"
    "\n"
#ifndef AUTOQ_CORE_ONLY
    "service (an autoq-server; --server HOST:PORT, --token-file F,\n"
    "--tls-ca F, --timeout SECONDS):\n"
    "  submit CONFIG.json [--model PATH] [--watch]\n"
    "      check a job spec, upload it with its model, print the job id\n"
    "  watch JOB [--json]\n"
    "      follow a job: front per generation, evaluations, the final front\n"
    "  list [--json]\n"
    "      your jobs with state, phase, generation and evaluation counts\n"
    "  cancel JOB\n"
    "      stop a job\n"
    "  results JOB [--json]\n"
    "      the final front of a finished job and its artifacts\n"
    "  download JOB [NAME ...] [-o DIR]\n"
    "      fetch exported models and reports (default: all, into ./JOB)\n"
    "\n"
#endif
    "Run 'autoq COMMAND --help' for a command's options.\n";

struct Command {
  const char* name;
  absl::Status (*run)(int argc, char** argv);
  bool trains;  // runs LibTorch training in this process
};

constexpr Command kCommands[] = {
    {"inspect", autoq::client::RunInspect, true},
    {"eval", autoq::client::RunEval, true},
    {"train-baseline", autoq::client::RunTrainBaseline, true},
#ifndef AUTOQ_CORE_ONLY  // the QAT core alone: no search, no service
    {"run", autoq::client::RunRun, true},
    {"sensitivity", autoq::client::RunSensitivity, true},
    {"submit", autoq::client::RunSubmit, false},
    {"watch", autoq::client::RunWatch, false},
    {"list", autoq::client::RunList, false},
    {"cancel", autoq::client::RunCancel, false},
    {"results", autoq::client::RunResults, false},
    {"download", autoq::client::RunDownload, false},
#endif
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 ||
      std::strcmp(argv[1], "-h") == 0 || std::strcmp(argv[1], "help") == 0) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string cmd = argv[1];
  const Command* command = nullptr;
  for (const Command& c : kCommands) {
    if (cmd == c.name) command = &c;
  }
  if (command == nullptr) {
    std::fprintf(stderr, "autoq: unknown command '%s'\n\n%s", cmd.c_str(),
                 kUsage);
    return 2;
  }
  if (command->trains) autoq::qat::TuneProcessForTraining();
  const absl::Status status = command->run(argc, argv);
  if (!status.ok()) {
    // One line, whatever the message (server errors may span several).
    const std::string message = absl::StrReplaceAll(
        status.message(), {{"\r\n", "; "}, {"\n", "; "}, {"\r", " "}});
    std::fprintf(stderr, "autoq %s: error: %s\n", cmd.c_str(), message.c_str());
    return 1;
  }
  return 0;
}
