#include "qat/torch_errors.h"

#include <c10/util/Exception.h>

#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace autoq::qat {

std::string SummarizeTorchError(absl::string_view what) {
  std::vector<absl::string_view> lines = absl::StrSplit(what, '\n');
  absl::string_view first;
  absl::string_view error_line;
  for (absl::string_view line : lines) {
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) continue;
    if (first.empty()) first = line;
    size_t pos = line.find("Error: ");
    if (pos != absl::string_view::npos && pos < 40) {
      error_line = line.substr(pos + 7);
    }
  }
  absl::string_view best = error_line.empty() ? first : error_line;
  return std::string(best);
}

std::string SummarizeTorchError(const std::exception& e) {
  if (const auto* c10 = dynamic_cast<const c10::Error*>(&e)) {
    return SummarizeTorchError(c10->what_without_backtrace());
  }
  return SummarizeTorchError(e.what());
}

}  // namespace autoq::qat
