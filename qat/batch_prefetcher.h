// Decodes the batches of a training epoch ahead of the training steps, on
// background threads, with at most `depth` decoded batches waiting: a step
// takes its batch without waiting whenever the decoders keep up, and memory
// stays bounded by (depth + threads) batches whatever the dataset's size.
// For streamed datasets (TensorDataset::streamed); in-memory batches are a
// cheap gather on the training thread.
//
// Thread-safety: one consumer thread calls Next; the destructor stops the
// decoder threads (each finishes the batch it is on) and joins them.
#ifndef AUTOQ_QAT_BATCH_PREFETCHER_H_
#define AUTOQ_QAT_BATCH_PREFETCHER_H_

#include <ATen/core/Tensor.h>

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "qat/tensor_dataset.h"

namespace autoq::qat {

class BatchPrefetcher {
 public:
  // `batches`: the epoch's index tensors (int64, 1-D) in the order Next
  // returns them. `threads` and `depth` are clamped to >= 1. `data` must
  // outlive this object.
  BatchPrefetcher(const TensorDataset& data, std::vector<at::Tensor> batches,
                  int threads, int depth);
  ~BatchPrefetcher();
  BatchPrefetcher(const BatchPrefetcher&) = delete;
  BatchPrefetcher& operator=(const BatchPrefetcher&) = delete;

  // The next batch as GatherImages gives it. Rethrows a decoder's
  // exception (naming the file). Must not be called more times than there
  // are batches.
  at::Tensor Next();

  // Seconds Next has waited for a decoder so far: 0 while they keep up.
  double wait_seconds() const { return wait_seconds_; }

 private:
  struct Slot {
    bool ready = false;
    at::Tensor batch;
    std::exception_ptr error;
  };
  void Decode();

  const TensorDataset& data_;
  const std::vector<at::Tensor> batches_;
  const size_t depth_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Slot> slots_;   // guarded by mu_
  size_t produced_ = 0;       // next batch a decoder takes; guarded by mu_
  size_t consumed_ = 0;       // next batch Next returns; guarded by mu_
  bool stop_ = false;         // guarded by mu_
  double wait_seconds_ = 0;   // consumer thread only
  std::vector<std::thread> threads_;
};

// Decoder threads for streamed training: half the cores (at least one),
// leaving the rest to the training step's intra-op work.
int DefaultDecoderThreads();

}  // namespace autoq::qat

#endif  // AUTOQ_QAT_BATCH_PREFETCHER_H_
