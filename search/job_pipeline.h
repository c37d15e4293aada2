// One search job from start to end against any Evaluator: score the float
// model, run the NSGA-II search, fine-tune the final front (and the uniform
// configurations), and assemble the report. No files are written here:
// results and exports go to the result store, the report is returned, and
// progress goes to an observer. The service's job manager (server/) runs
// every job through this; `autoq run` is that service in one process.
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
#include "evaluator/job_config.h"
#include "qat/model_info.h"
#include "qat/quant_config.h"
#include "search/evaluation.h"
#include "search/report.h"
#include "search/result_store.h"
#include "search/search_driver.h"

namespace autoq::search {

// What a job did; RunPipeline fills it.
struct JobSummary {
  FrontReport report;
  FrontComparison comparison;
  int generations_done = 0;
  int resumed_from = -1;
  // Evaluations of the search and of the final stage.
  int64_t computed = 0;
  int64_t cached = 0;
  int64_t repeated = 0;
  double search_seconds = 0;
  double search_evaluator_seconds = 0;  // inside the evaluator (QAT)
  double final_seconds = 0;
  double total_seconds = 0;
  // Search wall time outside the evaluator / search wall time.
  double search_overhead() const;
  double cache_hit_rate() const;
};

// GenerationPoint and GenerationInfo (a generation's front, as
// OnGeneration gets it) are declared in search/search_driver.h.

// Receives a job's progress. Default methods ignore it. Calls never
// overlap (see the thread-safety note above) and must not call back into
// the pipeline; a slow observer slows the job.
class PipelineObserver {
 public:
  virtual ~PipelineObserver() = default;
  // "float", "search", "final", "done", in this order; "done" only when
  // the job succeeds.
  virtual void OnPhase(absl::string_view phase) {}
  // Every entry of every batch, cached or computed, repeats included: the
  // float model (stage kFloat, empty bits), the candidates (kSearch) and
  // the final points (kFinal). `done` of `total` entries of the current
  // batch are finished. The record's artifacts are already stored (and
  // cleared).
  virtual void OnEvaluation(evaluator::Stage stage,
                            const std::vector<qat::LayerBits>& bits,
                            const evaluator::EvalRecord& record, bool cached,
                            size_t done, size_t total) {}
  // After each generation, and once for the checkpoint a resumed search
  // starts from (info.restored).
  virtual void OnGeneration(const GenerationInfo& info) {}
};

// What RunPipeline needs besides the config: the model's identity and its
// analysis (the search needs the layers and their costs; training happens
// in the evaluator).
struct PipelineInputs {
  const evaluator::JobConfig* config = nullptr;
  std::string model_digest;  // SHA-256 of the model file's bytes
  const qat::ModelAnalysis* analysis = nullptr;
  // Printed to `log` right after the job's first line (the model and its
  // float scores): what only the caller knows, such as the data split
  // sizes and the workers. Whole lines, each ending in a newline; may be
  // empty.
  std::string log_setup;
  // One line per evaluation in `log` (FormatEvaluationLine). The service
  // turns it off: its watchers get each evaluation as a structured event,
  // which the line would only repeat.
  bool log_evaluations = true;
};

// The log's line for one evaluation, newline included:
//   "  [candidate 3/48] cpu        val  91.20%  test  90.80%    12.5 KB ..."
// `name` is the stage as the log calls it ("candidate", "final"), `where`
// the device or "cached"; a negative `test_top1` is left out.
std::string FormatEvaluationLine(absl::string_view name, size_t done,
                                 size_t total, absl::string_view where,
                                 double val_top1, double test_top1,
                                 int64_t size_bytes, double seconds,
                                 const std::vector<qat::LayerBits>& bits);

// Runs the job. Returns the summary whose report lists every final point
// with `result_key` set (its exports are the artifacts of that key in
// `store`, checked present) and empty file names; `computed`, `cached` and
// `repeated` count the search and the final stage (the float model's one
// evaluation is cached too but not counted). `log` (may be null) gets the
// same human-readable progress `autoq run` prints. When `cancelled` (may
// be null) becomes true, the pipeline stops at the next generation or batch
// boundary with CANCELLED ("job cancelled"); an evaluation failing while
// it is true also ends the job with that status. Results finished before
// then stay in `store`: a rerun continues from the last checkpoint.
// Several pipelines may share one `store` (it is thread-safe); `evaluator`
// gets one Run call at a time from this pipeline.
absl::StatusOr<JobSummary> RunPipeline(const PipelineInputs& inputs,
                                       evaluator::Evaluator* evaluator,
                                       ResultStore* store,
                                       PipelineObserver* observer,
                                       std::FILE* log,
                                       const std::atomic<bool>* cancelled);

// The cache keys' context of a job (the model digest, data, recipes and
// scheme of each stage): equal contexts share results.
KeyContext MakeKeyContext(const evaluator::JobConfig& config,
                          const std::string& model_digest);

// The report files as bytes: front.json, front.csv, front.svg (the point
// file names in them are those set in `report`).
struct ReportFiles {
  std::string json, csv, svg;
};
absl::StatusOr<ReportFiles> RenderReport(const FrontReport& report);

}  // namespace autoq::search

#endif  // AUTOQ_SEARCH_JOB_PIPELINE_H_
