// Checks a torch.save file's bytes before LibTorch reads them. LibTorch's
// reader trusts the sizes a file declares: a string length in the pickle
// or a record size in the zip directory is allocated before it is read, so
// a file of a few hundred bytes can ask for gigabytes (found by
// fuzz/tensor_file_fuzzer.cc). This walks the zip directory and the
// pickle's opcodes and refuses any size beyond what the file holds.
// Torch-free.
//
// Thread-safety: a pure function.
#ifndef AUTOQ_EVALUATOR_TORCH_SAVE_CHECK_H_
#define AUTOQ_EVALUATOR_TORCH_SAVE_CHECK_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace autoq::evaluator {

// OK when the zip directory (found as LibTorch's reader finds it) lies
// within `file`, every entry is stored uncompressed within it, and every
// pickle record (".../data.pkl", in any case) declares no string, bytes or
// frame longer than what follows it, no memo index beyond its length, and
// no opcode that underflows the unpickler's stack. InvalidArgument saying
// what is wrong otherwise. A byte that is no opcode ends the walk:
// LibTorch refuses it itself.
absl::Status CheckTorchSaveBytes(absl::string_view file);

}  // namespace autoq::evaluator

#endif  // AUTOQ_EVALUATOR_TORCH_SAVE_CHECK_H_
