#include "server/remote_evaluator.h"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <utility>
#include <vector>

#include "evaluator/task_codec.h"
#include "proto/autoq.pb.h"
#include "search/evaluation.h"
#include "search/result_store.h"

namespace autoq::server {
namespace {

// Shared with the queue's waiters, which may outlive a Run call that
// stopped early: they then find `closed` and drop their result.
struct BatchState {
  std::mutex mu;
  std::condition_variable cv;
  const evaluator::Evaluator::Callback* done = nullptr;  // valid while !closed
  std::vector<bool> finished;
  size_t remaining = 0;
  bool closed = false;
};

class RemoteEvaluator : public evaluator::Evaluator {
 public:
  RemoteEvaluator(TaskQueue* queue, search::ResultStore* results,
                  std::string job_id, const std::atomic<bool>* stop,
                  const std::atomic<bool>* cancelled)
      : queue_(queue),
        results_(results),
        job_id_(std::move(job_id)),
        stop_(stop),
        cancelled_(cancelled) {}

  void Run(const std::vector<evaluator::EvalTask>& tasks,
           const Callback& done) override {
    auto state = std::make_shared<BatchState>();
    state->done = &done;
    state->finished.assign(tasks.size(), false);
    state->remaining = tasks.size();
    for (size_t i = 0; i < tasks.size(); ++i) {
      TaskSpec spec;
      spec.key = tasks[i].key;
      spec.job_id = job_id_;
      spec.stage = evaluator::ToProtoStage(tasks[i].stage);
      for (const qat::LayerBits& b : tasks[i].bits) {
        spec.wbits.push_back(b.wbits);
        spec.abits.push_back(b.abits);
      }
      // Not waiting for each new task's write: the batch is committed
      // together, and a failed write reaches the waiter.
      absl::Status st = queue_->EnqueueAsync(
          spec,
          [state, i](absl::Status status, const std::string& encoded) {
            Deliver(*state, i, std::move(status), encoded);
          },
          results_ == nullptr
              ? TaskQueue::DoneLookup()
              : [this, stage = tasks[i].stage](
                    const std::string& key) { return Lookup(key, stage); });
      if (!st.ok()) Deliver(*state, i, st, "");
    }
    bool cancel = false;
    {
      std::unique_lock<std::mutex> lock(state->mu);
      while (state->remaining > 0) {
        if (stop_ != nullptr && stop_->load()) break;
        if (cancelled_ != nullptr && cancelled_->load()) {
          cancel = true;
          break;
        }
        state->cv.wait_for(lock, std::chrono::milliseconds(100));
      }
    }
    // Outside the batch's lock: the queue calls our waiters back.
    if (cancel) queue_->CancelJob(job_id_);
    std::lock_guard<std::mutex> lock(state->mu);
    // Server shutdown: the rest stays queued for the next start.
    const absl::Status why =
        cancel ? absl::CancelledError("job cancelled")
               : absl::UnavailableError("the server is shutting down");
    for (size_t i = 0; i < tasks.size(); ++i) {
      if (state->finished[i]) continue;
      state->finished[i] = true;
      done(i, why);
    }
    state->closed = true;
  }

 private:
  // The stored result of `key`; a final one counts only with its exports,
  // as in the search's cache lookup.
  absl::StatusOr<std::optional<std::string>> Lookup(const std::string& key,
                                                    evaluator::Stage stage) {
    absl::StatusOr<std::optional<std::string>> hit = results_->Get(key);
    if (!hit.ok() || !hit->has_value() || stage != evaluator::Stage::kFinal) {
      return hit;
    }
    absl::StatusOr<std::vector<std::string>> names =
        results_->ListArtifacts(key);
    if (!names.ok()) return names.status();
    if (names->empty()) return std::optional<std::string>();
    return hit;
  }

  static void Deliver(BatchState& state, size_t index, absl::Status status,
                      const std::string& encoded) {
    absl::StatusOr<evaluator::EvalRecord> record =
        status.ok() ? evaluator::DecodeRecord(encoded)
                    : absl::StatusOr<evaluator::EvalRecord>(status);
    // The queue tells waiters only once the result (and its exports) is
    // committed to the result cache.
    if (record.ok()) record->stored = true;
    std::lock_guard<std::mutex> lock(state.mu);
    if (state.closed || state.finished[index]) return;
    state.finished[index] = true;
    (*state.done)(index, std::move(record));
    --state.remaining;
    state.cv.notify_all();
  }

  TaskQueue* queue_;
  search::ResultStore* results_;  // may be null: no lookup at Enqueue
  std::string job_id_;
  const std::atomic<bool>* stop_;
  const std::atomic<bool>* cancelled_;
};

}  // namespace

std::unique_ptr<evaluator::Evaluator> MakeRemoteEvaluator(
    TaskQueue* queue, search::ResultStore* results, std::string job_id,
    const std::atomic<bool>* stop, const std::atomic<bool>* cancelled) {
  return std::make_unique<RemoteEvaluator>(queue, results, std::move(job_id),
                                           stop, cancelled);
}

}  // namespace autoq::server
