// The event history of one job, for WatchJob: every event is kept (a
// watcher that connects late, or reconnects after a dropped stream, replays
// from any sequence number) and listeners are poked when one is added.
// The history lives in memory; a restarted server starts a new one whose
// numbers are above every number the last server gave (see `first_seq`),
// so a watcher resuming across the restart misses none of the new events.
//
// Thread-safety: all methods may be called from any thread at once.
// Listeners run on the publishing thread after the feed's lock is released;
// they must not block (a watch reactor only schedules a write).
#ifndef AUTOQ_SERVER_EVENT_FEED_H_
#define AUTOQ_SERVER_EVENT_FEED_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "proto/autoq.pb.h"

namespace autoq::server {

class EventFeed {
 public:
  using Listener = std::function<void()>;

  // The first event gets sequence number `first_seq` (clamped to >= 1).
  explicit EventFeed(int64_t first_seq = 1);

  // Appends `event` with the next sequence number and the current
  // time, and pokes the listeners. After an event published with
  // `last` = true, further events are dropped. Returns the sequence number
  // (0 if dropped).
  int64_t Publish(JobEvent event, bool last = false);

  // The first event with seq > after_seq, if any.
  bool Next(int64_t after_seq, JobEvent* event) const;
  // The events with seq > after_seq, oldest first, at most `max`; shared,
  // not copied (events never change once published).
  std::vector<std::shared_ptr<const JobEvent>> Since(int64_t after_seq,
                                                     size_t max) const;

  // True when the last event was published and `after_seq` is past it.
  bool Exhausted(int64_t after_seq) const;

  // The last sequence number given; first_seq - 1 before any event.
  int64_t last_seq() const;

  // Returns an id for Unsubscribe.
  int64_t Subscribe(Listener listener);
  void Unsubscribe(int64_t id);

 private:
  using Listeners = std::map<int64_t, Listener>;

  mutable std::mutex mu_;
  const int64_t base_;  // seq of events_[i] is base_ + i + 1
  std::vector<std::shared_ptr<const JobEvent>> events_;  // guarded by mu_
  bool ended_ = false;                                   // guarded by mu_
  // Copied on change, not on Publish: an event pokes a hundred watchers
  // without copying a hundred functions.
  std::shared_ptr<const Listeners> listeners_;  // guarded by mu_
  int64_t next_listener_ = 1;                   // guarded by mu_
};

}  // namespace autoq::server

#endif  // AUTOQ_SERVER_EVENT_FEED_H_
