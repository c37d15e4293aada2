#include "server/store_writer.h"

#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <utility>

namespace autoq::server {

StoreWriter::StoreWriter(ServerStore* store, int max_group)
    : store_(store),
      max_group_(static_cast<size_t>(std::max(1, max_group))),
      thread_([this] { Loop(); }) {}

StoreWriter::~StoreWriter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void StoreWriter::Submit(Write write) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.push_back(std::move(write));
  }
  cv_.notify_one();
}

absl::Status StoreWriter::Run(ServerStore::Write write) {
  if (OnWriterThread()) {
    return absl::FailedPreconditionError(
        "StoreWriter::Run on the writer thread would wait for itself");
  }
  std::promise<absl::Status> promise;
  std::future<absl::Status> result = promise.get_future();
  Submit({nullptr, std::move(write),
          [&promise](absl::Status st) { promise.set_value(std::move(st)); }});
  return result.get();
}

bool StoreWriter::OnWriterThread() const {
  return std::this_thread::get_id() == thread_.get_id();
}

StoreWriter::Stats StoreWriter::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void StoreWriter::Loop() {
  // Named for `top -H` and profilers.
  pthread_setname_np(pthread_self(), "autoq-writer");
  std::vector<Write> group;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !pending_.empty(); });
      if (pending_.empty()) return;  // stopping, and everything written
      if (pending_.size() <= max_group_) {
        group.swap(pending_);
      } else {
        group.assign(std::make_move_iterator(pending_.begin()),
                     std::make_move_iterator(pending_.begin() + max_group_));
        pending_.erase(pending_.begin(), pending_.begin() + max_group_);
      }
    }
    const auto start = std::chrono::steady_clock::now();
    std::vector<absl::Status> statuses(group.size());
    std::vector<const ServerStore::Write*> writes;
    std::vector<size_t> index;  // of each entry of `writes` in `group`
    for (size_t i = 0; i < group.size(); ++i) {
      if (group[i].before) statuses[i] = group[i].before();
      if (statuses[i].ok() && group[i].write) {
        writes.push_back(&group[i].write);
        index.push_back(i);
      }
    }
    std::vector<absl::Status> written = store_->WriteGroup(writes);
    for (size_t k = 0; k < written.size(); ++k) {
      statuses[index[k]] = std::move(written[k]);
    }
    for (size_t i = 0; i < group.size(); ++i) {
      if (group[i].done) group[i].done(std::move(statuses[i]));
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count();
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.groups;
      stats_.writes += static_cast<int64_t>(group.size());
      stats_.largest =
          std::max(stats_.largest, static_cast<int64_t>(group.size()));
      stats_.busy_seconds += seconds;
    }
    group.clear();
  }
}

}  // namespace autoq::server
