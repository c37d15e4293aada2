#include "server/event_feed.h"

#include <algorithm>
#include <utility>

#include "common/rpc_util.h"

namespace autoq::server {

EventFeed::EventFeed(int64_t first_seq)
    : base_(std::max<int64_t>(first_seq, 1) - 1),
      listeners_(std::make_shared<const Listeners>()) {}

int64_t EventFeed::Publish(JobEvent event, bool last) {
  std::shared_ptr<const Listeners> poke;
  int64_t seq = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (ended_) return 0;
    seq = base_ + static_cast<int64_t>(events_.size()) + 1;
    event.set_seq(seq);
    event.set_unix_ms(UnixMillis());
    events_.push_back(std::make_shared<const JobEvent>(std::move(event)));
    ended_ = last;
    poke = listeners_;
  }
  for (const auto& [id, listener] : *poke) listener();
  return seq;
}

std::vector<std::shared_ptr<const JobEvent>> EventFeed::Since(
    int64_t after_seq, size_t max) const {
  std::lock_guard<std::mutex> lock(mu_);
  // Anything before this feed's first event replays it from the start.
  const size_t begin =
      static_cast<size_t>(std::max<int64_t>(after_seq - base_, 0));
  if (begin >= events_.size()) return {};
  const size_t end = begin + std::min(max, events_.size() - begin);
  return {events_.begin() + static_cast<std::ptrdiff_t>(begin),
          events_.begin() + static_cast<std::ptrdiff_t>(end)};
}

bool EventFeed::Next(int64_t after_seq, JobEvent* event) const {
  std::vector<std::shared_ptr<const JobEvent>> next = Since(after_seq, 1);
  if (next.empty()) return false;
  *event = *next.front();
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
  auto changed = std::make_shared<Listeners>(*listeners_);
  changed->emplace(id, std::move(listener));
  listeners_ = std::move(changed);
  return id;
}

void EventFeed::Unsubscribe(int64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto changed = std::make_shared<Listeners>(*listeners_);
  changed->erase(id);
  listeners_ = std::move(changed);
}

}  // namespace autoq::server
