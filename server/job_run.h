// Private to the job manager: the parts of a service job that need LibTorch
// (validating a submitted model, running the pipeline), behind an interface
// free of LibTorch headers.
//
// Thread-safety: reentrant; each call works on its own data.
#ifndef AUTOQ_SERVER_JOB_RUN_H_
#define AUTOQ_SERVER_JOB_RUN_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/autoq.pb.h"
#include "server/model_check.h"
#include "server/task_queue.h"

namespace autoq::search {
class ResultStore;
}

namespace autoq::server {

// What a submitted job needs to be accepted: a spec that validates and a
// model that loads as TorchScript and has quantizable layers for the input
// shape, analyzed as `model_check` says. INVALID_ARGUMENT with the reason
// otherwise, RESOURCE_EXHAUSTED for a model over the analyzer's limits.
struct JobCheck {
  std::vector<std::string> warnings;
  int generations = 0;
};
// `model_sha256`: the model's digest in hex (empty: computed).
absl::StatusOr<JobCheck> CheckJob(const JobSpec& spec,
                                  const std::string& model_bytes,
                                  const std::string& model_sha256,
                                  const ModelCheckOptions& model_check);

struct JobRunContext {
  std::string job_id;
  JobSpec spec;
  std::string model_bytes;
  std::string model_sha256;  // hex; empty: computed from model_bytes
  const ModelCheckOptions* model_check = nullptr;  // null: defaults
  search::ResultStore* results = nullptr;
  TaskQueue* queue = nullptr;
  const std::atomic<bool>* stop = nullptr;       // server shutdown
  const std::atomic<bool>* cancelled = nullptr;  // the user cancelled
  // Events for watchers (not the final ones: the caller publishes those).
  std::function<void(JobEvent)> publish;
  std::function<void(const std::string& phase)> on_phase;
  std::function<void(int generation, int64_t computed, int64_t cached)>
      on_progress;
};

// Runs the whole job; on success the reports are stored as artifacts of
// ReportKey(job_id) and the returned front lists every downloadable file.
absl::StatusOr<FinalFront> RunServiceJob(const JobRunContext& context);

// The result-store key under which a job's report files are stored.
std::string ReportKey(const std::string& job_id);

// Report files of a finished job.
inline constexpr const char* kReportFiles[] = {"front.json", "front.csv",
                                               "front.svg"};

}  // namespace autoq::server

#endif  // AUTOQ_SERVER_JOB_RUN_H_
