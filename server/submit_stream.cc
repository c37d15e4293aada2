#include "server/submit_stream.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace autoq::server {

absl::Status SubmitStream::Add(SubmitJobRequest* request) {
  if (request->has_spec()) {
    if (have_spec_) {
      return absl::InvalidArgumentError("SubmitJob: the spec was sent twice");
    }
    have_spec_ = true;
    spec_ = std::move(*request->mutable_spec());
    return absl::OkStatus();
  }
  if (!have_spec_) {
    return absl::InvalidArgumentError(
        "SubmitJob: the first message must be the job spec");
  }
  const std::string& chunk = request->model_chunk();
  if (static_cast<int64_t>(model_.size() + chunk.size()) > max_model_bytes_) {
    return absl::InvalidArgumentError(
        absl::StrCat("the model is larger than this server accepts (",
                     max_model_bytes_, " bytes; see --max-model-mb)"));
  }
  model_ += chunk;
  return absl::OkStatus();
}

absl::Status SubmitStream::Finish() const {
  if (!have_spec_) {
    return absl::InvalidArgumentError("SubmitJob: no job spec was sent");
  }
  return absl::OkStatus();
}

}  // namespace autoq::server
