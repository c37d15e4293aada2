// Any bytes as the messages of a SubmitJob call (length-delimited
// SubmitJobRequest protos, as a hostile client can send them): the
// server's stream handling must refuse or accept them without crashing,
// never hold a model over its limit, and a spec it accepts must either
// validate (evaluator::JobConfigFromSpec) or be refused with
// INVALID_ARGUMENT. The model itself is loaded by the analyzer child
// (server/model_check), not here.
#include <google/protobuf/io/coded_stream.h>

#include <cstddef>
#include <cstdint>

#include "evaluator/job_config.h"
#include "server/submit_stream.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr int64_t kMaxModel = 4096;
  autoq::server::SubmitStream stream(kMaxModel);
  google::protobuf::io::CodedInputStream in(data, static_cast<int>(size));
  for (int messages = 0; messages < 64; ++messages) {
    uint32_t length = 0;
    if (!in.ReadVarint32(&length)) break;
    const auto limit = in.PushLimit(static_cast<int>(length));
    autoq::SubmitJobRequest request;
    const bool parsed = request.ParseFromCodedStream(&in);
    in.PopLimit(limit);
    if (!parsed) break;
    if (!stream.Add(&request).ok()) return 0;
    if (static_cast<int64_t>(stream.model().size()) > kMaxModel) {
      __builtin_trap();
    }
  }
  if (!stream.Finish().ok()) return 0;
  absl::StatusOr<autoq::evaluator::JobConfig> config =
      autoq::evaluator::JobConfigFromSpec(stream.spec());
  if (!config.ok() &&
      config.status().code() != absl::StatusCode::kInvalidArgument) {
    __builtin_trap();
  }
  return 0;
}
