// What every gRPC client of AutoQ (the `autoq` commands, autoq-worker, the
// tests and benches) does the same way: read a token file, open a channel
// (plain or TLS), put the bearer token and a deadline on each call.
//
// Thread-safety: free functions, reentrant.
#ifndef AUTOQ_COMMON_RPC_UTIL_H_
#define AUTOQ_COMMON_RPC_UTIL_H_

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/support/status.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace autoq {

// Largest message either side accepts by default (CompleteTask carries a
// final point's exports). The server's limit is configurable.
inline constexpr int kDefaultMaxMessageBytes = 256 << 20;
// Chunk size of streamed models and artifacts.
inline constexpr size_t kChunkBytes = 1 << 20;

// The token in `path`: its first non-empty line, whitespace trimmed. Fails
// with a message naming the file when it is missing, unreadable or empty.
absl::StatusOr<std::string> ReadTokenFile(const std::string& path);

struct ChannelOptions {
  std::string target;  // "host:port"
  // PEM file of the CA that signed the server's certificate; empty: plain
  // TCP (loopback, or a trusted cluster network).
  std::string tls_ca_file;
  int max_message_bytes = kDefaultMaxMessageBytes;
  // Longest wait between reconnection attempts after the server went away
  // (the first comes after 100 ms): callers back off themselves.
  int max_reconnect_backoff_ms = 2000;
  // A connection of its own instead of the one gRPC shares between
  // channels of equal arguments: for a process that stands in for many
  // clients (the service load bench, the chaos soak).
  bool own_connection = false;
};
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(
    const ChannelOptions& options);

// Sets "authorization: Bearer <token>" and a deadline `timeout` from now.
void PrepareContext(grpc::ClientContext* context, const std::string& token,
                    std::chrono::milliseconds timeout);

// The server is unreachable, restarting or briefly overloaded (gRPC also
// answers RESOURCE_EXHAUSTED when it sheds load): the same call is worth
// repeating after a wait. Every client retries on exactly these codes.
bool IsTransient(grpc::StatusCode code);

// gRPC status <-> absl::Status (same codes, same message).
absl::Status ToAbsl(const grpc::Status& status);
grpc::Status ToGrpc(const absl::Status& status);

// Unix time in milliseconds.
int64_t UnixMillis();

}  // namespace autoq

#endif  // AUTOQ_COMMON_RPC_UTIL_H_
