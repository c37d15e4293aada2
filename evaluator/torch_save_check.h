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

// OK when every zip entry of `file` lies within it (stored entries; a
// compressed one within deflate's largest ratio) and the pickle record
// (".../data.pkl") declares no string, bytes or frame longer than what
// follows it, nor a memo index beyond its own length. InvalidArgument saying what is wrong otherwise. Opcodes it
// does not know end the walk: LibTorch refuses those itself.
absl::Status CheckTorchSaveBytes(absl::string_view file);

}  // namespace autoq::evaluator

#endif  // AUTOQ_EVALUATOR_TORCH_SAVE_CHECK_H_
