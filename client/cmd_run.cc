// `autoq run CONFIG`: the one-machine mode. Runs a whole search job (see
// search/job_runner.h) from a JSON job spec, training the built-in model
// first when the config names it and it is absent.
#include <cstdio>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/baseline.h"
#include "client/commands.h"
#include "client/common.h"
#include "evaluator/dataset.h"
#include "qat/status_macros.h"
#include "search/job_config.h"
#include "search/job_runner.h"

namespace autoq::client {
namespace {

constexpr char kHelp[] =
    "usage: autoq run CONFIG.json [--threads N] [--quiet]\n"
    "  Runs the search job CONFIG (an autoq.JobSpec in JSON, see configs/):\n"
    "  NSGA-II over per-layer bit-widths with a short QAT per candidate,\n"
    "  then the full fine-tune and export of the final Pareto front.\n"
    "  Results are cached in the job's SQLite database: rerunning computes\n"
    "  nothing twice and a killed run resumes from its last generation.\n"
    "  --threads N   intra-op threads per worker (overrides the config)\n"
    "  --quiet       print only the final summary\n";

absl::Status EnsureBuiltinModel(const search::JobConfig& config) {
  if (config.builtin.empty() || std::filesystem::exists(config.model_path)) {
    return absl::OkStatus();
  }
  std::fprintf(stderr, "%s is absent: training the built-in model first\n",
               config.model_path.c_str());
  ASSIGN_OR_RETURN(evaluator::DataSpec spec,
                   evaluator::ParseDataSpec(config.data_spec));
  evaluator::SplitOptions split;
  split.val_size = config.val_size;
  split.seed = config.split_seed;
  ASSIGN_OR_RETURN(evaluator::DatasetSplits data,
                   evaluator::LoadDataset(spec, split));
  qat::QatRecipe recipe = DefaultBaselineRecipe();
  recipe.seed = config.split_seed;
  ASSIGN_OR_RETURN(qat::QatResult result,
                   TrainBuiltinBaseline(data, recipe, 1.0, c10::kCPU,
                                        config.model_path, {}));
  std::printf("saved %s: val top-1 %.2f%%, test top-1 %.2f%% (%.1f s)\n",
              config.model_path.c_str(), result.final_val_top1,
              result.test_top1, result.wall_seconds);
  return absl::OkStatus();
}

void PrintSummary(const search::JobConfig& config,
                  const search::JobSummary& s) {
  const search::FrontReport& r = s.report;
  std::vector<search::TableRow> rows;
  for (const auto* list : {&r.front, &r.uniform}) {
    for (const search::FrontPoint& p : *list) {
      rows.push_back(search::TableRow{p.label, p.size_bytes, p.test_top1,
                                      p.wbits, p.abits});
    }
  }
  std::printf("\n== final front after the full fine-tune, test top-1 "
              "(float %.2f%%)\n%s",
              r.float_test_top1,
              search::FormatFrontTable(rows, r.float_test_top1,
                                       r.float_size_bytes)
                  .c_str());
  std::printf("hypervolume (test, normalized loss x size, ref (1,1)): "
              "front %.4f, uniform %.4f\n",
              s.comparison.front_hypervolume, s.comparison.uniform_hypervolume);
  if (!r.uniform.empty()) {
    std::printf("smaller than every uniform configuration at least as "
                "accurate: %s\n",
                s.comparison.beating_points.empty()
                    ? "none"
                    : absl::StrJoin(s.comparison.beating_points, ", ").c_str());
  }
  std::printf("evaluations: %lld computed, %lld cached (cache hit rate "
              "%.1f%%), %lld repeats within a batch\n",
              static_cast<long long>(s.computed),
              static_cast<long long>(s.cached), 100.0 * s.cache_hit_rate(),
              static_cast<long long>(s.repeated));
  std::printf("time: search %.1f s (overhead outside QAT %.3f%%), final "
              "fine-tune %.1f s, total %.1f s\n",
              s.search_seconds, 100.0 * s.search_overhead(), s.final_seconds,
              s.total_seconds);
  std::printf("exports and reports in %s/ (front.json, front.csv, "
              "front.svg, front/<point>/model.pt, weights.bin, "
              "manifest.json)\n",
              config.output_dir.c_str());
}

}  // namespace

absl::Status RunRun(int argc, char** argv) {
  FlagSpec spec{{"threads"}, {"help", "quiet"}};
  ASSIGN_OR_RETURN(Flags flags, Flags::Parse(argc, argv, 2, spec));
  if (flags.Has("help")) {
    std::printf("%s", kHelp);
    return absl::OkStatus();
  }
  if (flags.positional().size() != 1) {
    return absl::InvalidArgumentError(
        "expected one config file: autoq run CONFIG.json");
  }
  ASSIGN_OR_RETURN(search::JobConfig config,
                   search::LoadJobConfig(flags.positional()[0]));
  if (flags.Has("threads")) {
    ASSIGN_OR_RETURN(int64_t threads, flags.GetInt("threads", 0));
    if (threads < 1 || threads > 1024) {
      return absl::InvalidArgumentError("--threads must be in 1..1024");
    }
    config.threads = static_cast<int>(threads);
  }
  RETURN_IF_ERROR(EnsureBuiltinModel(config));
  ASSIGN_OR_RETURN(search::JobSummary summary,
                   search::RunJob(config, flags.Has("quiet") ? nullptr : stdout));
  PrintSummary(config, summary);
  return absl::OkStatus();
}

}  // namespace autoq::client
