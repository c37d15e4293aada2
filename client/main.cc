// autoq: the AutoQ command line.
#include <cstdio>
#include <cstring>
#include <string>

#include "client/commands.h"
#include "qat/process_tuning.h"

namespace {

constexpr char kUsage[] =
    "usage: autoq COMMAND [options]\n"
    "\n"
    "commands:\n"
    "  run CONFIG.json [--threads N] [--quiet]\n"
    "      search per-layer bit-widths (NSGA-II + QAT), fine-tune and export\n"
    "      the Pareto front; results cached, resumable (see configs/)\n"
    "  inspect MODEL.pt [--input C,H,W] [--json]\n"
    "      list the quantizable layers, BN folds, activations and MACs\n"
    "  eval --model M --data SPEC --bits 8,4,... [--abits ...]\n"
    "       [--scheme per-tensor|per-channel] [--epochs N] [...]\n"
    "      quantize to a per-layer bit-width config, fine-tune with QAT,\n"
    "      report accuracy, size and BOPs\n"
    "  train-baseline [--data fashion-mnist] [--out model.pt] [--epochs N]\n"
    "      train the built-in small CNN and save it as TorchScript\n"
    "\n"
    "Run 'autoq COMMAND --help' for a command's options.\n";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 ||
      std::strcmp(argv[1], "-h") == 0 || std::strcmp(argv[1], "help") == 0) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  autoq::qat::TuneProcessForTraining();
  const std::string cmd = argv[1];
  absl::Status status;
  if (cmd == "inspect") {
    status = autoq::client::RunInspect(argc, argv);
  } else if (cmd == "eval") {
    status = autoq::client::RunEval(argc, argv);
  } else if (cmd == "run") {
    status = autoq::client::RunRun(argc, argv);
  } else if (cmd == "train-baseline") {
    status = autoq::client::RunTrainBaseline(argc, argv);
  } else {
    std::fprintf(stderr, "autoq: unknown command '%s'\n\n%s", cmd.c_str(),
                 kUsage);
    return 2;
  }
  if (!status.ok()) {
    std::fprintf(stderr, "autoq %s: error: %s\n", cmd.c_str(),
                 std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}
