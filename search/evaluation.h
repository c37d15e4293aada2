// The cache in front of the search's evaluator.
//
// The search never trains anything itself: it hands batches of bit-width
// configurations to an evaluator::Evaluator (the service's remote workers)
// through CachedEvaluation, which answers
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
#include "evaluator/task.h"
#include "qat/quant_config.h"
#include "search/result_store.h"

namespace autoq::search {

// What identifies a result besides the bits: hashed into every key.
struct KeyContext {
  std::string model_digest;  // SHA-256 of the model file
  std::string data;          // dataset spec and split options
  std::string search_stage;  // recipe, scheme and train subset of a candidate
  std::string final_stage;   // the same for the final fine-tune
  // Scheme, bit range and images of the sensitivity measurement.
  std::string sensitivity_stage;
  // Scheme (but granularity: the stage names it) and calibration images of
  // the int8 PTQ baselines.
  std::string ptq_stage;
};

struct EvalStats {
  int64_t computed = 0;          // results computed by the evaluator
  int64_t cached = 0;            // answered by the result store
  int64_t repeated = 0;          // equal to another entry of the same batch
  double evaluator_seconds = 0;  // wall time inside evaluator::Evaluator::Run
};

// Progress of one finished entry of a batch: its index in the batch, the
// record, whether it came from the cache, finished / total so far.
using EvalProgress =
    std::function<void(size_t index, const evaluator::EvalRecord& record,
                       bool cached, size_t finished, size_t total)>;

// Thread-compatible: one Evaluate call at a time.
class CachedEvaluation {
 public:
  // `store` and `evaluator` must outlive this object.
  CachedEvaluation(ResultStore* store, evaluator::Evaluator* evaluator,
                   KeyContext keys);

  // The cache key of `bits` at `stage`: the model digest, the data, the
  // stage's recipe and scheme and the bits. kFloat and kFloat16 keys have
  // the model digest and the data only (their bits are empty).
  std::string Key(evaluator::Stage stage,
                  const std::vector<qat::LayerBits>& bits) const;

  // One record per entry of `batch`, in order. Fails with the first
  // evaluation error after the rest of the batch has finished (and been
  // stored).
  absl::StatusOr<std::vector<evaluator::EvalRecord>> Evaluate(
      evaluator::Stage stage,
      const std::vector<std::vector<qat::LayerBits>>& batch,
      const EvalProgress& progress = nullptr);
  // The same for a batch whose entries have stages of their own (the
  // post-training baselines): one batch, so remote workers run them side
  // by side.
  struct Entry {
    evaluator::Stage stage;
    std::vector<qat::LayerBits> bits;
  };
  absl::StatusOr<std::vector<evaluator::EvalRecord>> Evaluate(
      const std::vector<Entry>& batch, const EvalProgress& progress = nullptr);

  // Artifacts stored for a final-stage key.
  absl::StatusOr<std::optional<std::string>> Artifact(
      const std::string& key, const std::string& name) const;

  const EvalStats& stats() const { return stats_; }

 private:
  ResultStore* store_;
  evaluator::Evaluator* evaluator_;
  KeyContext keys_;
  EvalStats stats_;
};

}  // namespace autoq::search

#endif  // AUTOQ_SEARCH_EVALUATION_H_
