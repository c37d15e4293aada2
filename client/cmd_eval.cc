// `autoq eval`: quantize a model to one bit-width configuration, fine-tune
// it with QAT and report accuracy (vs. float), size and BOPs.
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/commands.h"
#include "client/common.h"
#include "client/recipe_flags.h"
#include "common/status_macros.h"
#include "evaluator/score.h"
#include "qat/cost_model.h"
#include "qat/model_analysis.h"
#include "qat/tensor_dataset.h"

namespace autoq::client {
namespace {

constexpr char kHelp[] =
    "usage: autoq eval --model M.pt --data SPEC --bits B [options]\n"
    "  --bits 8,4,4,...    weight bits per quantizable layer (2..8), or one\n"
    "                      value for all layers; see 'autoq inspect'\n"
    "  --abits 8,f,...     activation bits per layer (2..8, f = float); 8\n"
    "  --scheme per-tensor|per-channel   weight quantization (per-tensor)\n"
    "  --range minmax|mse  weight range setting (minmax)\n"
    "  --bn-fold approx|exact|none       BN folding, per-tensor only (approx)\n"
    "  --input C,H,W       model input shape (default: the dataset's)\n"
    "  --json              print the result as JSON\n"
    "  --per-class         also print per-class test top-1\n"
    "  --threads N, --device cpu|cuda:N\n";

}  // namespace

absl::Status RunEval(int argc, char** argv) {
  FlagSpec spec{
      {"model", "bits", "abits", "scheme", "range", "bn-fold", "input"},
      {"json", "help", "quiet", "per-class"}};
  ASSIGN_OR_RETURN(std::optional<TrainingCommand> command,
                   StartTrainingCommand(argc, argv, spec, kHelp));
  if (!command.has_value()) return absl::OkStatus();  // --help
  const Flags& flags = command->flags;
  const c10::Device device = command->device;
  if (!flags.Has("model") || !flags.Has("bits")) {
    return absl::InvalidArgumentError(
        "--model and --bits are required (see autoq eval --help)");
  }
  ASSIGN_OR_RETURN(qat::QatRecipe recipe, RecipeFromFlags(flags, {}));
  evaluator::ScoreRequest request;
  request.recipe = recipe;
  request.device = device;
  if (flags.Has("quiet")) request.progress.out = nullptr;
  ASSIGN_OR_RETURN(request.scheme.granularity,
                   qat::ParseGranularity(flags.Get("scheme", "per-tensor")));
  ASSIGN_OR_RETURN(request.scheme.range,
                   qat::ParseRangeMethod(flags.Get("range", "minmax")));
  ASSIGN_OR_RETURN(request.scheme.bn_fold,
                   qat::ParseBnFold(flags.Get("bn-fold", "approx")));

  ASSIGN_OR_RETURN(torch::jit::Module module,
                   qat::LoadModel(flags.Get("model")));
  ASSIGN_OR_RETURN(evaluator::DatasetSplits data,
                   DataFromFlags(flags, "fashion-mnist"));
  std::vector<int64_t> shape = qat::ImageShape(data.train);
  if (flags.Has("input")) {
    ASSIGN_OR_RETURN(shape, qat::ParseShape(flags.Get("input")));
  }
  ASSIGN_OR_RETURN(qat::ModelAnalysis analysis,
                   qat::AnalyzeModel(module, shape));
  const size_t genes = static_cast<size_t>(analysis.num_genes());
  ASSIGN_OR_RETURN(std::vector<int> wbits,
                   qat::ParseBitList(flags.Get("bits"), genes, false));
  ASSIGN_OR_RETURN(std::vector<int> abits,
                   qat::ParseBitList(flags.Get("abits", "8"), genes, true));
  for (size_t i = 0; i < genes; ++i)
    request.bits.push_back({wbits[i], abits[i]});

  ASSIGN_OR_RETURN(
      evaluator::ClassificationMetrics float_val,
      evaluator::EvaluateFloat(module, analysis, data.val, device));
  ASSIGN_OR_RETURN(
      evaluator::ClassificationMetrics float_test,
      evaluator::EvaluateFloat(module, analysis, data.test, device));
  ASSIGN_OR_RETURN(evaluator::Score score,
                   evaluator::ScoreChromosome(module, analysis, data, request));
  const qat::QatResult& r = score.qat;
  const double compression =
      static_cast<double>(analysis.float_size_bytes) / r.size_bytes;
  if (flags.Has("json")) {
    std::string curve;
    for (const qat::EpochStats& e : r.curve) {
      absl::StrAppend(
          &curve, curve.empty() ? "" : ",",
          absl::StrFormat("{\"epoch\":%d,\"train_loss\":%.5f,"
                          "\"train_top1\":%.3f,\"val_top1\":%.3f,"
                          "\"acts_quantized\":%s,\"images_per_s\":%.1f}",
                          e.epoch, e.train_loss, e.train_top1, e.val_top1,
                          e.acts_quantized ? "true" : "false", e.images_per_s));
    }
    std::printf(
        "{\"bits\":%s,\"abits\":%s,\"scheme\":%s,\"float_val_top1\":%.3f,"
        "\"float_test_top1\":%.3f,\"best_val_top1\":%.3f,\"best_epoch\":%d,"
        "\"test_top1\":%.3f,\"test_top5\":%.3f,\"size_bytes\":%lld,"
        "\"float_size_bytes\":%lld,\"compression\":%.3f,\"bops\":%lld,"
        "\"train_seconds\":%.2f,\"per_class_test_top1\":[%s],\"curve\":[%s]}\n",
        JsonString(qat::FormatBitList(wbits)).c_str(),
        JsonString(qat::FormatBitList(abits)).c_str(),
        JsonString(qat::GranularityName(request.scheme.granularity)).c_str(),
        float_val.top1, float_test.top1, r.best_val_top1, r.best_epoch,
        score.test.top1, score.test.top5, static_cast<long long>(r.size_bytes),
        static_cast<long long>(analysis.float_size_bytes), compression,
        static_cast<long long>(r.bops), r.train_seconds,
        absl::StrJoin(score.test.per_class_top1, ",",
                      [](std::string* out, double v) {
                        absl::StrAppendFormat(out, "%.3f", v);
                      })
            .c_str(),
        curve.c_str());
    return absl::OkStatus();
  }
  std::printf("model        %s (%d quantizable layers)\n",
              flags.Get("model").c_str(), analysis.num_genes());
  std::printf("config       w=%s a=%s %s/%s\n",
              qat::FormatBitList(wbits).c_str(),
              qat::FormatBitList(abits).c_str(),
              qat::GranularityName(request.scheme.granularity).c_str(),
              qat::RangeMethodName(request.scheme.range).c_str());
  std::printf("float        val top-1 %.2f%%  test top-1 %.2f%%\n",
              float_val.top1, float_test.top1);
  std::printf(
      "quantized    val top-1 %.2f%% (best, epoch %d, %+.2f pp)  "
      "test top-1 %.2f%% (%+.2f pp)  top-5 %.2f%%\n",
      r.best_val_top1, r.best_epoch, r.best_val_top1 - float_val.top1,
      score.test.top1, score.test.top1 - float_test.top1, score.test.top5);
  std::printf(
      "size         %.2f KB (%lld bytes), %.2fx smaller than float "
      "(%.1f KB)\n",
      r.size_bytes / 1024.0, static_cast<long long>(r.size_bytes), compression,
      analysis.float_size_bytes / 1024.0);
  std::printf("BOPs         %.4g (%.3f MMACs)\n", static_cast<double>(r.bops),
              analysis.total_macs / 1e6);
  if (!r.curve.empty() && recipe.epochs > 0) {
    std::printf("QAT          %d epochs in %.1f s (%.0f images/s)\n",
                recipe.epochs, r.train_seconds, r.curve.back().images_per_s);
  }
  if (flags.Has("per-class")) {
    std::printf("\ntest split, quantized model:\n%s",
                evaluator::FormatMetrics(score.test).c_str());
  }
  return absl::OkStatus();
}

}  // namespace autoq::client
