// A whole search job on this machine: load the model and data, run the job
// (search/job_pipeline.h: float scores, the NSGA-II search, the final
// fine-tune of the front and of the uniform configurations) on a pool of
// local workers, then write the exports and the reports into the output
// folder: front.json, front.csv, front.svg, front/<label>/ and
// uniform/<label>/ (model.pt, weights.bin, manifest.json). `autoq run`
// calls this.
//
// Thread-safety: one RunJob per result database at a time is the expected
// use; two processes on one database only share cached results.
#ifndef AUTOQ_SEARCH_JOB_RUNNER_H_
#define AUTOQ_SEARCH_JOB_RUNNER_H_

#include <cstdint>
#include <cstdio>
#include <string>

#include "absl/status/statusor.h"
#include "search/job_config.h"
#include "search/report.h"

namespace autoq::search {

// What a job did. RunPipeline fills it; RunJob also names the written
// export files in the report's points.
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
  double total_seconds = 0;  // RunJob: loading the model and data included
  // Search wall time outside the evaluator / search wall time.
  double search_overhead() const;
  double cache_hit_rate() const;
};

absl::StatusOr<JobSummary> RunJob(const JobConfig& config,
                                  std::FILE* log = stdout);

}  // namespace autoq::search

#endif  // AUTOQ_SEARCH_JOB_RUNNER_H_
