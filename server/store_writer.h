// The one thread that makes the service's frequent small writes durable:
// task and lease changes of the queue, worker registrations. Callers submit
// a write with a completion and return at once; the thread takes every
// write waiting, commits them together in one transaction (group commit,
// ServerStore::WriteGroup) and then calls the completions in submission
// order. A gRPC reaction therefore never waits for SQLite: it submits, and
// the completion answers the RPC once the change is durable.
//
// Writes are committed in submission order, so a caller that submits under
// its own lock, in the order it changes its memory, always finds the store
// at a state its memory went through: what a killed server restarts from.
//
// Thread-safety: Submit and Run may be called from any thread at once,
// except that Run must not be called on the writer thread (from a
// completion): it would wait for itself. Completions run on the writer
// thread, one at a time, and must not block for long.
#ifndef AUTOQ_SERVER_STORE_WRITER_H_
#define AUTOQ_SERVER_STORE_WRITER_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "server/server_store.h"

namespace autoq::server {

class StoreWriter {
 public:
  struct Write {
    // Runs first, on the writer thread outside the group's transaction:
    // a write to another store that commits itself (the result cache's
    // result and exports of a completion). An error skips `write`. May be
    // empty.
    std::function<absl::Status()> before;
    // Runs inside the group's transaction. May be empty.
    ServerStore::Write write;
    // Called with the write's outcome once it is committed (or failed).
    // May be empty.
    std::function<void(absl::Status)> done;
  };

  struct Stats {
    int64_t groups = 0;       // transactions committed (or failed)
    int64_t writes = 0;       // writes in them
    int64_t largest = 0;      // writes in the largest group
    double busy_seconds = 0;  // time spent writing and completing
  };

  // `max_group` (clamped to >= 1) bounds the writes of one transaction, so
  // a burst still gets its first answers early.
  explicit StoreWriter(ServerStore* store, int max_group = 1024);
  // Writes everything submitted before, then stops the thread.
  ~StoreWriter();
  StoreWriter(const StoreWriter&) = delete;
  StoreWriter& operator=(const StoreWriter&) = delete;

  void Submit(Write write);
  // Submits `write` and waits until it is committed: for threads that may
  // block (job threads, the timer, tests). Not on the writer thread.
  absl::Status Run(ServerStore::Write write);

  // True on the writer thread (in a completion).
  bool OnWriterThread() const;

  Stats stats() const;

 private:
  void Loop();

  ServerStore* const store_;
  const size_t max_group_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Write> pending_;  // guarded by mu_
  bool stopping_ = false;       // guarded by mu_
  Stats stats_;                 // guarded by mu_
  std::thread thread_;
};

}  // namespace autoq::server

#endif  // AUTOQ_SERVER_STORE_WRITER_H_
