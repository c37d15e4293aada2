// One task's work on its own thread, so that the worker's thread can keep
// the task's lease alive (heartbeats) and cancel the work when the lease is
// lost or the worker must leave.
//
// Thread-safety: construct, wait, cancel and join from one thread (the
// owner); the work runs on the task thread.
#ifndef AUTOQ_EVALUATOR_TASK_THREAD_H_
#define AUTOQ_EVALUATOR_TASK_THREAD_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "absl/status/statusor.h"
#include "evaluator/task.h"

namespace autoq::evaluator {

class TaskThread {
 public:
  // The work polls `cancel` and returns CANCELLED soon after it is set.
  using Work = std::function<absl::StatusOr<EvalRecord>(
      const std::atomic<bool>* cancel)>;

  // Starts `work` on a new thread.
  explicit TaskThread(Work work);
  // Cancels the work (unless joined) and waits for it.
  ~TaskThread();
  TaskThread(const TaskThread&) = delete;
  TaskThread& operator=(const TaskThread&) = delete;

  // Waits until the work has finished or `deadline` passed; true when it
  // has finished.
  bool WaitUntil(std::chrono::steady_clock::time_point deadline);
  // Asks the work to stop.
  void Cancel() { cancel_.store(true); }
  // Waits for the work and returns its result; once.
  absl::StatusOr<EvalRecord> Join();

 private:
  std::atomic<bool> cancel_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;  // guarded by mu_
  absl::StatusOr<EvalRecord> result_ =
      absl::UnknownError("not run");  // guarded by mu_ until done_
  std::thread thread_;
};

}  // namespace autoq::evaluator

#endif  // AUTOQ_EVALUATOR_TASK_THREAD_H_
