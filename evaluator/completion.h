// Sending a task's outcome until the server takes or refuses it: the
// worker's completion retry rule, apart from the gRPC stub so that it can be
// tested alone.
//
// By the server's answer to CompleteTask:
//   OK                          taken (a duplicate too): done;
//   UNAUTHENTICATED, PERMISSION_DENIED
//                               the token is refused: the worker must leave;
//   NOT_FOUND, the first time   the server lost this worker: register again
//                               and resend (whether it still takes the
//                               lease's result is its call);
//   RESOURCE_EXHAUSTED with exports
//                               they exceed a message limit, which no retry
//                               fixes: send an error saying so instead;
//   transient (UNAVAILABLE, DEADLINE_EXCEEDED, ...)
//                               the server is away: wait and resend, since it
//                               keeps leases across restarts;
//   anything else               refused: the task is dropped.
//
// Thread-safety: plain functions; SendCompletion calls its hooks on the
// calling thread.
#ifndef AUTOQ_EVALUATOR_COMPLETION_H_
#define AUTOQ_EVALUATOR_COMPLETION_H_

#include <grpcpp/support/status.h>

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "proto/autoq.pb.h"

namespace autoq::evaluator {

enum class CompletionAction {
  kDone,           // taken
  kFatal,          // the worker must leave
  kRegisterAgain,  // then resend
  kDropExports,    // resend as an error without the exports
  kRetryLater,     // wait, then resend
  kRefused,        // give the task up
};

// The rule above for one answer. `registered_again`: this completion has
// registered again once already; `has_exports`: the request carries
// exports.
CompletionAction NextCompletionAction(grpc::StatusCode code,
                                      bool registered_again, bool has_exports);

struct CompletionHooks {
  // One CompleteTask call; may fill in the request's worker id first.
  std::function<grpc::Status(autoq::CompleteTaskRequest* request,
                             autoq::CompleteTaskResponse* response)>
      send;
  // A fresh registration: OK, CANCELLED when the worker is leaving, or why
  // the server refused it.
  std::function<absl::Status()> register_again;
  // Waits before a resend (backoff); false when the worker must leave now.
  std::function<bool()> wait;
  // Told of each transient failure (e.g. to log the server as away).
  std::function<void(const grpc::Status&)> on_transient;
  // The error a refused token becomes; empty: its code and message.
  std::function<absl::Status(const grpc::Status&)> rpc_error;
};

struct CompletionOutcome {
  enum Kind {
    kTaken,      // the server has the outcome (`duplicate`: it had it)
    kRefused,    // the server refused it (`status` says how)
    kAbandoned,  // the worker is leaving before the server took it
    kFatal,      // the worker must leave (`status` says why)
  };
  Kind kind = kAbandoned;
  bool duplicate = false;
  absl::Status status;
  // Set when the exports were replaced by an error message: that message.
  std::string exports_dropped;
};

// Sends `request` by the rule above. `who` names this worker and device in
// the error that replaces exports too large to send.
CompletionOutcome SendCompletion(autoq::CompleteTaskRequest* request,
                                 const std::string& who,
                                 const CompletionHooks& hooks);

}  // namespace autoq::evaluator

#endif  // AUTOQ_EVALUATOR_COMPLETION_H_
