// Any text as a job spec: ParseJobConfig must answer with a valid config or
// an InvalidArgument naming the field, never crash; a config it accepts
// must parse again from its own canonical JSON.
#include <cstddef>
#include <cstdint>
#include <string>

#include "evaluator/job_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<autoq::evaluator::JobConfig> c =
      autoq::evaluator::ParseJobConfig(text);
  if (!c.ok()) {
    if (c.status().code() != absl::StatusCode::kInvalidArgument) {
      __builtin_trap();
    }
    return 0;
  }
  if (!autoq::evaluator::ParseJobConfig(c->spec_json).ok()) __builtin_trap();
  return 0;
}
