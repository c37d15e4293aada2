#include "client/recipe_flags.h"

#include <cstdio>
#include <utility>

#include "client/common.h"
#include "common/status_macros.h"
#include "qat/model_info.h"

namespace autoq::client {

const char kRecipeFlagsHelp[] =
    "  --epochs N          QAT epochs (0: calibrate and evaluate only)\n"
    "  --batch N           batch size (128)\n"
    "  --optimizer sgd|adam, --lr X, --momentum X, --wd X\n"
    "  --schedule cosine|constant|step   learning-rate schedule (cosine)\n"
    "  --act-delay N       epochs before activations are quantized (0)\n"
    "  --bn-freeze E       epoch from which BN statistics are frozen (never)\n"
    "  --seed S            seed of shuffling and initialization (0)\n";

const char kDataFlagsHelp[] =
    "  --data SPEC         fashion-mnist | idx:DIR | mnist:DIR | cifar10:DIR "
    "|\n"
    "                      tensor:TRAIN.pt[,TEST.pt], optional "
    ";mean=..;std=..\n"
    "                      and ;val=VAL.pt (your validation file: nothing "
    "carved)\n"
    "  --val-size N        validation images carved from train (5000)\n"
    "  --split-seed S      seed of the train/validation carve (1, as autoq "
    "run\n"
    "                      and train-baseline use: a model's own training\n"
    "                      images never land in its validation split)\n"
    "  --train-subset N, --val-subset N, --test-subset N   (0: all)\n";

void AddRecipeFlags(FlagSpec* spec) {
  spec->with_value.insert({"epochs", "batch", "optimizer", "lr", "momentum",
                           "wd", "schedule", "act-delay", "bn-freeze", "seed"});
}

void AddDataFlags(FlagSpec* spec) {
  spec->with_value.insert({"data", "val-size", "train-subset", "val-subset",
                           "test-subset", "split-seed"});
}

absl::StatusOr<qat::QatRecipe> RecipeFromFlags(const Flags& flags,
                                               qat::QatRecipe r) {
  ASSIGN_OR_RETURN(int64_t epochs, flags.GetInt("epochs", r.epochs));
  ASSIGN_OR_RETURN(r.batch_size, flags.GetInt("batch", r.batch_size));
  ASSIGN_OR_RETURN(r.lr, flags.GetDouble("lr", r.lr));
  ASSIGN_OR_RETURN(r.momentum, flags.GetDouble("momentum", r.momentum));
  ASSIGN_OR_RETURN(r.weight_decay, flags.GetDouble("wd", r.weight_decay));
  ASSIGN_OR_RETURN(int64_t delay, flags.GetInt("act-delay", r.act_quant_delay));
  ASSIGN_OR_RETURN(int64_t freeze,
                   flags.GetInt("bn-freeze", r.bn_freeze_epoch));
  ASSIGN_OR_RETURN(int64_t seed,
                   flags.GetInt("seed", static_cast<int64_t>(r.seed)));
  r.epochs = static_cast<int>(epochs);
  r.act_quant_delay = static_cast<int>(delay);
  r.bn_freeze_epoch = static_cast<int>(freeze);
  r.seed = static_cast<uint64_t>(seed);
  r.optimizer = flags.Get("optimizer", r.optimizer);
  r.lr_schedule = flags.Get("schedule", r.lr_schedule);
  RETURN_IF_ERROR(qat::ValidateRecipe(r));
  return r;
}

absl::StatusOr<std::optional<TrainingCommand>> StartTrainingCommand(
    int argc, char** argv, FlagSpec spec, const char* help) {
  AddComputeFlags(&spec);
  AddRecipeFlags(&spec);
  AddDataFlags(&spec);
  ASSIGN_OR_RETURN(Flags flags, Flags::Parse(argc, argv, 2, spec));
  if (flags.Has("help")) {
    std::printf("%s%s%s", help, kRecipeFlagsHelp, kDataFlagsHelp);
    return std::nullopt;
  }
  RETURN_IF_ERROR(ApplyThreads(flags));
  ASSIGN_OR_RETURN(c10::Device device, ParseDevice(flags));
  return TrainingCommand{std::move(flags), device};
}

absl::StatusOr<evaluator::DatasetSplits> DataFromFlags(
    const Flags& flags, const std::string& default_spec) {
  ASSIGN_OR_RETURN(evaluator::DataSpec spec,
                   evaluator::ParseDataSpec(flags.Get("data", default_spec)));
  evaluator::SplitOptions split;
  ASSIGN_OR_RETURN(split.val_size, flags.GetInt("val-size", split.val_size));
  ASSIGN_OR_RETURN(split.train_subset, flags.GetInt("train-subset", 0));
  ASSIGN_OR_RETURN(split.val_subset, flags.GetInt("val-subset", 0));
  ASSIGN_OR_RETURN(split.test_subset, flags.GetInt("test-subset", 0));
  ASSIGN_OR_RETURN(int64_t split_seed,
                   flags.GetInt("split-seed", kDefaultSplitSeed));
  if (split_seed < 0) {
    return absl::InvalidArgumentError("--split-seed must be >= 0");
  }
  split.seed = static_cast<uint64_t>(split_seed);
  if (flags.Has("input")) {  // image folders are fitted to the model's input
    ASSIGN_OR_RETURN(split.input_shape, qat::ParseShape(flags.Get("input")));
  }
  ASSIGN_OR_RETURN(evaluator::DatasetSplits data,
                   evaluator::LoadDataset(spec, split));
  // Skipped images, empty classes, streaming: on stderr, so --json output
  // stays one document.
  for (const std::string& note : data.notes) {
    std::fprintf(stderr, "autoq: note: %s\n", note.c_str());
  }
  return data;
}

}  // namespace autoq::client
