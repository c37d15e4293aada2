// Turning LibTorch exceptions into one-line absl::Status messages at the
// public boundary of qat/ and evaluator/.
#ifndef AUTOQ_QAT_TORCH_ERRORS_H_
#define AUTOQ_QAT_TORCH_ERRORS_H_

#include <exception>
#include <string>
#include "absl/strings/string_view.h"

namespace autoq::qat {

// The most informative single line of a LibTorch error message: the last
// "...Error: msg" line of a TorchScript traceback, else the first line.
std::string SummarizeTorchError(absl::string_view what);
std::string SummarizeTorchError(const std::exception& e);

}  // namespace autoq::qat

#endif  // AUTOQ_QAT_TORCH_ERRORS_H_
