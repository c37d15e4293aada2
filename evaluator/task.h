// What is asked of an evaluator and what it answers: one task scores one
// per-layer bit-width configuration at one stage. The search hands batches
// of tasks to an Evaluator (the service's remote workers, or anything a
// test provides); workers run them with evaluator/task_runner.h.
//
// Plain values, no LibTorch. Thread-safety: Evaluator implementations say
// which of their calls may overlap (see Run).
#ifndef AUTOQ_EVALUATOR_TASK_H_
#define AUTOQ_EVALUATOR_TASK_H_

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "qat/quant_config.h"
#include "qat/recipe.h"
#include "qat/sensitivity_table.h"

namespace autoq::evaluator {

enum class Stage {
  kSearch,       // the short fine-tune that scores a candidate
  kFinal,        // the full fine-tune of a final point, with its exports
  kFloat,        // the float model's val and test scores (no bits, no training)
  kSensitivity,  // per-layer weight sensitivity (no bits, no training)
  // Post-training baselines of the reports, scored on val and test with no
  // fine-tune: the float model with its parameters rounded to float16 (no
  // bits), and uniform int8 (w8a8 bits) after calibration only, with
  // per-tensor or per-channel weights whatever the job's scheme.
  kFloat16,
  kPtqPerTensor,
  kPtqPerChannel,
};

// "search", "final", "float", "sensitivity", "float16", "ptq-per-tensor",
// "ptq-per-channel": in logs and in the cache keys' text.
const char* StageName(Stage stage);

struct EvalTask {
  std::string key;  // cache key (see search::CachedEvaluation::Key)
  Stage stage = Stage::kSearch;
  std::vector<qat::LayerBits> bits;  // one per gene
};

struct EvalRecord {
  qat::QatResult qat;  // accuracies, curve, size, BOPs, times
  std::string device;  // where it ran
  // Final stage: exported files by name (stored as artifacts of the key).
  std::vector<std::pair<std::string, std::string>> artifacts;
  // The sensitivity stage's table (empty otherwise).
  std::optional<qat::SensitivityTable> sensitivity;
  // Already in the result store under its task's key, exports included
  // (the service stores a worker's result before the job hears of it):
  // search::CachedEvaluation does not write it again.
  bool stored = false;
};

// Names of the exports of a final point (artifacts of its result key, and
// the file names under front/<label>/ and uniform/<label>/).
inline constexpr char kTorchScriptArtifact[] = "model.pt";
inline constexpr char kPackedArtifact[] = "weights.bin";
inline constexpr char kManifestArtifact[] = "manifest.json";
inline constexpr const char* kFinalArtifacts[] = {
    kTorchScriptArtifact, kPackedArtifact, kManifestArtifact};
// Exports a final point may lack: the ONNX model and its encodings, or in
// their place the reason the model has no ONNX form (qat/export_onnx.h).
inline constexpr char kOnnxArtifact[] = "model.onnx";
inline constexpr char kEncodingsArtifact[] = "encodings.json";
inline constexpr char kOnnxErrorArtifact[] = "onnx_error.txt";
inline constexpr const char* kOptionalArtifacts[] = {
    kOnnxArtifact, kEncodingsArtifact, kOnnxErrorArtifact};

// Whether `name` is one of kFinalArtifacts or kOptionalArtifacts.
bool IsFinalArtifact(const std::string& name);

// Scores batches of tasks. The service's remote workers implement it; the
// search reaches evaluation only through this interface.
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

}  // namespace autoq::evaluator

#endif  // AUTOQ_EVALUATOR_TASK_H_
