#include "common/artifact_name.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace autoq {

absl::Status CheckArtifactName(absl::string_view name) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("artifact name '", name, "' ", why));
  };
  if (name.empty()) return bad("is empty");
  if (name.size() > 1024) return bad("is too long");
  if (name[0] == '/') return bad("is an absolute path");
  for (char c : name) {
    if (c == '\\') return bad("contains a backslash");
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return bad("contains a control character");
    }
  }
  for (absl::string_view part : absl::StrSplit(name, '/')) {
    if (part.empty()) return bad("has an empty path component");
    if (part == "." || part == "..") {
      return bad("would escape the output folder");
    }
  }
  return absl::OkStatus();
}

}  // namespace autoq
