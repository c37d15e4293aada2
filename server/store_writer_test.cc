#include "server/store_writer.h"

#include <sqlite3.h>

#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "search/result_store.h"
#include "server/server_store.h"
#include "server/test_store.h"
#include "tests/testing.h"

namespace autoq::server {
namespace {

using ::autoq::testing::TempDir;
using ::testing::HasSubstr;

TaskRow Task(int64_t id, const std::string& key) {
  TaskRow t;
  t.task_id = id;
  t.key = key;
  t.job_id = "j-a";
  t.stage = 2;
  t.wbits = {8, 4};
  t.abits = {8, 8};
  return t;
}

class StoreWriterTest : public test_util::StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    writer_ = std::make_unique<StoreWriter>(store_.get());
  }

  // Holds the writer thread in a write's `before` until Release.
  void Hold() {
    auto held = std::make_shared<std::promise<void>>();
    released_ = held;
    std::promise<void> holding;
    std::future<void> started = holding.get_future();
    writer_->Submit({[&holding, future = held->get_future().share()] {
                       holding.set_value();
                       future.wait();
                       return absl::OkStatus();
                     },
                     nullptr, nullptr});
    started.wait();
  }
  void Release() { released_->set_value(); }

  std::vector<TaskRow> StoredTasks() {
    auto tasks = store_->ListTasks();
    EXPECT_TRUE(tasks.ok()) << tasks.status();
    return tasks.ok() ? *tasks : std::vector<TaskRow>();
  }

  std::unique_ptr<StoreWriter> writer_;
  std::shared_ptr<std::promise<void>> released_;
};

TEST_F(StoreWriterTest, WritesWaitingTogetherShareOneCommitAndKeepTheirOrder) {
  Hold();
  constexpr int kWrites = 50;
  std::vector<std::future<absl::Status>> done;
  std::vector<int> order;
  std::mutex mu;
  for (int i = 1; i <= kWrites; ++i) {
    auto told = std::make_shared<std::promise<absl::Status>>();
    done.push_back(told->get_future());
    writer_->Submit({nullptr,
                     [i](ServerStore::Batch& b) {
                       return b.InsertTaskWithId(
                           Task(i, "k" + std::to_string(i)));
                     },
                     [told, i, &mu, &order](absl::Status st) {
                       {
                         std::lock_guard<std::mutex> lock(mu);
                         order.push_back(i);
                       }
                       told->set_value(std::move(st));
                     }});
  }
  const StoreWriter::Stats before = writer_->stats();
  Release();
  for (auto& d : done) EXPECT_TRUE(d.get().ok());
  // Counted after the completions run.
  StoreWriter::Stats after = writer_->stats();
  for (int i = 0; i < 1000 && after.writes < before.writes + kWrites + 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    after = writer_->stats();
  }
  // The held write's group, then all fifty in one more.
  EXPECT_EQ(after.groups - before.groups, 2);
  EXPECT_EQ(after.largest, kWrites);
  ASSERT_EQ(order.size(), static_cast<size_t>(kWrites));
  for (int i = 0; i < kWrites; ++i) EXPECT_EQ(order[i], i + 1);
  EXPECT_EQ(StoredTasks().size(), static_cast<size_t>(kWrites));
  // Ids chosen by the caller still move AUTOINCREMENT's high-water mark.
  auto next = store_->NextTaskId();
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(*next, kWrites + 1);
}

TEST_F(StoreWriterTest, AFailingWriteIsUndoneAloneAndItsCallerHearsWhy) {
  Hold();
  std::vector<std::future<absl::Status>> done;
  auto submit = [&](ServerStore::Write write) {
    auto told = std::make_shared<std::promise<absl::Status>>();
    done.push_back(told->get_future());
    writer_->Submit({nullptr, std::move(write), [told](absl::Status st) {
                       told->set_value(std::move(st));
                     }});
  };
  submit(
      [](ServerStore::Batch& b) { return b.InsertTaskWithId(Task(1, "k1")); });
  // Two statements, the second failing: the first is undone too.
  submit([](ServerStore::Batch& b) {
    absl::Status st = b.InsertTaskWithId(Task(2, "k2"));
    if (!st.ok()) return st;
    return b.InsertTaskWithId(Task(3, "k1"));  // key taken
  });
  submit([](ServerStore::Batch& b) { return b.SetLease(99, "l", "w", 1, 1); });
  submit([](ServerStore::Batch& b) {
    return b.SetLease(1, "lease-1", "w-1", 5000, 1);
  });
  // A write whose `before` fails never runs.
  auto told = std::make_shared<std::promise<absl::Status>>();
  done.push_back(told->get_future());
  writer_->Submit(
      {[] { return absl::UnavailableError("disk busy"); },
       [](ServerStore::Batch& b) { return b.InsertTaskWithId(Task(4, "k4")); },
       [told](absl::Status st) { told->set_value(std::move(st)); }});
  Release();
  EXPECT_TRUE(done[0].get().ok());
  EXPECT_EQ(done[1].get().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(done[2].get().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(done[3].get().ok());
  absl::Status before = done[4].get();
  EXPECT_EQ(before.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(before.message()), HasSubstr("disk busy"));
  std::vector<TaskRow> stored = StoredTasks();
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0].key, "k1");
  EXPECT_EQ(stored[0].lease_id, "lease-1");
}

TEST_F(StoreWriterTest, RunWaitsForTheCommitAndRefusesTheWriterThread) {
  ASSERT_TRUE(writer_
                  ->Run([](ServerStore::Batch& b) {
                    return b.InsertTaskWithId(Task(7, "k7"));
                  })
                  .ok());
  EXPECT_EQ(StoredTasks().size(), 1u);
  std::promise<absl::Status> nested;
  StoreWriter* writer = writer_.get();
  writer_->Submit({nullptr, nullptr, [&nested, writer](absl::Status) {
                     nested.set_value(writer->Run(nullptr));
                   }});
  EXPECT_EQ(nested.get_future().get().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(StoreWriterTest, DestructionWritesWhatWasSubmitted) {
  for (int i = 1; i <= 20; ++i) {
    writer_->Submit({nullptr,
                     [i](ServerStore::Batch& b) {
                       return b.InsertTaskWithId(
                           Task(i, "k" + std::to_string(i)));
                     },
                     nullptr});
  }
  writer_.reset();
  EXPECT_EQ(StoredTasks().size(), 20u);
}

}  // namespace
}  // namespace autoq::server
