// Bearer-token authentication of the service. Two kinds of callers hold
// tokens: clients (submit and watch jobs; a client sees only its own jobs)
// and workers (lease and complete tasks). A token file has one "NAME TOKEN"
// per line ('#' starts a comment); the name is the owner recorded on jobs.
//
// Thread-safety: immutable after construction; Authenticate may be called
// from any thread at once.
#ifndef AUTOQ_SERVER_AUTH_H_
#define AUTOQ_SERVER_AUTH_H_

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace autoq::server {

enum class Role { kClient, kWorker };

struct Principal {
  Role role = Role::kClient;
  std::string name;
};

class TokenAuth {
 public:
  TokenAuth() = default;

  // Reads the two token files. Fails naming the file and line on a
  // malformed line, a token shorter than 16 characters, a token listed
  // twice, or a file with no token.
  static absl::StatusOr<TokenAuth> Load(const std::string& client_tokens_file,
                                        const std::string& worker_tokens_file);

  // Adds one token (e.g. the generated tokens of `autoq run`).
  absl::Status Add(Role role, absl::string_view name, absl::string_view token);

  // The principal of an "authorization" metadata value ("Bearer TOKEN").
  // UNAUTHENTICATED when the value is absent, malformed or unknown, or
  // when the token belongs to the other role (a worker token cannot submit
  // jobs, a client token cannot lease tasks).
  absl::StatusOr<Principal> Authenticate(absl::string_view authorization,
                                         Role required) const;

  size_t size() const { return by_digest_.size(); }

 private:
  // Keyed by the token's SHA-256, so lookups do not compare secrets byte by
  // byte and the map never holds them in clear.
  std::map<std::string, Principal> by_digest_;
};

// A fresh random token (32 hex characters from the OS's entropy).
std::string GenerateToken();

}  // namespace autoq::server

#endif  // AUTOQ_SERVER_AUTH_H_
