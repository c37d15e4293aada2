#include "qat/batch_prefetcher.h"

#include <algorithm>
#include <chrono>
#include <utility>

namespace autoq::qat {

BatchPrefetcher::BatchPrefetcher(const TensorDataset& data,
                                 std::vector<at::Tensor> batches, int threads,
                                 int depth)
    : data_(data),
      batches_(std::move(batches)),
      depth_(static_cast<size_t>(std::max(1, depth))),
      slots_(batches_.size()) {
  const int n = std::min<int>(std::max(1, threads),
                              static_cast<int>(std::max<size_t>(
                                  1, batches_.size())));
  for (int t = 0; t < n; ++t) threads_.emplace_back([this] { Decode(); });
}

BatchPrefetcher::~BatchPrefetcher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (std::thread& t : threads_) t.join();
}

void BatchPrefetcher::Decode() {
  for (;;) {
    size_t i;
    {
      std::unique_lock<std::mutex> lock(mu_);
      // A batch is taken only within `depth` of the consumer: that bounds
      // the decoded batches held at once.
      cv_.wait(lock, [&] {
        return stop_ || produced_ >= batches_.size() ||
               produced_ < consumed_ + depth_;
      });
      if (stop_ || produced_ >= batches_.size()) return;
      i = produced_++;
    }
    Slot done;
    try {
      done.batch = GatherImagesOnThisThread(data_, batches_[i]);
    } catch (...) {
      done.error = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      done.ready = true;
      slots_[i] = std::move(done);
    }
    cv_.notify_all();
  }
}

at::Tensor BatchPrefetcher::Next() {
  const auto start = std::chrono::steady_clock::now();
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return slots_[consumed_].ready; });
  Slot slot = std::move(slots_[consumed_]);
  slots_[consumed_] = Slot{};
  ++consumed_;
  lock.unlock();
  cv_.notify_all();  // room for one more batch ahead
  wait_seconds_ += std::chrono::duration<double>(
                       std::chrono::steady_clock::now() - start)
                       .count();
  if (slot.error) std::rethrow_exception(slot.error);
  return slot.batch;
}

int DefaultDecoderThreads() {
  return std::max(1u, std::thread::hardware_concurrency() / 2);
}

}  // namespace autoq::qat
