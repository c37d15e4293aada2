// The event history of one job, for WatchJob: every event is kept (a
// watcher that connects late, or reconnects after a dropped stream, replays
// from any sequence number) and listeners are poked when one is added.
//
// Thread-safety: all methods may be called from any thread at once.
// Listeners run on the publishing thread after the feed's lock is released;
// they must not block (a watch reactor only schedules a write).
#ifndef AUTOQ_SERVER_EVENT_FEED_H_
#define AUTOQ_SERVER_EVENT_FEED_H_

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <vector>

#include "proto/autoq.pb.h"

namespace autoq::server {

class EventFeed {
 public:
  using Listener = std::function<void()>;

  // Appends `event` with the next sequence number (from 1) and the current
  // time, and pokes the listeners. After an event published with
  // `last` = true, further events are dropped. Returns the sequence number
  // (0 if dropped).
  int64_t Publish(JobEvent event, bool last = false);

  // The first event with seq > after_seq, if any.
  bool Next(int64_t after_seq, JobEvent* event) const;

  // True when the last event was published and `after_seq` is past it.
  bool Exhausted(int64_t after_seq) const;

  int64_t last_seq() const;

  // Returns an id for Unsubscribe.
  int64_t Subscribe(Listener listener);
  void Unsubscribe(int64_t id);

 private:
  mutable std::mutex mu_;
  std::vector<JobEvent> events_;  // guarded by mu_; events_[i].seq == i + 1
  bool ended_ = false;            // guarded by mu_
  std::map<int64_t, Listener> listeners_;  // guarded by mu_
  int64_t next_listener_ = 1;              // guarded by mu_
};

}  // namespace autoq::server

#endif  // AUTOQ_SERVER_EVENT_FEED_H_
