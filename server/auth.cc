#include "server/auth.h"

#include <fstream>
#include <random>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/sha256.h"

namespace autoq::server {
namespace {

constexpr size_t kMinTokenLength = 16;

absl::Status LoadFile(const std::string& path, Role role, TokenAuth* auth) {
  const char* what = role == Role::kClient ? "client" : "worker";
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat(what, " token file ", path, ": cannot open"));
  }
  std::string line;
  int number = 0;
  size_t added = 0;
  while (std::getline(in, line)) {
    ++number;
    absl::string_view text = absl::StripAsciiWhitespace(line);
    if (text.empty() || text[0] == '#') continue;
    std::vector<absl::string_view> parts =
        absl::StrSplit(text, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (parts.size() != 2) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", number, ": expected \"NAME TOKEN\""));
    }
    absl::Status st = auth->Add(role, parts[0], parts[1]);
    if (!st.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", number, ": ", st.message()));
    }
    ++added;
  }
  if (added == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " token file ", path, " holds no token"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<TokenAuth> TokenAuth::Load(const std::string& client_file,
                                          const std::string& worker_file) {
  TokenAuth auth;
  absl::Status st = LoadFile(client_file, Role::kClient, &auth);
  if (!st.ok()) return st;
  st = LoadFile(worker_file, Role::kWorker, &auth);
  if (!st.ok()) return st;
  return auth;
}

absl::Status TokenAuth::Add(Role role, absl::string_view name,
                            absl::string_view token) {
  if (name.empty()) return absl::InvalidArgumentError("empty name");
  if (token.size() < kMinTokenLength) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the token of ", name, " is shorter than ", kMinTokenLength,
        " characters"));
  }
  const bool inserted =
      by_digest_
          .emplace(autoq::Sha256Hex(token), Principal{role, std::string(name)})
          .second;
  if (!inserted) {
    return absl::InvalidArgumentError(
        absl::StrCat("the token of ", name, " is listed twice"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Principal> TokenAuth::Authenticate(
    absl::string_view authorization, Role required) const {
  if (authorization.empty()) {
    return absl::UnauthenticatedError(
        "missing \"authorization: Bearer TOKEN\" metadata");
  }
  constexpr absl::string_view kBearer = "Bearer ";
  if (!absl::StartsWithIgnoreCase(authorization, kBearer)) {
    return absl::UnauthenticatedError(
        "the authorization metadata is not \"Bearer TOKEN\"");
  }
  const absl::string_view token =
      absl::StripAsciiWhitespace(authorization.substr(kBearer.size()));
  auto it = by_digest_.find(autoq::Sha256Hex(token));
  if (it == by_digest_.end()) {
    return absl::UnauthenticatedError("unknown token");
  }
  if (it->second.role != required) {
    return absl::UnauthenticatedError(
        required == Role::kClient
            ? "a worker token cannot use the job API"
            : "a client token cannot use the worker API");
  }
  return it->second;
}

std::string GenerateToken() {
  std::random_device rd;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string token;
  for (int i = 0; i < 32; ++i) token += kHex[rd() & 15];
  return token;
}

}  // namespace autoq::server
