// The worker's parts on their own: the model cache, the completion retry
// rule and the task thread (evaluator_worker_test runs the whole worker).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "common/sha256.h"
#include "evaluator/completion.h"
#include "evaluator/model_cache.h"
#include "evaluator/task_thread.h"
#include "tests/testing.h"

namespace autoq::evaluator {
namespace {

using testing::TempDir;

// A fetcher serving `bytes` and counting its calls.
struct FakeServer {
  std::string bytes;
  int calls = 0;
  ModelCache::Fetcher fetcher() {
    return [this](const std::string&,
                  const std::atomic<bool>*) -> absl::StatusOr<std::string> {
      ++calls;
      return bytes;
    };
  }
};

TEST(ModelCacheTest, FetchesOnceThenServesTheVerifiedFile) {
  TempDir tmp;
  ModelCache cache(tmp.File("models"), nullptr);
  FakeServer server{"model bytes"};
  const std::string sha = Sha256Hex(server.bytes);
  std::atomic<bool> cancel{false};
  auto path = cache.Ensure(sha, server.fetcher(), &cancel);
  ASSERT_TRUE(path.ok()) << path.status();
  EXPECT_EQ(*path, cache.PathOf(sha));
  EXPECT_EQ(testing::ReadFile(*path), server.bytes);
  ASSERT_TRUE(cache.Ensure(sha, server.fetcher(), &cancel).ok());
  EXPECT_EQ(server.calls, 1);
  EXPECT_EQ(cache.fetches(), 1);
}

TEST(ModelCacheTest, RefetchesACorruptCachedFile) {
  TempDir tmp;
  ModelCache cache(tmp.path(), nullptr);
  FakeServer server{"the real model"};
  const std::string sha = Sha256Hex(server.bytes);
  testing::WriteFile(cache.PathOf(sha), "the real mod");  // truncated
  std::atomic<bool> cancel{false};
  auto path = cache.Ensure(sha, server.fetcher(), &cancel);
  ASSERT_TRUE(path.ok()) << path.status();
  EXPECT_EQ(server.calls, 1);
  EXPECT_EQ(testing::ReadFile(*path), server.bytes);
}

TEST(ModelCacheTest, RejectsBadHashesAndWrongBytes) {
  TempDir tmp;
  ModelCache cache(tmp.path(), nullptr);
  FakeServer server{"some other model"};
  std::atomic<bool> cancel{false};
  EXPECT_EQ(
      cache.Ensure("not-a-hash", server.fetcher(), &cancel).status().code(),
      absl::StatusCode::kInvalidArgument);
  const std::string sha = Sha256Hex("the model asked for");
  EXPECT_EQ(cache.Ensure(sha, server.fetcher(), &cancel).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_FALSE(std::filesystem::exists(cache.PathOf(sha)));
  EXPECT_EQ(server.calls, 1);  // the bad hash never reached the server
}

TEST(CompletionRuleTest, ActionByAnswer) {
  using C = grpc::StatusCode;
  using A = CompletionAction;
  EXPECT_EQ(NextCompletionAction(C::OK, false, true), A::kDone);
  EXPECT_EQ(NextCompletionAction(C::UNAUTHENTICATED, false, false), A::kFatal);
  EXPECT_EQ(NextCompletionAction(C::PERMISSION_DENIED, true, false), A::kFatal);
  EXPECT_EQ(NextCompletionAction(C::NOT_FOUND, false, false),
            A::kRegisterAgain);
  EXPECT_EQ(NextCompletionAction(C::NOT_FOUND, true, false), A::kRefused);
  EXPECT_EQ(NextCompletionAction(C::RESOURCE_EXHAUSTED, false, true),
            A::kDropExports);
  EXPECT_EQ(NextCompletionAction(C::UNAVAILABLE, false, false), A::kRetryLater);
  EXPECT_EQ(NextCompletionAction(C::FAILED_PRECONDITION, false, false),
            A::kRefused);
}

// Hooks answering with `answers` in turn and counting everything.
struct FakeCompletion {
  std::vector<grpc::Status> answers;
  size_t sent = 0;
  int registrations = 0, waits = 0;
  bool keep_waiting = true;
  CompletionHooks hooks() {
    CompletionHooks h;
    h.send = [this](autoq::CompleteTaskRequest*, autoq::CompleteTaskResponse*) {
      return answers[std::min(sent++, answers.size() - 1)];
    };
    h.register_again = [this] {
      ++registrations;
      return absl::OkStatus();
    };
    h.wait = [this] {
      ++waits;
      return keep_waiting;
    };
    return h;
  }
};

TEST(CompletionRuleTest, RetriesWhileTheServerIsAway) {
  FakeCompletion fake{{grpc::Status(grpc::StatusCode::UNAVAILABLE, "away"),
                       grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, ""),
                       grpc::Status::OK}};
  autoq::CompleteTaskRequest request;
  CompletionOutcome out = SendCompletion(&request, "w", fake.hooks());
  EXPECT_EQ(out.kind, CompletionOutcome::kTaken);
  EXPECT_EQ(fake.sent, 3u);
  EXPECT_EQ(fake.waits, 2);
}

TEST(CompletionRuleTest, RegistersAgainOnceThenGivesUp) {
  FakeCompletion fake{{grpc::Status(grpc::StatusCode::NOT_FOUND, "who?")}};
  autoq::CompleteTaskRequest request;
  CompletionOutcome out = SendCompletion(&request, "w", fake.hooks());
  EXPECT_EQ(out.kind, CompletionOutcome::kRefused);
  EXPECT_EQ(fake.registrations, 1);
  EXPECT_EQ(fake.sent, 2u);
}

TEST(CompletionRuleTest, ExportsTooLargeBecomeAnError) {
  FakeCompletion fake{
      {grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "too big"),
       grpc::Status::OK}};
  autoq::CompleteTaskRequest request;
  request.mutable_result()->set_best_val_top1(90);
  request.add_artifacts()->set_name("model.pt");
  CompletionOutcome out = SendCompletion(&request, "w (cpu)", fake.hooks());
  EXPECT_EQ(out.kind, CompletionOutcome::kTaken);
  EXPECT_EQ(request.artifacts_size(), 0);
  EXPECT_FALSE(request.has_result());
  EXPECT_NE(request.error().find("too large"), std::string::npos);
  EXPECT_EQ(request.error(), out.exports_dropped);
}

TEST(CompletionRuleTest, LeavesOnARefusedTokenOrWhenStopping) {
  FakeCompletion denied{
      {grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "bad token")}};
  autoq::CompleteTaskRequest request;
  CompletionOutcome out = SendCompletion(&request, "w", denied.hooks());
  EXPECT_EQ(out.kind, CompletionOutcome::kFatal);
  EXPECT_EQ(out.status.code(), absl::StatusCode::kUnauthenticated);

  FakeCompletion away{{grpc::Status(grpc::StatusCode::UNAVAILABLE, "")}};
  away.keep_waiting = false;
  out = SendCompletion(&request, "w", away.hooks());
  EXPECT_EQ(out.kind, CompletionOutcome::kAbandoned);
  EXPECT_EQ(away.sent, 1u);
}

TEST(TaskThreadTest, ReturnsTheResultOrStopsOnCancel) {
  TaskThread quick([](const std::atomic<bool>*) {
    EvalRecord r;
    r.device = "here";
    return absl::StatusOr<EvalRecord>(r);
  });
  EXPECT_TRUE(quick.WaitUntil(std::chrono::steady_clock::now() +
                              std::chrono::seconds(30)));
  auto r = quick.Join();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->device, "here");

  TaskThread slow(
      [](const std::atomic<bool>* cancel) -> absl::StatusOr<EvalRecord> {
        while (!cancel->load()) {
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        return absl::CancelledError("cancelled");
      });
  EXPECT_FALSE(slow.WaitUntil(std::chrono::steady_clock::now() +
                              std::chrono::milliseconds(20)));
  slow.Cancel();
  EXPECT_TRUE(absl::IsCancelled(slow.Join().status()));
}

}  // namespace
}  // namespace autoq::evaluator
