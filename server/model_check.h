// Loading and analyzing an uploaded model apart from the server. A
// TorchScript model is code: a broken or hostile one may crash the loader
// (its __setstate__ runs at load), never return, or allocate without bound.
// So the server does not load one in its own process: it runs an analyzer
// program (autoq-server itself, or `autoq` for `autoq run`, in their
// `analyze-model` mode) as a child with limits on its address space, CPU
// time and wall time, and reads the analysis back as JSON on a pipe.
//
// Thread-safety: AnalyzeModelApart may run on several threads at once.
#ifndef AUTOQ_SERVER_MODEL_CHECK_H_
#define AUTOQ_SERVER_MODEL_CHECK_H_

#include <cstddef>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "qat/model_info.h"

namespace autoq::server {

// Analyses made before, by model digest and input shape: a job's model is
// analyzed when it is submitted and again each time its thread starts (at
// once, after a restart, after waiting for disk space), and each analysis
// is a child process that loads LibTorch and the model. Only successful
// analyses are kept; the least recently used goes past `capacity`.
//
// Thread-safety: all methods may be called from any thread at once.
class AnalysisCache {
 public:
  explicit AnalysisCache(size_t capacity = 32)
      : capacity_(capacity < 1 ? 1 : capacity) {}
  std::optional<qat::ModelAnalysis> Get(const std::string& key);
  void Put(const std::string& key, const qat::ModelAnalysis& analysis);

 private:
  const size_t capacity_;
  std::mutex mu_;
  // Most recently used first; the map points into the list. Guarded by mu_.
  std::list<std::pair<std::string, qat::ModelAnalysis>> entries_;
  std::map<std::string, decltype(entries_)::iterator> by_key_;
};

struct ModelCheckOptions {
  // The program run as `ANALYZER analyze-model FILE C,H,W` (see
  // AnalyzeModelMain). Empty: the model is loaded in this process, for
  // embedders that trust their models (benchmarks).
  std::string analyzer;
  // Where the model's bytes are written for the child (default: the
  // system's temporary folder).
  std::string tmp_dir;
  // Limits of the child: address space, CPU seconds, wall seconds.
  // Defaults 8192 MB, 120 s, 300 s; clamped to 64.. MB and 1.. s.
  int64_t memory_mb = 8192;
  int cpu_seconds = 120;
  int wall_seconds = 300;
  // Where analyses are remembered; null: every call analyzes.
  std::shared_ptr<AnalysisCache> cache;
};

// The analysis of `model_bytes` at `input_shape`: qat::AnalyzeModel's, run
// as options say. `model_sha256` is the model's digest in hex, the cache's
// key (empty: computed here; callers that store the model have it). Errors: InvalidArgument for a model that is not
// TorchScript, is refused by the analysis (naming why), or crashes the
// analyzer (naming the signal); ResourceExhausted for one that runs out of
// memory or time; Internal when the analyzer cannot be started.
absl::StatusOr<qat::ModelAnalysis> AnalyzeModelApart(
    const std::string& model_bytes, const std::string& model_sha256,
    const std::vector<int64_t>& input_shape, const ModelCheckOptions& options);

// The analyzer's side, for the programs' main: loads `path`, analyzes it
// at `shape` ("C,H,W") and prints the analysis as JSON on stdout. Returns
// the exit status: 0; 3 when the model is refused (the reason on stderr);
// 4 when it runs out of memory.
int AnalyzeModelMain(const std::string& path, const std::string& shape);

// The JSON form the analyzer prints, and back.
std::string AnalysisToJson(const qat::ModelAnalysis& analysis);
absl::StatusOr<qat::ModelAnalysis> AnalysisFromJson(absl::string_view json);

}  // namespace autoq::server

#endif  // AUTOQ_SERVER_MODEL_CHECK_H_
