#include "evaluator/task_thread.h"

#include <utility>

namespace autoq::evaluator {

TaskThread::TaskThread(Work work) {
  thread_ = std::thread([this, work = std::move(work)] {
    absl::StatusOr<EvalRecord> r = work(&cancel_);
    std::lock_guard<std::mutex> lock(mu_);
    result_ = std::move(r);
    done_ = true;
    cv_.notify_all();
  });
}

TaskThread::~TaskThread() {
  if (thread_.joinable()) {
    Cancel();
    thread_.join();
  }
}

bool TaskThread::WaitUntil(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_until(lock, deadline, [this] { return done_; });
}

absl::StatusOr<EvalRecord> TaskThread::Join() {
  if (thread_.joinable()) thread_.join();
  std::lock_guard<std::mutex> lock(mu_);
  return std::move(result_);
}

}  // namespace autoq::evaluator
