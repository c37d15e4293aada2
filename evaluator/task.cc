#include "evaluator/task.h"

namespace autoq::evaluator {

const char* StageName(Stage stage) {
  switch (stage) {
    case Stage::kSearch:
      return "search";
    case Stage::kFinal:
      return "final";
    case Stage::kFloat:
      return "float";
    case Stage::kSensitivity:
      return "sensitivity";
    case Stage::kFloat16:
      return "float16";
    case Stage::kPtqPerTensor:
      return "ptq-per-tensor";
    case Stage::kPtqPerChannel:
      return "ptq-per-channel";
  }
  return "unknown";
}

bool IsFinalArtifact(const std::string& name) {
  for (const char* n : kFinalArtifacts) {
    if (name == n) return true;
  }
  for (const char* n : kOptionalArtifacts) {
    if (name == n) return true;
  }
  return false;
}

}  // namespace autoq::evaluator
