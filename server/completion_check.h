// What the server accepts from a worker as a task's result, checked before
// anything is stored: a worker is trusted with a token, not with its
// payload (a bug, a version skew or a hostile node can send anything).
// Torch-free; fuzzed by fuzz/completion_fuzzer.cc.
//
// Thread-safety: pure functions.
#ifndef AUTOQ_SERVER_COMPLETION_CHECK_H_
#define AUTOQ_SERVER_COMPLETION_CHECK_H_

#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "proto/autoq.pb.h"

namespace autoq::server {

// The artifact names of a completion: only a final point's exports
// (evaluator::IsFinalArtifact), so a worker cannot plant other names in the
// database. INVALID_ARGUMENT naming the first bad one.
absl::Status CheckArtifactNames(const CompleteTaskRequest& request);

// The result of a completion for a task of `stage` with bit-widths
// `wbits`: the task's bit-widths (but for the float task), a final task's
// required exports, every number finite and sizes not negative, and a
// sensitivity table (if any) that decodes (evaluator::DecodeRecord).
// INVALID_ARGUMENT saying what is wrong. `encoded` is request.result()
// serialized, the bytes that will be stored (the server has them already;
// the three-argument form serializes them).
absl::Status CheckResult(const CompleteTaskRequest& request, int stage,
                         const std::vector<int>& wbits,
                         absl::string_view encoded);
absl::Status CheckResult(const CompleteTaskRequest& request, int stage,
                         const std::vector<int>& wbits);

}  // namespace autoq::server

#endif  // AUTOQ_SERVER_COMPLETION_CHECK_H_
