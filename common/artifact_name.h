// Whether a name a server gives for a download may become a file path
// under the user's output folder: relative, '/'-separated, no empty, '.' or
// '..' component, no backslash or control character, at most 1024 bytes.
// `autoq download` checks every name before it writes anything.
//
// Thread-safety: reentrant.
#ifndef AUTOQ_COMMON_ARTIFACT_NAME_H_
#define AUTOQ_COMMON_ARTIFACT_NAME_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace autoq {

// InvalidArgument saying what is wrong with `name`, else OK.
absl::Status CheckArtifactName(absl::string_view name);

}  // namespace autoq

#endif  // AUTOQ_COMMON_ARTIFACT_NAME_H_
