// SHA-256 (OpenSSL) as lowercase hex: the identity of models, cache keys
// and downloads, and the stored form of tokens.
//
// Thread-safety: Sha256Hex is reentrant; a Sha256 object is used by one
// thread at a time.
#ifndef AUTOQ_COMMON_SHA256_H_
#define AUTOQ_COMMON_SHA256_H_

#include <string>

#include "absl/strings/string_view.h"

typedef struct evp_md_ctx_st EVP_MD_CTX;

namespace autoq {

// Hex digest of `data`. Aborts only when OpenSSL itself fails: a wrong
// digest would make unrelated results share a cache key.
std::string Sha256Hex(absl::string_view data);

// Whether `s` has the form of a Sha256Hex digest (64 lowercase hex digits).
bool IsSha256Hex(absl::string_view s);

// Incremental digest, for data that arrives in chunks.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(absl::string_view data);
  // Hex digest of everything given to Update. Call once.
  std::string HexDigest();

 private:
  EVP_MD_CTX* ctx_;
};

}  // namespace autoq

#endif  // AUTOQ_COMMON_SHA256_H_
