// `autoq train-baseline`: trains the built-in small CNN on a dataset
// (Fashion-MNIST by default) and saves it as TorchScript.
#include <cstdio>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "client/baseline.h"
#include "client/commands.h"
#include "client/common.h"
#include "client/recipe_flags.h"
#include "common/file_util.h"
#include "common/status_macros.h"
#include "evaluator/score.h"
#include "qat/builtin_model.h"
#include "qat/model_analysis.h"
#include "qat/quantized_model.h"
#include "qat/tensor_dataset.h"
#include "qat/torch_errors.h"
#include "qat/trainer.h"

namespace autoq::client {
namespace {

constexpr char kHelp[] =
    "usage: autoq train-baseline [--data SPEC] [--out PATH] [options]\n"
    "  --out PATH          where to save the TorchScript model\n"
    "                      (out/builtin_fashion_mnist.pt)\n"
    "  --width X           channel width multiplier (1.0)\n"
    "  --threads N, --device cpu|cuda:N\n";

}  // namespace

qat::QatRecipe DefaultBaselineRecipe() {
  qat::QatRecipe r;
  r.epochs = 5;
  r.optimizer = "adam";
  r.lr = 0.002;
  r.weight_decay = 1e-4;
  return r;
}

absl::StatusOr<qat::QatResult> TrainBuiltinBaseline(
    const evaluator::DatasetSplits& data, const qat::QatRecipe& recipe,
    double width, c10::Device device, const std::string& out,
    const qat::ProgressOptions& progress) {
  qat::BuiltinModelOptions mopts;
  std::vector<int64_t> shape = qat::ImageShape(data.train);
  mopts.in_channels = shape.at(0);
  mopts.num_classes = std::max(data.train.num_classes, data.test.num_classes);
  mopts.width = width;
  mopts.seed = recipe.seed;
  torch::jit::Module model = qat::MakeBuiltinModel(mopts);
  ASSIGN_OR_RETURN(qat::ModelAnalysis analysis,
                   qat::AnalyzeModel(model, shape));
  qat::QuantizedModelOptions qopts;  // no bits: plain float training
  qopts.device = device;
  ASSIGN_OR_RETURN(auto trainer,
                   qat::QuantizedModel::Create(model, analysis, qopts));
  std::fprintf(stderr,
               "training the built-in model (%d layers, %lld parameters) "
               "for %d epochs on %lld images\n",
               analysis.num_genes(),
               static_cast<long long>(analysis.num_parameters), recipe.epochs,
               static_cast<long long>(data.train.size()));
  ASSIGN_OR_RETURN(qat::QatResult result,
                   qat::RunQat(*trainer, data.train, data.val, &data.test,
                               recipe, progress));
  try {
    torch::jit::Module& trained = trainer->module();
    trained.eval();
    trained.to(c10::Device(c10::kCPU));
    std::filesystem::path path(out);
    if (path.has_parent_path())
      std::filesystem::create_directories(path.parent_path());
    const std::string tmp = TempPathFor(out);
    trained.save(tmp);
    RETURN_IF_ERROR(RenameIntoPlace(tmp, out));
  } catch (const std::exception& e) {
    return absl::InternalError(
        absl::StrCat("cannot save ", out, ": ", qat::SummarizeTorchError(e)));
  }
  return result;
}

absl::Status RunTrainBaseline(int argc, char** argv) {
  FlagSpec spec{{"out", "width"}, {"help", "quiet"}};
  ASSIGN_OR_RETURN(std::optional<TrainingCommand> command,
                   StartTrainingCommand(argc, argv, spec, kHelp));
  if (!command.has_value()) return absl::OkStatus();  // --help
  const Flags& flags = command->flags;
  const c10::Device device = command->device;
  ASSIGN_OR_RETURN(qat::QatRecipe recipe,
                   RecipeFromFlags(flags, DefaultBaselineRecipe()));
  ASSIGN_OR_RETURN(double width, flags.GetDouble("width", 1.0));
  if (!(width > 0 && width <= 8)) {
    return absl::InvalidArgumentError("--width must be in (0, 8]");
  }
  const std::string out = flags.Get("out", "out/builtin_fashion_mnist.pt");
  ASSIGN_OR_RETURN(evaluator::DatasetSplits data,
                   DataFromFlags(flags, "fashion-mnist"));

  qat::ProgressOptions progress;
  if (flags.Has("quiet")) progress.out = nullptr;
  ASSIGN_OR_RETURN(
      qat::QatResult result,
      TrainBuiltinBaseline(data, recipe, width, device, out, progress));
  std::printf("saved %s: val top-1 %.2f%%, test top-1 %.2f%% (%.1f s)\n",
              out.c_str(), result.final_val_top1, result.test_top1,
              result.wall_seconds);
  return absl::OkStatus();
}

}  // namespace autoq::client
