// Progress of long work (epochs, batches): a live bar on a terminal, plain
// timestamped lines every few seconds in logs.
//
// Thread-safety: one Progress per thread of work; output lines are written
// whole, so concurrent Progress objects interleave by line, never mid-line.
#ifndef AUTOQ_QAT_PROGRESS_H_
#define AUTOQ_QAT_PROGRESS_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace autoq::qat {

struct ProgressOptions {
  FILE* out = stderr;  // nullptr: silent
  // Live bar when `out` is a terminal; otherwise a line at most this often.
  double log_interval_s = 10.0;
  const char* unit = "img";
  // When set and it becomes true, long loops (QAT training and evaluation
  // batches) stop at the next batch and fail with CANCELLED: a worker
  // abandoning a task (lost lease, shutdown) must not wait for the end of a
  // fine-tune. Read from the working thread; set from any thread.
  const std::atomic<bool>* cancel = nullptr;
};

class Progress {
 public:
  Progress(std::string label, int64_t total, ProgressOptions options = {});
  ~Progress();
  // `done` units of `total` finished; `extra` is shown after the rate.
  void Update(int64_t done, const std::string& extra = "");
  // Ends the bar with a final line (once).
  void Finish(const std::string& extra = "");

 private:
  void Print(bool final, const std::string& extra);

  std::string label_;
  int64_t total_;
  int64_t done_ = 0;
  ProgressOptions options_;
  bool tty_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_print_;
};

}  // namespace autoq::qat

#endif  // AUTOQ_QAT_PROGRESS_H_
