// Private to the services: how every unary RPC is answered. The token is
// checked first (UNAUTHENTICATED / PERMISSION_DENIED end the call there),
// then `body` runs on the reaction thread with the caller's principal and a
// Reply. The reply finishes the call with an absl::Status, either at once or
// later from any thread (once a store write is committed, say), so a body
// never waits for anything.
//
// Thread-safety: a Reply may be used from any thread, exactly once.
#ifndef AUTOQ_SERVER_UNARY_H_
#define AUTOQ_SERVER_UNARY_H_

#include <grpcpp/support/server_callback.h>

#include "absl/status/status.h"
#include "server/auth.h"
#include "common/rpc_util.h"
#include "server/services.h"

namespace autoq::server {

// Finishes one unary call. Fill the response before calling it.
class Reply {
 public:
  explicit Reply(grpc::ServerUnaryReactor* reactor) : reactor_(reactor) {}
  void operator()(const absl::Status& status) const {
    reactor_->Finish(ToGrpc(status));
  }

 private:
  grpc::ServerUnaryReactor* reactor_;
};

// `body(const Principal&, Reply)` must make sure the reply is called once.
template <typename Body>
grpc::ServerUnaryReactor* Unary(grpc::CallbackServerContext* ctx,
                                const TokenAuth& auth, Role role, Body&& body) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  absl::StatusOr<Principal> who = Authenticate(ctx, auth, role);
  if (!who.ok()) {
    reactor->Finish(ToGrpc(who.status()));
    return reactor;
  }
  body(*who, Reply(reactor));
  return reactor;
}

}  // namespace autoq::server

#endif  // AUTOQ_SERVER_UNARY_H_
