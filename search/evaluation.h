// The evaluation interface of the search and the cache in front of it.
//
// The search never trains anything itself: it hands batches of bit-width
// configurations to an Evaluator (today a pool of local workers, later the
// remote workers of the service) through CachedEvaluation, which answers
// from the SQLite result cache first, sends each distinct missing key to
// the evaluator once, and stores every result the moment it arrives, so a
// killed run loses no finished evaluation.
#ifndef AUTOQ_SEARCH_EVALUATION_H_
#define AUTOQ_SEARCH_EVALUATION_H_

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "qat/quant_config.h"
#include "qat/trainer.h"
#include "search/result_store.h"

namespace autoq::search {

enum class Stage {
  kSearch,  // the short fine-tune that scores a candidate
  kFinal,   // the full fine-tune of a final point, with its exports
  kFloat,   // the float model's val and test scores (no bits, no training)
};

struct EvalTask {
  std::string key;  // cache key (see CachedEvaluation::Key)
  Stage stage = Stage::kSearch;
  std::vector<qat::LayerBits> bits;  // one per gene
};

struct EvalRecord {
  qat::QatResult qat;  // accuracies, curve, size, BOPs, times
  std::string device;  // where it ran
  // Final stage: exported files by name (stored as artifacts of the key).
  std::vector<std::pair<std::string, std::string>> artifacts;
  // Already in the result store under its task's key, exports included
  // (the service stores a worker's result before the job hears of it):
  // CachedEvaluation does not write it again.
  bool stored = false;
};

// Scores batches of tasks. Implementations: LocalWorkerPool (threads bound
// to devices in this process) and the service's remote workers.
class Evaluator {
 public:
  using Callback =
      std::function<void(size_t index, absl::StatusOr<EvalRecord> result)>;
  virtual ~Evaluator() = default;
  // Scores every task, calling `done` exactly once per task as soon as it
  // finishes (from any thread; calls may overlap). Returns when all tasks
  // are done. Called by one thread at a time.
  virtual void Run(const std::vector<EvalTask>& tasks,
                   const Callback& done) = 0;
};

// What identifies a result besides the bits: hashed into every key.
struct KeyContext {
  std::string model_digest;  // SHA-256 of the model file
  std::string data;          // dataset spec and split options
  std::string search_stage;  // recipe, scheme and train subset of a candidate
  std::string final_stage;   // the same for the final fine-tune
};

struct EvalStats {
  int64_t computed = 0;  // results computed by the evaluator
  int64_t cached = 0;    // answered by the result store
  int64_t repeated = 0;  // equal to another entry of the same batch
  double evaluator_seconds = 0;  // wall time inside Evaluator::Run
};

// Progress of one finished entry of a batch: its index in the batch, the
// record, whether it came from the cache, finished / total so far.
using EvalProgress = std::function<void(size_t index, const EvalRecord& record,
                                        bool cached, size_t finished,
                                        size_t total)>;

// Thread-compatible: one Evaluate call at a time.
class CachedEvaluation {
 public:
  // `store` and `evaluator` must outlive this object.
  CachedEvaluation(ResultStore* store, Evaluator* evaluator, KeyContext keys);

  // The cache key of `bits` at `stage`: the model digest, the data, the
  // stage's recipe and scheme and the bits. A kFloat key has the model
  // digest and the data only (its bits are empty).
  std::string Key(Stage stage, const std::vector<qat::LayerBits>& bits) const;

  // One record per entry of `batch`, in order. Fails with the first
  // evaluation error after the rest of the batch has finished (and been
  // stored).
  absl::StatusOr<std::vector<EvalRecord>> Evaluate(
      Stage stage, const std::vector<std::vector<qat::LayerBits>>& batch,
      const EvalProgress& progress = nullptr);

  // Artifacts stored for a final-stage key.
  absl::StatusOr<std::optional<std::string>> Artifact(
      const std::string& key, const std::string& name) const;

  const EvalStats& stats() const { return stats_; }

 private:
  ResultStore* store_;
  Evaluator* evaluator_;
  KeyContext keys_;
  EvalStats stats_;
};

// The value stored in the cache for a record (an autoq.EvalResult), and back.
std::string EncodeRecord(const EvalRecord& record,
                         const std::vector<qat::LayerBits>& bits);
absl::StatusOr<EvalRecord> DecodeRecord(const std::string& value);

}  // namespace autoq::search

#endif  // AUTOQ_SEARCH_EVALUATION_H_
