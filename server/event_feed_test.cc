#include "server/event_feed.h"

#include <string>

#include "gtest/gtest.h"

namespace autoq::server {
namespace {

JobEvent Log(const std::string& text) {
  JobEvent e;
  e.set_log(text);
  return e;
}

TEST(EventFeedTest, NumbersFromOneAndReplaysFromAnyPoint) {
  EventFeed feed;
  EXPECT_EQ(feed.last_seq(), 0);
  EXPECT_EQ(feed.Publish(Log("a")), 1);
  EXPECT_EQ(feed.Publish(Log("b")), 2);
  JobEvent e;
  ASSERT_TRUE(feed.Next(0, &e));
  EXPECT_EQ(e.log(), "a");
  ASSERT_TRUE(feed.Next(1, &e));
  EXPECT_EQ(e.log(), "b");
  EXPECT_EQ(e.seq(), 2);
  EXPECT_GT(e.unix_ms(), 0);
  EXPECT_FALSE(feed.Next(2, &e));
  EXPECT_FALSE(feed.Exhausted(2));  // more may come
}

TEST(EventFeedTest, NothingAfterTheLastEvent) {
  EventFeed feed;
  feed.Publish(Log("a"));
  EXPECT_EQ(feed.Publish(Log("end"), /*last=*/true), 2);
  EXPECT_EQ(feed.Publish(Log("late")), 0);
  EXPECT_EQ(feed.last_seq(), 2);
  EXPECT_FALSE(feed.Exhausted(1));
  EXPECT_TRUE(feed.Exhausted(2));
}

TEST(EventFeedTest, AFeedStartingLaterReplaysOlderNumbersFromItsStart) {
  // What a restarted server does: numbers above the last server's, and a
  // watcher resuming from one of those sees this feed from the beginning.
  EventFeed feed(1001);
  EXPECT_EQ(feed.last_seq(), 1000);
  EXPECT_EQ(feed.Publish(Log("a")), 1001);
  EXPECT_EQ(feed.Publish(Log("b"), /*last=*/true), 1002);
  JobEvent e;
  ASSERT_TRUE(feed.Next(37, &e));
  EXPECT_EQ(e.seq(), 1001);
  ASSERT_TRUE(feed.Next(1001, &e));
  EXPECT_EQ(e.log(), "b");
  EXPECT_FALSE(feed.Next(1002, &e));
  EXPECT_FALSE(feed.Exhausted(999));
  EXPECT_TRUE(feed.Exhausted(1002));
}

TEST(EventFeedTest, ListenersArePokedUntilUnsubscribed) {
  EventFeed feed;
  int pokes = 0;
  const int64_t id = feed.Subscribe([&] { ++pokes; });
  feed.Publish(Log("a"));
  feed.Unsubscribe(id);
  feed.Publish(Log("b"));
  EXPECT_EQ(pokes, 1);
}

}  // namespace
}  // namespace autoq::server
