// The messages of one SubmitJob call, as the server reads them: the job
// spec first, then the model in chunks, never more than the server
// accepts. The reactor (server/job_service.cc) feeds it; torch- and
// gRPC-free so it is fuzzed alone (fuzz/submit_stream_fuzzer.cc).
//
// Thread-safety: one call's messages, one at a time.
#ifndef AUTOQ_SERVER_SUBMIT_STREAM_H_
#define AUTOQ_SERVER_SUBMIT_STREAM_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "proto/autoq.pb.h"

namespace autoq::server {

class SubmitStream {
 public:
  explicit SubmitStream(int64_t max_model_bytes)
      : max_model_bytes_(max_model_bytes) {}

  // Takes one message (its contents move out). INVALID_ARGUMENT ends the
  // call: a spec sent twice, a chunk before the spec, or a model growing
  // past max_model_bytes (the upload is never held in full).
  absl::Status Add(SubmitJobRequest* request);
  // The client is done sending: INVALID_ARGUMENT when no spec came.
  absl::Status Finish() const;

  JobSpec& spec() { return spec_; }
  std::string& model() { return model_; }

 private:
  const int64_t max_model_bytes_;
  JobSpec spec_;
  bool have_spec_ = false;
  std::string model_;
};

}  // namespace autoq::server

#endif  // AUTOQ_SERVER_SUBMIT_STREAM_H_
