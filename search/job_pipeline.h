// One search job from start to end against any Evaluator: score the float
// model, run the NSGA-II search, fine-tune the final front (and the uniform
// configurations), and assemble the report. No files are written here:
// results and exports go to the result store, the report is returned, and
// progress goes to an observer. `autoq run` (search/job_runner.h) and the
// service's job manager (server/) both run jobs through this.
//
// Thread-safety: one RunPipeline per job; the observer is called from the
// calling thread and from the evaluator's callback threads (not at once:
// calls are serialized by the pipeline).
#ifndef AUTOQ_SEARCH_JOB_PIPELINE_H_
#define AUTOQ_SEARCH_JOB_PIPELINE_H_

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "qat/model_analysis.h"
#include "qat/quant_config.h"
#include "search/evaluation.h"
#include "search/job_config.h"
#include "search/job_runner.h"
#include "search/report.h"
#include "search/result_store.h"

namespace autoq::search {

// A point of the current population's front after a generation.
struct GenerationPoint {
  std::vector<int> wbits, abits;
  int64_t size_bytes = 0;
  int64_t bops = 0;
  double val_top1 = 0;  // short-QAT validation score
};

struct GenerationInfo {
  int generation = 0;  // 0: the initial population
  int generations = 0;
  std::vector<GenerationPoint> front;  // by size
  double hypervolume = 0;  // normalized loss x size, ref (1,1)
  int64_t computed = 0;    // evaluations computed so far in this run
  int64_t cached = 0;
};

// Receives a job's progress. Default methods ignore it.
class PipelineObserver {
 public:
  virtual ~PipelineObserver() = default;
  // "float", "search", "final", "done".
  virtual void OnPhase(absl::string_view phase) {}
  virtual void OnEvaluation(Stage stage,
                            const std::vector<qat::LayerBits>& bits,
                            const EvalRecord& record, bool cached,
                            size_t done, size_t total) {}
  virtual void OnGeneration(const GenerationInfo& info) {}
};

// What RunPipeline needs besides the config: the model's identity and its
// analysis (the search needs the layers and their costs; training happens
// in the evaluator).
struct PipelineInputs {
  const JobConfig* config = nullptr;
  std::string model_digest;  // SHA-256 of the model file's bytes
  const qat::ModelAnalysis* analysis = nullptr;
};

// Runs the job. Returns the summary whose report lists every final point
// with `result_key` set (its exports are the artifacts of that key in
// `store`) and empty file names. `log` (may be null) gets the same
// human-readable progress `autoq run` prints. When `cancelled` (may be
// null) becomes true, the pipeline stops at the next generation or batch
// boundary with CANCELLED.
absl::StatusOr<JobSummary> RunPipeline(const PipelineInputs& inputs,
                                       Evaluator* evaluator,
                                       ResultStore* store,
                                       PipelineObserver* observer,
                                       std::FILE* log,
                                       const std::atomic<bool>* cancelled);

// The cache keys' context of a job (the model digest, data, recipes and
// scheme of each stage): equal contexts share results.
KeyContext MakeKeyContext(const JobConfig& config,
                          const std::string& model_digest);

// The report files as bytes: front.json, front.csv, front.svg (the point
// file names in them are those set in `report`).
struct ReportFiles {
  std::string json, csv, svg;
};
absl::StatusOr<ReportFiles> RenderReport(const FrontReport& report);

}  // namespace autoq::search

#endif  // AUTOQ_SEARCH_JOB_PIPELINE_H_
