#include "server/event_feed.h"

#include <algorithm>
#include <utility>

#include "common/rpc_util.h"

namespace autoq::server {

EventFeed::EventFeed(int64_t first_seq)
    : base_(std::max<int64_t>(first_seq, 1) - 1) {}

int64_t EventFeed::Publish(JobEvent event, bool last) {
  std::vector<Listener> poke;
  int64_t seq = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (ended_) return 0;
    seq = base_ + static_cast<int64_t>(events_.size()) + 1;
    event.set_seq(seq);
    event.set_unix_ms(UnixMillis());
    events_.push_back(std::move(event));
    ended_ = last;
    poke.reserve(listeners_.size());
    for (const auto& [id, listener] : listeners_) poke.push_back(listener);
  }
  for (const Listener& l : poke) l();
  return seq;
}

bool EventFeed::Next(int64_t after_seq, JobEvent* event) const {
  std::lock_guard<std::mutex> lock(mu_);
  // Anything before this feed's first event replays it from the start.
  const int64_t index = std::max<int64_t>(after_seq - base_, 0);
  if (index >= static_cast<int64_t>(events_.size())) return false;
  *event = events_[index];
  return true;
}

bool EventFeed::Exhausted(int64_t after_seq) const {
  std::lock_guard<std::mutex> lock(mu_);
  return ended_ && after_seq >= base_ + static_cast<int64_t>(events_.size());
}

int64_t EventFeed::last_seq() const {
  std::lock_guard<std::mutex> lock(mu_);
  return base_ + static_cast<int64_t>(events_.size());
}

int64_t EventFeed::Subscribe(Listener listener) {
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t id = next_listener_++;
  listeners_.emplace(id, std::move(listener));
  return id;
}

void EventFeed::Unsubscribe(int64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  listeners_.erase(id);
}

}  // namespace autoq::server
