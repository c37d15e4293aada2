// Any bytes as a worker's CompleteTask request (a serialized proto after
// two bytes that pick the task's stage and layer count): the server's
// checks must refuse it or accept it, and what they accept must be what
// the job reads back safely: every final export present, every number
// finite, and a result that decodes (evaluator::DecodeRecord) with a
// well-formed sensitivity table.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "evaluator/task.h"
#include "evaluator/task_codec.h"
#include "server/completion_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const int stage = data[0] % 9;  // the known stages and two unknown ones
  std::vector<int> wbits(data[1] % 8);
  for (size_t i = 0; i < wbits.size(); ++i) wbits[i] = 2 + static_cast<int>(i) % 7;
  autoq::CompleteTaskRequest request;
  if (!request.ParseFromArray(data + 2, static_cast<int>(size - 2))) return 0;
  if (!autoq::server::CheckArtifactNames(request).ok()) return 0;
  if (!autoq::server::CheckResult(request, stage, wbits).ok()) return 0;

  if (stage == autoq::STAGE_FINAL) {
    for (const char* name : autoq::evaluator::kFinalArtifacts) {
      bool found = false;
      for (const auto& a : request.artifacts()) found |= a.name() == name;
      if (!found) __builtin_trap();
    }
  }
  absl::StatusOr<autoq::evaluator::EvalRecord> record =
      autoq::evaluator::DecodeRecord(request.result().SerializeAsString());
  if (!record.ok()) __builtin_trap();
  const auto& q = record->qat;
  if (!std::isfinite(q.best_val_top1) || !std::isfinite(q.test_top1) ||
      q.size_bytes < 0) {
    __builtin_trap();
  }
  if (record->sensitivity.has_value()) {
    const auto& t = *record->sensitivity;
    const size_t widths = static_cast<size_t>(t.max_bits - t.min_bits + 1);
    if (t.loss.size() != t.layers.size() || t.top1.size() != t.layers.size())
      __builtin_trap();
    for (size_t g = 0; g < t.layers.size(); ++g) {
      if (t.loss[g].size() != widths || t.top1[g].size() != widths)
        __builtin_trap();
      for (double v : t.loss[g]) {
        if (!std::isfinite(v)) __builtin_trap();
      }
    }
  }
  return 0;
}
