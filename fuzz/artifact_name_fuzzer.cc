// Any bytes as a download name: an accepted name never escapes the folder
// it is written into (no absolute path, no '..' component, no backslash).
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/str_split.h"
#include "common/artifact_name.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string name(reinterpret_cast<const char*>(data), size);
  if (!autoq::CheckArtifactName(name).ok()) return 0;
  if (name.empty() || name[0] == '/' || name.find('\\') != std::string::npos) {
    __builtin_trap();
  }
  for (absl::string_view part : absl::StrSplit(name, '/')) {
    if (part.empty() || part == "." || part == "..") __builtin_trap();
  }
  return 0;
}
