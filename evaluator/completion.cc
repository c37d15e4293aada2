#include "evaluator/completion.h"

#include "absl/strings/str_cat.h"
#include "common/rpc_util.h"

namespace autoq::evaluator {

CompletionAction NextCompletionAction(grpc::StatusCode code,
                                      bool registered_again, bool has_exports) {
  if (code == grpc::StatusCode::OK) return CompletionAction::kDone;
  if (code == grpc::StatusCode::UNAUTHENTICATED ||
      code == grpc::StatusCode::PERMISSION_DENIED) {
    return CompletionAction::kFatal;
  }
  if (code == grpc::StatusCode::NOT_FOUND && !registered_again) {
    return CompletionAction::kRegisterAgain;
  }
  if (code == grpc::StatusCode::RESOURCE_EXHAUSTED && has_exports) {
    return CompletionAction::kDropExports;
  }
  if (autoq::IsTransient(code)) return CompletionAction::kRetryLater;
  return CompletionAction::kRefused;
}

CompletionOutcome SendCompletion(autoq::CompleteTaskRequest* request,
                                 const std::string& who,
                                 const CompletionHooks& hooks) {
  CompletionOutcome out;
  bool registered_again = false;
  while (true) {
    autoq::CompleteTaskResponse response;
    const grpc::Status rpc = hooks.send(request, &response);
    const auto status = [&rpc] {
      return absl::Status(static_cast<absl::StatusCode>(rpc.error_code()),
                          rpc.error_message());
    };
    switch (NextCompletionAction(rpc.error_code(), registered_again,
                                 request->artifacts_size() > 0)) {
      case CompletionAction::kDone:
        out.kind = CompletionOutcome::kTaken;
        out.duplicate = response.duplicate();
        return out;
      case CompletionAction::kFatal:
        out.kind = CompletionOutcome::kFatal;
        out.status = hooks.rpc_error ? hooks.rpc_error(rpc) : status();
        return out;
      case CompletionAction::kRegisterAgain: {
        registered_again = true;
        absl::Status st = hooks.register_again();
        if (absl::IsCancelled(st)) return out;  // abandoned
        if (!st.ok()) {
          out.kind = CompletionOutcome::kFatal;
          out.status = st;
          return out;
        }
        continue;
      }
      case CompletionAction::kDropExports:
        out.exports_dropped = absl::StrCat(
            who, ": the result with its exports is too large for the server (",
            request->ByteSizeLong(), " bytes): ", rpc.error_message());
        request->clear_artifacts();
        request->set_error(out.exports_dropped);
        continue;
      case CompletionAction::kRetryLater:
        if (hooks.on_transient) hooks.on_transient(rpc);
        if (!hooks.wait()) return out;  // abandoned
        continue;
      case CompletionAction::kRefused:
        out.kind = CompletionOutcome::kRefused;
        out.status = status();
        return out;
    }
  }
}

}  // namespace autoq::evaluator
