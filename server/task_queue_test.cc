#include "server/task_queue.h"

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "search/result_store.h"
#include "server/server_store.h"
#include "server/test_store.h"
#include "tests/testing.h"

namespace autoq::server {
namespace {

using ::autoq::server::test_util::RawExec;

using ::autoq::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

constexpr int64_t kLeaseMs = 10000;
constexpr int64_t kT0 = 1700000000000;  // Unix ms

// Records the calls of the waiters it makes.
class Calls {
 public:
  struct Call {
    absl::Status status;
    std::string result;
  };

  TaskQueue::Waiter Waiter() {
    return [this](absl::Status status, const std::string& result) {
      std::lock_guard<std::mutex> lock(mu_);
      calls_.push_back({std::move(status), result});
    };
  }
  std::vector<Call> Get() const {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }
  size_t size() const { return Get().size(); }

 private:
  mutable std::mutex mu_;
  std::vector<Call> calls_;
};

TaskSpec Spec(const std::string& key, const std::string& job) {
  TaskSpec s;
  s.key = key;
  s.job_id = job;
  s.stage = 2;
  s.wbits = {8, 4};
  s.abits = {8, 8};
  return s;
}

class TaskQueueTest : public test_util::StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    queue_ = MustOpenQueue(kT0);
    ASSERT_NE(queue_, nullptr);
  }

  std::unique_ptr<TaskQueue> MustOpenQueue(int64_t now_ms) {
    auto queue = TaskQueue::Open(store_.get(), options_, now_ms);
    EXPECT_TRUE(queue.ok()) << queue.status();
    return queue.ok() ? std::move(*queue) : nullptr;
  }

  Lease MustLease(const std::string& worker, int64_t now_ms = kT0) {
    auto lease = queue_->LeaseNext(worker, now_ms);
    EXPECT_TRUE(lease.ok()) << lease.status();
    EXPECT_TRUE(lease.ok() && lease->has_value()) << "nothing to lease";
    return lease.ok() && lease->has_value() ? **lease : Lease();
  }

  bool NothingToLease(const std::string& worker) {
    auto lease = queue_->LeaseNext(worker, kT0);
    EXPECT_TRUE(lease.ok()) << lease.status();
    return lease.ok() && !lease->has_value();
  }

  // Persists into the result cache, as the worker service does, counting
  // calls.
  std::function<absl::Status(const TaskRow&)> Persist(
      const std::string& key, const std::string& value) {
    return [this, key, value](const TaskRow& task) {
      ++persisted_;
      EXPECT_EQ(task.key, key);
      search::ResultSummary summary;
      summary.device = "cpu";
      return results_->Put(key, value, summary);
    };
  }

  std::vector<TaskRow> StoredTasks() {
    auto tasks = store_->ListTasks();
    EXPECT_TRUE(tasks.ok()) << tasks.status();
    return tasks.ok() ? *tasks : std::vector<TaskRow>();
  }

  static void ExpectCounts(QueueCounts c, int64_t queued, int64_t leased) {
    EXPECT_EQ(c.queued, queued);
    EXPECT_EQ(c.leased, leased);
  }

  TaskQueueOptions options_{kLeaseMs, 3};
  std::unique_ptr<TaskQueue> queue_;
  int persisted_ = 0;
};

TEST_F(TaskQueueTest, OneTaskPerKeyWithWaitersFromTwoJobs) {
  Calls a, b;
  ASSERT_TRUE(queue_->Enqueue(Spec("k", "j-a"), a.Waiter()).ok());
  ASSERT_TRUE(queue_->Enqueue(Spec("k", "j-b"), b.Waiter()).ok());
  ExpectCounts(queue_->Counts(), 1, 0);
  ExpectCounts(queue_->CountsForJob("j-a"), 1, 0);
  ExpectCounts(queue_->CountsForJob("j-b"), 1, 0);
  ASSERT_EQ(StoredTasks().size(), 1u);

  Lease lease = MustLease("w1");
  EXPECT_EQ(lease.task.key, "k");
  EXPECT_EQ(lease.task.job_id, "j-a");
  EXPECT_EQ(lease.task.stage, 2);
  EXPECT_THAT(lease.task.wbits, ElementsAre(8, 4));
  EXPECT_THAT(lease.task.abits, ElementsAre(8, 8));
  EXPECT_EQ(lease.task.attempts, 1);
  EXPECT_EQ(lease.lease_id.size(), 32u);
  EXPECT_EQ(lease.deadline_ms, kT0 + kLeaseMs);
  EXPECT_TRUE(NothingToLease("w2"));
  // Asked again while leased: a third waiter, still one task.
  ASSERT_TRUE(queue_->Enqueue(Spec("k", "j-b"), b.Waiter()).ok());
  ExpectCounts(queue_->Counts(), 0, 1);
  ExpectCounts(queue_->CountsForJob("j-b"), 0, 1);

  std::vector<TaskRow> stored = StoredTasks();
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0].lease_id, lease.lease_id);
  EXPECT_EQ(stored[0].worker_id, "w1");
  EXPECT_EQ(stored[0].deadline_ms, kT0 + kLeaseMs);
  EXPECT_EQ(stored[0].attempts, 1);

  auto done = queue_->Complete("w1", lease.lease_id, lease.task.task_id, "R",
                               Persist("k", "R"));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(*done, TaskQueue::CompleteOutcome::kAccepted);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_TRUE(a.Get()[0].status.ok());
  EXPECT_EQ(a.Get()[0].result, "R");
  ASSERT_EQ(b.size(), 2u);
  for (const Calls::Call& c : b.Get()) {
    EXPECT_TRUE(c.status.ok());
    EXPECT_EQ(c.result, "R");
  }
  EXPECT_EQ(*results_->Get("k"), "R");
  EXPECT_THAT(StoredTasks(), IsEmpty());
  ExpectCounts(queue_->Counts(), 0, 0);
  ExpectCounts(queue_->CountsForJob("j-a"), 0, 0);
}

// Job b looked in the cache before job a's task finished and enqueues
// after: the lookup under the queue's lock answers it, nothing runs twice.
TEST_F(TaskQueueTest, KeyFinishedSinceTheCacheLookupIsNotQueuedAgain) {
  TaskQueue::DoneLookup lookup = [this](const std::string& key) {
    return results_->Get(key);
  };
  Calls a, b;
  ASSERT_TRUE(queue_->Enqueue(Spec("k", "j-a"), a.Waiter(), lookup).ok());
  Lease lease = MustLease("w1");
  ASSERT_TRUE(queue_
                  ->Complete("w1", lease.lease_id, lease.task.task_id, "R",
                             Persist("k", "R"))
                  .ok());
  ASSERT_TRUE(queue_->Enqueue(Spec("k", "j-b"), b.Waiter(), lookup).ok());
  ASSERT_EQ(b.size(), 1u);
  EXPECT_TRUE(b.Get()[0].status.ok());
  EXPECT_EQ(b.Get()[0].result, "R");
  EXPECT_TRUE(NothingToLease("w1"));
  EXPECT_THAT(StoredTasks(), IsEmpty());
  ExpectCounts(queue_->CountsForJob("j-b"), 0, 0);

  // Not done: queued as usual; a failing lookup changes nothing.
  ASSERT_TRUE(queue_->Enqueue(Spec("k2", "j-b"), b.Waiter(), lookup).ok());
  ExpectCounts(queue_->Counts(), 1, 0);
  EXPECT_EQ(queue_
                ->Enqueue(Spec("k3", "j-b"), b.Waiter(),
                          [](const std::string&)
                              -> absl::StatusOr<std::optional<std::string>> {
                            return absl::InternalError("disk");
                          })
                .code(),
            absl::StatusCode::kInternal);
  ExpectCounts(queue_->Counts(), 1, 0);
  EXPECT_EQ(b.size(), 1u);
}

TEST_F(TaskQueueTest, FairAcrossJobs) {
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(queue_->Enqueue(Spec(absl::StrCat("a", i), "j-a"), {}).ok());
  }
  ASSERT_TRUE(queue_->Enqueue(Spec("b0", "j-b"), {}).ok());
  ASSERT_TRUE(queue_->Enqueue(Spec("b1", "j-b"), {}).ok());
  std::vector<std::string> keys;
  for (int i = 0; i < 4; ++i) keys.push_back(MustLease("w").task.key);
  EXPECT_THAT(keys, UnorderedElementsAre("a0", "a1", "b0", "b1"));
  // Each job's own tasks in the order they were enqueued.
  EXPECT_LT(std::find(keys.begin(), keys.end(), "a0"),
            std::find(keys.begin(), keys.end(), "a1"));
  EXPECT_LT(std::find(keys.begin(), keys.end(), "b0"),
            std::find(keys.begin(), keys.end(), "b1"));
  EXPECT_EQ(MustLease("w").task.key, "a2");
  ExpectCounts(queue_->CountsForJob("j-a"), 97, 3);
  ExpectCounts(queue_->CountsForJob("j-b"), 0, 2);
}

TEST_F(TaskQueueTest, ExpiredLeaseIsRequeuedAndItsCompletionRejected) {
  Calls calls;
  ASSERT_TRUE(queue_->Enqueue(Spec("k", "j-a"), calls.Waiter()).ok());
  Lease first = MustLease("w1");
  // The deadline itself is still in time.
  EXPECT_THAT(queue_->ExpireLeases(kT0 + kLeaseMs), IsEmpty());
  EXPECT_THAT(queue_->ExpireLeases(kT0 + kLeaseMs + 1),
              ElementsAre(first.task.task_id));
  ExpectCounts(queue_->Counts(), 1, 0);
  EXPECT_EQ(StoredTasks()[0].lease_id, "");

  auto late = queue_->Complete("w1", first.lease_id, first.task.task_id, "R1",
                               Persist("k", "R1"));
  EXPECT_EQ(late.status().code(), absl::StatusCode::kFailedPrecondition)
      << late.status();
  EXPECT_THAT(std::string(late.status().message()), HasSubstr("not leased"));
  EXPECT_EQ(persisted_, 0);
  EXPECT_EQ(*results_->Get("k"), std::nullopt);
  EXPECT_EQ(calls.size(), 0u);
  std::vector<std::string> lost;
  ASSERT_TRUE(queue_->Heartbeat("w1", {first.lease_id}, kT0, &lost).ok());
  EXPECT_THAT(lost, ElementsAre(first.lease_id));

  Lease second = MustLease("w2", kT0 + kLeaseMs + 2);
  EXPECT_EQ(second.task.task_id, first.task.task_id);
  EXPECT_NE(second.lease_id, first.lease_id);
  EXPECT_EQ(second.task.attempts, 2);
  // The old lease stays rejected, and so is the new one from another worker.
  EXPECT_EQ(queue_
                ->Complete("w1", first.lease_id, first.task.task_id, "R1",
                           Persist("k", "R1"))
                .status()
                .code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(queue_
                ->Complete("w1", second.lease_id, first.task.task_id, "R1",
                           Persist("k", "R1"))
                .status()
                .code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(persisted_, 0);
  auto done = queue_->Complete("w2", second.lease_id, second.task.task_id, "R2",
                               Persist("k", "R2"));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(*done, TaskQueue::CompleteOutcome::kAccepted);
  EXPECT_EQ(*results_->Get("k"), "R2");
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls.Get()[0].result, "R2");
}

TEST_F(TaskQueueTest, SameWorkersOldLeaseIsRejected) {
  ASSERT_TRUE(queue_->Enqueue(Spec("k", "j-a"), {}).ok());
  Lease first = MustLease("w1");
  ASSERT_THAT(queue_->ExpireLeases(kT0 + kLeaseMs + 1),
              ElementsAre(first.task.task_id));
  Lease second = MustLease("w1", kT0 + kLeaseMs + 1);
  auto late = queue_->Complete("w1", first.lease_id, first.task.task_id, "R1",
                               Persist("k", "R1"));
  EXPECT_EQ(late.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(persisted_, 0);
  std::vector<std::string> lost;
  ASSERT_TRUE(
      queue_->Heartbeat("w1", {first.lease_id, second.lease_id}, kT0, &lost)
          .ok());
  EXPECT_THAT(lost, ElementsAre(first.lease_id));
  auto done = queue_->Complete("w1", second.lease_id, second.task.task_id, "R2",
                               Persist("k", "R2"));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(*done, TaskQueue::CompleteOutcome::kAccepted);
}

TEST_F(TaskQueueTest, HeartbeatExtendsHeldLeasesOnly) {
  ASSERT_TRUE(queue_->Enqueue(Spec("k1", "j-a"), {}).ok());
  ASSERT_TRUE(queue_->Enqueue(Spec("k2", "j-a"), {}).ok());
  Lease l1 = MustLease("w1");
  Lease l2 = MustLease("w2");
  std::vector<std::string> lost;
  auto deadline = queue_->Heartbeat(
      "w1", {l1.lease_id, l2.lease_id, "no-such-lease"}, kT0 + 9000, &lost);
  ASSERT_TRUE(deadline.ok()) << deadline.status();
  EXPECT_EQ(*deadline, kT0 + 9000 + kLeaseMs);
  EXPECT_THAT(lost, ElementsAre(l2.lease_id, "no-such-lease"));
  EXPECT_THAT(queue_->ExpireLeases(kT0 + kLeaseMs + 1),
              ElementsAre(l2.task.task_id));
  std::vector<TaskRow> stored = StoredTasks();
  ASSERT_EQ(stored.size(), 2u);
  EXPECT_EQ(stored[0].deadline_ms, kT0 + 9000 + kLeaseMs);
  EXPECT_EQ(stored[1].lease_id, "");
  ExpectCounts(queue_->Counts(), 1, 1);
}

TEST_F(TaskQueueTest, CompleteTwiceIsADuplicate) {
  Calls calls;
  ASSERT_TRUE(queue_->Enqueue(Spec("k", "j-a"), calls.Waiter()).ok());
  Lease lease = MustLease("w1");
  for (int i = 0; i < 2; ++i) {
    auto done = queue_->Complete("w1", lease.lease_id, lease.task.task_id, "R",
                                 Persist("k", "R"));
    ASSERT_TRUE(done.ok()) << done.status();
    EXPECT_EQ(*done, i == 0 ? TaskQueue::CompleteOutcome::kAccepted
                            : TaskQueue::CompleteOutcome::kDuplicate);
  }
  EXPECT_EQ(persisted_, 1);
  EXPECT_EQ(calls.size(), 1u);
}

TEST_F(TaskQueueTest, FailRetriesUntilMaxAttempts) {
  Calls a, b;
  ASSERT_TRUE(queue_->Enqueue(Spec("k", "j-a"), a.Waiter()).ok());
  ASSERT_TRUE(queue_->Enqueue(Spec("k", "j-b"), b.Waiter()).ok());
  for (int attempt = 1; attempt <= 3; ++attempt) {
    Lease lease = MustLease("w1");
    EXPECT_EQ(lease.task.attempts, attempt);
    EXPECT_EQ(StoredTasks()[0].attempts, attempt);
    EXPECT_EQ(
        queue_->Fail("w2", lease.lease_id, lease.task.task_id, "x").code(),
        absl::StatusCode::kFailedPrecondition);
    ASSERT_TRUE(
        queue_->Fail("w1", lease.lease_id, lease.task.task_id, "CUDA OOM")
            .ok());
    if (attempt < 3) {
      EXPECT_EQ(a.size(), 0u);
      ExpectCounts(queue_->Counts(), 1, 0);
      EXPECT_EQ(StoredTasks()[0].lease_id, "");
    } else {
      // Retried call of a task already dropped: nothing happens.
      EXPECT_TRUE(
          queue_->Fail("w1", lease.lease_id, lease.task.task_id, "x").ok());
    }
  }
  for (Calls* calls : {&a, &b}) {
    ASSERT_EQ(calls->size(), 1u);
    EXPECT_EQ(calls->Get()[0].status.code(), absl::StatusCode::kInternal);
    EXPECT_EQ(calls->Get()[0].status.message(), "CUDA OOM");
  }
  EXPECT_THAT(StoredTasks(), IsEmpty());
  ExpectCounts(queue_->Counts(), 0, 0);
  EXPECT_TRUE(NothingToLease("w1"));
}

TEST_F(TaskQueueTest, OptionsAreClamped) {
  options_ = {1, 0};  // 1 ms leases, no attempts
  queue_ = MustOpenQueue(kT0);
  Calls calls;
  ASSERT_TRUE(queue_->Enqueue(Spec("k", "j-a"), calls.Waiter()).ok());
  Lease lease = MustLease("w1");
  EXPECT_EQ(lease.deadline_ms, kT0 + 1000);
  ASSERT_TRUE(queue_->Fail("w1", lease.lease_id, lease.task.task_id, "e").ok());
  ASSERT_EQ(calls.size(), 1u);  // one attempt only
  EXPECT_EQ(calls.Get()[0].status.code(), absl::StatusCode::kInternal);
}

TEST_F(TaskQueueTest, CancelJob) {
  Calls a, b;
  ASSERT_TRUE(queue_->Enqueue(Spec("k3", "j-a"), a.Waiter()).ok());
  Lease leased = MustLease("w1");
  ASSERT_EQ(leased.task.key, "k3");
  ASSERT_TRUE(queue_->Enqueue(Spec("k1", "j-a"), a.Waiter()).ok());
  ASSERT_TRUE(queue_->Enqueue(Spec("k2", "j-a"), a.Waiter()).ok());
  ASSERT_TRUE(queue_->Enqueue(Spec("k2", "j-b"), b.Waiter()).ok());

  queue_->CancelJob("j-a");
  ASSERT_EQ(a.size(), 3u);
  for (const Calls::Call& c : a.Get()) {
    EXPECT_EQ(c.status.code(), absl::StatusCode::kCancelled);
  }
  EXPECT_EQ(b.size(), 0u);
  ExpectCounts(queue_->CountsForJob("j-a"), 0, 0);
  ExpectCounts(queue_->Counts(), 1, 0);
  std::vector<TaskRow> stored = StoredTasks();
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0].key, "k2");

  // The leased task is lost to its worker; a late result is harmless.
  std::vector<std::string> lost;
  ASSERT_TRUE(queue_->Heartbeat("w1", {leased.lease_id}, kT0, &lost).ok());
  EXPECT_THAT(lost, ElementsAre(leased.lease_id));
  auto late = queue_->Complete("w1", leased.lease_id, leased.task.task_id, "R",
                               Persist("k3", "R"));
  ASSERT_TRUE(late.ok()) << late.status();
  EXPECT_EQ(*late, TaskQueue::CompleteOutcome::kDuplicate);
  EXPECT_EQ(persisted_, 0);

  // k2, first asked for by the cancelled job, is served under j-b.
  Lease k2 = MustLease("w2");
  EXPECT_EQ(k2.task.key, "k2");
  EXPECT_EQ(k2.task.job_id, "j-b");
  ASSERT_TRUE(queue_
                  ->Complete("w2", k2.lease_id, k2.task.task_id, "R2",
                             Persist("k2", "R2"))
                  .ok());
  ASSERT_EQ(b.size(), 1u);
  EXPECT_TRUE(b.Get()[0].status.ok());
  EXPECT_EQ(a.size(), 3u);
  EXPECT_THAT(StoredTasks(), IsEmpty());
}

TEST_F(TaskQueueTest, ReleaseWorkerRequeuesItsLeases) {
  for (const char* key : {"k1", "k2", "k3"}) {
    ASSERT_TRUE(queue_->Enqueue(Spec(key, "j-a"), {}).ok());
  }
  Lease l1 = MustLease("w1");
  Lease l2 = MustLease("w1");
  Lease l3 = MustLease("w2");
  queue_->ReleaseWorker("w1");
  ExpectCounts(queue_->Counts(), 2, 1);
  std::vector<std::string> lost;
  ASSERT_TRUE(
      queue_->Heartbeat("w1", {l1.lease_id, l2.lease_id}, kT0, &lost).ok());
  EXPECT_EQ(lost.size(), 2u);
  ASSERT_TRUE(queue_->Heartbeat("w2", {l3.lease_id}, kT0, &lost).ok());
  EXPECT_THAT(lost, IsEmpty());
  EXPECT_EQ(MustLease("w3").task.key, "k1");  // back in its place
}

TEST_F(TaskQueueTest, RestartKeepsLeasesAndOrderUntilReEnqueued) {
  Calls before;
  for (const char* key : {"k1", "k2", "k3", "k4"}) {
    ASSERT_TRUE(queue_->Enqueue(Spec(key, "j-a"), before.Waiter()).ok());
  }
  Lease held = MustLease("w1");
  ASSERT_EQ(held.task.key, "k1");
  // SIGKILL: the queue is dropped with nothing saved or cleaned up (it
  // keeps no state of its own beyond what it wrote through), and the
  // stores' connections go away with the process.
  queue_.reset();
  store_.reset();
  results_.reset();
  OpenStores();

  const int64_t t1 = kT0 + 5 * kLeaseMs;  // long past the old deadline
  const int64_t grace = 3 * kLeaseMs;     // workers reconnect with backoff
  options_.restart_grace_ms = grace;
  queue_ = MustOpenQueue(t1);
  ASSERT_NE(queue_, nullptr);
  ExpectCounts(queue_->Counts(), 3, 1);
  std::vector<TaskRow> stored = StoredTasks();
  ASSERT_EQ(stored.size(), 4u);
  EXPECT_EQ(stored[0].lease_id, held.lease_id);
  EXPECT_EQ(stored[0].deadline_ms, t1 + grace);
  EXPECT_THAT(queue_->ExpireLeases(t1 + grace - 1), IsEmpty());
  // Nobody waits yet, so nothing is handed out.
  EXPECT_TRUE(NothingToLease("w2"));
  ExpectCounts(queue_->CountsForJob("j-a"), 0, 0);

  // The worker that held the lease comes back and finishes.
  auto done = queue_->Complete("w1", held.lease_id, held.task.task_id, "R1",
                               Persist("k1", "R1"));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(*done, TaskQueue::CompleteOutcome::kAccepted);
  EXPECT_EQ(*results_->Get("k1"), "R1");

  // The job resumes and asks again, in any order: tasks keep their places.
  Calls after;
  ASSERT_TRUE(queue_->Enqueue(Spec("k4", "j-a"), after.Waiter()).ok());
  ASSERT_TRUE(queue_->Enqueue(Spec("k2", "j-a"), after.Waiter()).ok());
  ExpectCounts(queue_->CountsForJob("j-a"), 2, 0);
  Lease l2 = MustLease("w2", t1);
  Lease l4 = MustLease("w2", t1);
  EXPECT_EQ(l2.task.key, "k2");
  EXPECT_EQ(l4.task.key, "k4");
  EXPECT_EQ(l2.task.task_id, stored[1].task_id);
  EXPECT_NE(l2.lease_id, held.lease_id);
  EXPECT_TRUE(NothingToLease("w2"));  // k3 waits for its job
  ASSERT_TRUE(queue_->Enqueue(Spec("k3", "j-a"), after.Waiter()).ok());
  EXPECT_EQ(MustLease("w2", t1).task.key, "k3");
  // A new task gets an id after the old ones.
  ASSERT_TRUE(queue_->Enqueue(Spec("k5", "j-a"), after.Waiter()).ok());
  EXPECT_GT(MustLease("w2", t1).task.task_id, stored[3].task_id);

  ASSERT_TRUE(queue_
                  ->Complete("w2", l2.lease_id, l2.task.task_id, "R2",
                             Persist("k2", "R2"))
                  .ok());
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after.Get()[0].result, "R2");
  EXPECT_EQ(before.size(), 0u);  // the killed server's waiters are gone
}

TEST_F(TaskQueueTest, CancelDropsLoadedTasksOfTheJob) {
  ASSERT_TRUE(queue_->Enqueue(Spec("a1", "j-a"), {}).ok());
  ASSERT_TRUE(queue_->Enqueue(Spec("b1", "j-b"), {}).ok());
  queue_.reset();
  queue_ = MustOpenQueue(kT0);
  queue_->CancelJob("j-a");
  std::vector<TaskRow> stored = StoredTasks();
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0].key, "b1");
  ExpectCounts(queue_->Counts(), 1, 0);
}

TEST_F(TaskQueueTest, PersistFailureLeavesTheTaskLeased) {
  Calls calls;
  ASSERT_TRUE(queue_->Enqueue(Spec("k", "j-a"), calls.Waiter()).ok());
  Lease lease = MustLease("w1");
  auto failed = queue_->Complete(
      "w1", lease.lease_id, lease.task.task_id, "R",
      [](const TaskRow&) { return absl::UnavailableError("disk busy"); });
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(calls.size(), 0u);
  ExpectCounts(queue_->Counts(), 0, 1);
  EXPECT_EQ(StoredTasks()[0].lease_id, lease.lease_id);
  auto done = queue_->Complete("w1", lease.lease_id, lease.task.task_id, "R",
                               Persist("k", "R"));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(*done, TaskQueue::CompleteOutcome::kAccepted);
  EXPECT_EQ(calls.size(), 1u);
}

// Write-through: a store write that fails leaves the queue as it was.
TEST_F(TaskQueueTest, FailedStoreWritesChangeNothing) {
  Calls calls;
  RawExec(path_,
          "CREATE TRIGGER no_insert BEFORE INSERT ON tasks "
          "BEGIN SELECT RAISE(ABORT, 'disk on fire'); END");
  absl::Status st = queue_->Enqueue(Spec("k", "j-a"), calls.Waiter());
  EXPECT_THAT(std::string(st.message()), HasSubstr("disk on fire"));
  ExpectCounts(queue_->Counts(), 0, 0);
  ExpectCounts(queue_->CountsForJob("j-a"), 0, 0);
  EXPECT_TRUE(NothingToLease("w1"));
  RawExec(path_, "DROP TRIGGER no_insert");
  ASSERT_TRUE(queue_->Enqueue(Spec("k", "j-a"), calls.Waiter()).ok());

  RawExec(path_,
          "CREATE TRIGGER no_update BEFORE UPDATE ON tasks "
          "BEGIN SELECT RAISE(ABORT, 'disk on fire'); END");
  EXPECT_FALSE(queue_->LeaseNext("w1", kT0).ok());
  ExpectCounts(queue_->Counts(), 1, 0);
  RawExec(path_, "DROP TRIGGER no_update");
  Lease lease = MustLease("w1");

  RawExec(path_,
          "CREATE TRIGGER no_update BEFORE UPDATE ON tasks "
          "BEGIN SELECT RAISE(ABORT, 'disk on fire'); END");
  EXPECT_FALSE(
      queue_->Heartbeat("w1", {lease.lease_id}, kT0 + 5000, nullptr).ok());
  EXPECT_THAT(queue_->ExpireLeases(kT0 + kLeaseMs + 1), IsEmpty());
  ExpectCounts(queue_->Counts(), 0, 1);  // still leased; retried next sweep
  RawExec(path_, "DROP TRIGGER no_update");

  RawExec(path_,
          "CREATE TRIGGER no_delete BEFORE DELETE ON tasks "
          "BEGIN SELECT RAISE(ABORT, 'disk on fire'); END");
  EXPECT_FALSE(queue_
                   ->Complete("w1", lease.lease_id, lease.task.task_id, "R",
                              Persist("k", "R"))
                   .ok());
  EXPECT_EQ(calls.size(), 0u);
  ExpectCounts(queue_->Counts(), 0, 1);
  RawExec(path_, "DROP TRIGGER no_delete");
  auto done = queue_->Complete("w1", lease.lease_id, lease.task.task_id, "R",
                               Persist("k", "R"));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(*done, TaskQueue::CompleteOutcome::kAccepted);
  EXPECT_EQ(calls.size(), 1u);
  EXPECT_EQ(persisted_, 2);  // the result cache keeps the first
}

TEST_F(TaskQueueTest, RejectsEmptyIds) {
  EXPECT_EQ(queue_->Enqueue(Spec("", "j-a"), {}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(queue_->Enqueue(Spec("k", ""), {}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(queue_->LeaseNext("", kT0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(TaskQueue::Open(nullptr, {}, kT0).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// 8 workers lease and complete 2000 tasks of 4 jobs while 2 threads enqueue
// them; every 7th task fails once first. Each task must be persisted and
// each waiter told exactly once.
TEST_F(TaskQueueTest, ConcurrentWorkersCompleteEveryTaskOnce) {
  constexpr int kTasks = 2000;
  constexpr int kWorkers = 8;
  std::vector<std::atomic<int>> persisted(kTasks), told(kTasks), failed(kTasks);
  std::atomic<int> completed{0};
  std::atomic<bool> enqueue_error{false};

  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int e = 0; e < 2; ++e) {
    threads.emplace_back([&, e] {
      for (int i = e; i < kTasks; i += 2) {
        TaskSpec spec = Spec(absl::StrCat(i), absl::StrCat("j-", i % 4));
        absl::Status st = queue_->Enqueue(
            spec, [&, i](absl::Status status, const std::string& result) {
              if (status.ok() && result == absl::StrCat("r", i)) ++told[i];
            });
        if (!st.ok()) enqueue_error = true;
      }
    });
  }
  for (int w = 0; w < kWorkers; ++w) {
    threads.emplace_back([&, w] {
      const std::string worker = absl::StrCat("w", w);
      while (completed.load() < kTasks && !enqueue_error.load()) {
        auto lease = queue_->LeaseNext(worker, kT0);
        if (!lease.ok()) {
          ADD_FAILURE() << lease.status();
          return;
        }
        if (!lease->has_value()) {
          std::this_thread::yield();
          continue;
        }
        const Lease& l = **lease;
        const int i = std::stoi(l.task.key);
        if (i % 7 == 0 && l.task.attempts == 1) {
          ++failed[i];
          absl::Status st =
              queue_->Fail(worker, l.lease_id, l.task.task_id, "flaky");
          if (!st.ok()) ADD_FAILURE() << st;
          continue;
        }
        if (w == 0) {
          auto hb = queue_->Heartbeat(worker, {l.lease_id}, kT0, nullptr);
          if (!hb.ok()) ADD_FAILURE() << hb.status();
        }
        const std::string result = absl::StrCat("r", i);
        auto done = queue_->Complete(worker, l.lease_id, l.task.task_id, result,
                                     [&, i, result](const TaskRow& t) {
                                       ++persisted[i];
                                       search::ResultSummary s;
                                       return results_->Put(t.key, result, s);
                                     });
        if (!done.ok() || *done != TaskQueue::CompleteOutcome::kAccepted) {
          ADD_FAILURE() << "task " << i << ": " << done.status();
          return;
        }
        ++completed;
      }
    });
  }
  std::thread observer([&] {
    while (completed.load() < kTasks && !enqueue_error.load()) {
      QueueCounts c = queue_->Counts();
      EXPECT_GE(c.queued, 0);
      EXPECT_LE(c.leased, kWorkers);
      queue_->CountsForJob("j-1");
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  for (std::thread& t : threads) t.join();
  observer.join();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  ASSERT_FALSE(enqueue_error.load());
  std::printf(
      "[ throughput ] %d tasks (enqueue, lease, complete with persist) by %d "
      "workers in %.3f s: %.0f tasks/s\n",
      kTasks, kWorkers, seconds, kTasks / seconds);

  EXPECT_EQ(completed.load(), kTasks);
  for (int i = 0; i < kTasks; ++i) {
    EXPECT_EQ(persisted[i].load(), 1) << "task " << i;
    EXPECT_EQ(told[i].load(), 1) << "task " << i;
    EXPECT_EQ(failed[i].load(), i % 7 == 0 ? 1 : 0) << "task " << i;
  }
  ExpectCounts(queue_->Counts(), 0, 0);
  EXPECT_THAT(StoredTasks(), IsEmpty());
  auto count = results_->CountResults();
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(*count, kTasks);
}

}  // namespace
}  // namespace autoq::server
