// Worker against an in-process test double of the server's WorkerService (a
// real gRPC server on loopback with a small scripted implementation): the
// task loop with real fine-tunes of a fixture model and with the no-op
// evaluator, the model cache, server restarts, refused tokens, lost leases,
// stopping, failing tasks; and the autoq-worker command line.
#include "evaluator/worker.h"

#include <gmock/gmock.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/sha256.h"
#include "proto/autoq.grpc.pb.h"
#include "proto/autoq.pb.h"
#include "qat/model_analysis.h"
#include "tests/testing.h"

extern char** environ;

namespace autoq::evaluator {
namespace {

using ::testing::ElementsAre;
using testing::Fixture;
using ::testing::HasSubstr;
using testing::TempDir;
using Clock = std::chrono::steady_clock;

constexpr char kToken[] = "worker-token-1";
constexpr char kModel[] = "residual_concat.pt";

// What the fake server remembers. It outlives each FakeServer, as the real
// server's SQLite does, so a "restart" (a new server on the same port over
// the same state) keeps leases.
struct FakeState {
  std::mutex mu;
  std::condition_variable cv;

  // Script.
  int heartbeat_seconds = 1;
  int lease_seconds = 4;
  size_t chunk_bytes = 4096;
  std::map<std::string, std::string> models;  // sha256 -> bytes
  std::deque<autoq::Task> queue;
  // From this heartbeat on (1: the first), every lease is reported lost;
  // 0: never.
  int lose_leases_at = 0;
  bool refuse_completions = false;  // CompleteTask answers UNAVAILABLE

  // Seen.
  std::set<std::string> workers;
  int next_id = 0;
  std::map<std::string, std::string> leases;  // lease id -> task id
  int registrations = 0, lease_calls = 0, leases_granted = 0, fetches = 0;
  int heartbeats = 0, refused = 0, unregistrations = 0;
  std::vector<std::string> lost;
  std::vector<autoq::CompleteTaskRequest> completions;
  Clock::time_point lost_at;

  template <typename Pred>
  bool WaitFor(Pred pred,
               std::chrono::seconds timeout = std::chrono::seconds(60)) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, timeout, pred);
  }
};

class FakeWorkerService final : public autoq::WorkerService::Service {
 public:
  explicit FakeWorkerService(FakeState* state) : s_(state) {}

  grpc::Status RegisterWorker(
      grpc::ServerContext* context, const autoq::RegisterWorkerRequest* request,
      autoq::RegisterWorkerResponse* response) override {
    if (!Authorized(context)) return Unauthenticated();
    std::lock_guard<std::mutex> lock(s_->mu);
    const std::string id = absl::StrCat("w", ++s_->next_id);
    s_->workers.insert(id);
    ++s_->registrations;
    response->set_worker_id(id);
    response->set_lease_seconds(s_->lease_seconds);
    response->set_heartbeat_seconds(s_->heartbeat_seconds);
    s_->cv.notify_all();
    return grpc::Status::OK;
  }

  grpc::Status LeaseTask(grpc::ServerContext* context,
                         const autoq::LeaseTaskRequest* request,
                         autoq::LeaseTaskResponse* response) override {
    if (!Authorized(context)) return Unauthenticated();
    std::lock_guard<std::mutex> lock(s_->mu);
    if (!s_->workers.count(request->worker_id())) return UnknownWorker();
    ++s_->lease_calls;
    s_->cv.notify_all();
    if (s_->queue.empty()) {
      response->set_retry_after_ms(20);
      return grpc::Status::OK;
    }
    *response->mutable_task() = s_->queue.front();
    s_->queue.pop_front();
    const std::string lease = absl::StrCat("L", ++s_->leases_granted);
    s_->leases[lease] = response->task().task_id();
    response->set_lease_id(lease);
    response->set_deadline_unix_ms(0);
    return grpc::Status::OK;
  }

  grpc::Status Heartbeat(grpc::ServerContext* context,
                         const autoq::HeartbeatRequest* request,
                         autoq::HeartbeatResponse* response) override {
    if (!Authorized(context)) return Unauthenticated();
    std::lock_guard<std::mutex> lock(s_->mu);
    if (!s_->workers.count(request->worker_id())) return UnknownWorker();
    ++s_->heartbeats;
    for (const std::string& lease : request->lease_ids()) {
      if ((s_->lose_leases_at > 0 && s_->heartbeats >= s_->lose_leases_at) ||
          !s_->leases.count(lease)) {
        s_->leases.erase(lease);
        s_->lost.push_back(lease);
        s_->lost_at = Clock::now();
        response->add_lost_lease_ids(lease);
      }
    }
    s_->cv.notify_all();
    return grpc::Status::OK;
  }

  grpc::Status CompleteTask(grpc::ServerContext* context,
                            const autoq::CompleteTaskRequest* request,
                            autoq::CompleteTaskResponse* response) override {
    if (!Authorized(context)) return Unauthenticated();
    std::lock_guard<std::mutex> lock(s_->mu);
    s_->cv.notify_all();
    if (s_->refuse_completions) {
      ++s_->refused;
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "going down");
    }
    if (!s_->workers.count(request->worker_id())) return UnknownWorker();
    auto it = s_->leases.find(request->lease_id());
    if (it == s_->leases.end() || it->second != request->task_id()) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          "lease not held");
    }
    s_->leases.erase(it);
    s_->completions.push_back(*request);
    return grpc::Status::OK;
  }

  grpc::Status FetchModel(
      grpc::ServerContext* context, const autoq::FetchModelRequest* request,
      grpc::ServerWriter<autoq::DataChunk>* writer) override {
    if (!Authorized(context)) return Unauthenticated();
    std::string bytes;
    size_t chunk_bytes;
    {
      std::lock_guard<std::mutex> lock(s_->mu);
      ++s_->fetches;
      auto it = s_->models.find(request->sha256());
      if (it == s_->models.end()) {
        return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such model");
      }
      bytes = it->second;
      chunk_bytes = s_->chunk_bytes;
    }
    for (size_t at = 0; at < bytes.size(); at += chunk_bytes) {
      autoq::DataChunk chunk;
      if (at == 0) {
        chunk.set_total_bytes(static_cast<int64_t>(bytes.size()));
        chunk.set_sha256(request->sha256());
      }
      chunk.set_data(bytes.substr(at, chunk_bytes));
      if (!writer->Write(chunk)) break;
    }
    return grpc::Status::OK;
  }

  grpc::Status UnregisterWorker(
      grpc::ServerContext* context,
      const autoq::UnregisterWorkerRequest* request,
      autoq::UnregisterWorkerResponse* response) override {
    if (!Authorized(context)) return Unauthenticated();
    std::lock_guard<std::mutex> lock(s_->mu);
    s_->workers.erase(request->worker_id());
    ++s_->unregistrations;
    s_->cv.notify_all();
    return grpc::Status::OK;
  }

 private:
  static bool Authorized(grpc::ServerContext* context) {
    auto it = context->client_metadata().find("authorization");
    return it != context->client_metadata().end() &&
           std::string(it->second.data(), it->second.size()) ==
               absl::StrCat("Bearer ", kToken);
  }
  static grpc::Status Unauthenticated() {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "bad token");
  }
  static grpc::Status UnknownWorker() {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown worker");
  }

  FakeState* s_;
};

// A real gRPC server on 127.0.0.1 (port 0: any free port) over `state`.
class FakeServer {
 public:
  FakeServer(FakeState* state, int port) : service_(state) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort(absl::StrCat("127.0.0.1:", port),
                             grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
  }
  ~FakeServer() {
    server_->Shutdown(std::chrono::system_clock::now() +
                      std::chrono::milliseconds(500));
  }
  int port() const { return port_; }

 private:
  FakeWorkerService service_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

// A small job: 1 epoch on a few hundred images (`epochs` for a long one).
autoq::JobSpec Spec(const std::string& data_spec, int epochs = 1,
                    int train_subset = 128) {
  autoq::JobSpec spec;
  const std::string json = absl::StrCat(R"({
    "name": "worker-test",
    "dataset": {"spec": ")",
                                        data_spec, R"(", "val_size": 500,
                "val_subset": 128, "test_subset": 128, "seed": 1},
    "search": {"qat": {"epochs": )",
                                        epochs, R"(, "batch_size": 32,
                       "train_subset": )",
                                        train_subset, R"(}},
    "final_front": {"recipe": {"epochs": 1, "batch_size": 32,
                               "act_quant_delay": 0, "bn_freeze_epoch": -1,
                               "train_subset": 128}}})");
  const auto parsed = google::protobuf::util::JsonStringToMessage(json, &spec);
  EXPECT_TRUE(parsed.ok()) << parsed.message().as_string();
  return spec;
}

autoq::Task MakeTask(const std::string& id, autoq::TaskStage stage,
                     const std::vector<int>& bits, const std::string& sha,
                     const autoq::JobSpec& spec,
                     const std::string& job = "job-1") {
  autoq::Task task;
  task.set_task_id(id);
  task.set_job_id(job);
  task.set_key(absl::StrCat("key-", id));
  task.set_stage(stage);
  for (int b : bits) {
    task.add_wbits(b);
    task.add_abits(8);
  }
  task.set_model_sha256(sha);
  *task.mutable_spec() = spec;
  return task;
}

class WorkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<FakeServer>(&state_, 0);
    port_ = server_->port();
    ASSERT_GT(port_, 0);
    log_path_ = tmp_.File("worker.log");
    log_ = std::fopen(log_path_.c_str(), "w");
    ASSERT_NE(log_, nullptr);
  }

  void TearDown() override {
    stop_.store(kAbandonAndLeave);
    if (run_.valid()) run_.wait();
    std::fclose(log_);
    // The worker's own account of the test, shown by ctest on failure.
    std::printf("--- worker log\n%s", testing::ReadFile(log_path_).c_str());
  }

  // Loads the fixture model into the fake's store; returns its hash.
  std::string AddModel() {
    model_bytes_ = testing::ReadFile(Fixture(kModel));
    const std::string sha = autoq::Sha256Hex(model_bytes_);
    std::lock_guard<std::mutex> lock(state_.mu);
    state_.models[sha] = model_bytes_;
    return sha;
  }

  // Genes of the fixture model (one bit-width per gene).
  int Genes() {
    absl::StatusOr<torch::jit::Module> m = qat::LoadModel(Fixture(kModel));
    EXPECT_TRUE(m.ok()) << m.status();
    absl::StatusOr<qat::ModelAnalysis> a = qat::AnalyzeModel(*m, {1, 28, 28});
    EXPECT_TRUE(a.ok()) << a.status();
    return a.ok() ? a->num_genes() : 0;
  }

  void Push(autoq::Task task) {
    std::lock_guard<std::mutex> lock(state_.mu);
    state_.queue.push_back(std::move(task));
  }

  WorkerOptions Options() {
    WorkerOptions o;
    o.server = absl::StrCat("127.0.0.1:", port_);
    o.token = kToken;
    o.name = "test-worker";
    o.model_cache_dir = tmp_.File("models");
    o.threads = 2;
    o.backoff_min = std::chrono::milliseconds(20);
    o.backoff_max = std::chrono::milliseconds(200);
    o.rpc_timeout = std::chrono::milliseconds(5000);
    o.log = log_;
    return o;
  }

  // Runs a Worker on its own thread.
  void Start(WorkerOptions options) {
    absl::StatusOr<std::unique_ptr<Worker>> w = Worker::Create(options);
    ASSERT_TRUE(w.ok()) << w.status();
    worker_ = *std::move(w);
    run_ =
        std::async(std::launch::async, [this] { return worker_->Run(stop_); });
  }

  // Waits for Run to return (after `stop`, if given).
  absl::Status Finish(int stop = kKeepRunning,
                      std::chrono::seconds timeout = std::chrono::seconds(60)) {
    if (stop != kKeepRunning) stop_.store(stop);
    if (run_.wait_for(timeout) != std::future_status::ready) {
      return absl::DeadlineExceededError("Run did not return");
    }
    return run_.get();
  }

  void RestartServer(const std::function<void(FakeState&)>& while_down) {
    server_.reset();
    {
      std::lock_guard<std::mutex> lock(state_.mu);
      while_down(state_);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    server_ = std::make_unique<FakeServer>(&state_, port_);
    ASSERT_EQ(server_->port(), port_);
  }

  TempDir tmp_;
  FakeState state_;
  std::unique_ptr<FakeServer> server_;
  int port_ = 0;
  std::string log_path_;
  std::FILE* log_ = nullptr;
  std::string model_bytes_;
  std::atomic<int> stop_{kKeepRunning};
  std::unique_ptr<Worker> worker_;
  std::future<absl::Status> run_;
};

TEST_F(WorkerTest, RunsRealTasksAndFetchesTheModelOnce) {
  AUTOQ_REQUIRE_FIXTURE(Fixture(kModel));
  const std::string sha = AddModel();
  const int genes = Genes();
  ASSERT_GT(genes, 0);
  // A corrupt cached copy is noticed and replaced.
  std::filesystem::create_directories(tmp_.File("models"));
  const std::string cached = tmp_.File("models/" + sha + ".pt");
  testing::WriteFile(cached, "not the model");

  const autoq::JobSpec spec = Spec("fashion-mnist");
  std::vector<int> bits(static_cast<size_t>(genes), 6);
  bits[0] = 8;
  Push(MakeTask("t1", autoq::STAGE_SEARCH, bits, sha, spec));
  Push(MakeTask("t2", autoq::STAGE_FINAL, bits, sha, spec));
  WorkerOptions options = Options();
  options.max_tasks = 2;
  Start(options);
  ASSERT_TRUE(Finish().ok());

  std::lock_guard<std::mutex> lock(state_.mu);
  EXPECT_EQ(state_.registrations, 1);
  EXPECT_EQ(state_.fetches, 1);  // model fetched once, in chunks
  EXPECT_GT(model_bytes_.size(), 4 * state_.chunk_bytes);
  EXPECT_EQ(testing::ReadFile(cached), model_bytes_);
  EXPECT_EQ(state_.unregistrations, 1);
  ASSERT_EQ(state_.completions.size(), 2u);

  const autoq::CompleteTaskRequest& search = state_.completions[0];
  EXPECT_EQ(search.task_id(), "t1");
  EXPECT_EQ(search.lease_id(), "L1");
  ASSERT_TRUE(search.has_result()) << search.error();
  EXPECT_GT(search.result().best_val_top1(), 0);
  EXPECT_LE(search.result().best_val_top1(), 100);
  EXPECT_EQ(search.result().test_top1(), -1);
  EXPECT_EQ(search.result().curve_size(), 1);
  EXPECT_GT(search.result().size_bytes(), 0);
  EXPECT_EQ(search.result().device(), "cpu");
  EXPECT_EQ(std::vector<int>(search.result().wbits().begin(),
                             search.result().wbits().end()),
            bits);
  EXPECT_EQ(search.artifacts_size(), 0);

  const autoq::CompleteTaskRequest& final_task = state_.completions[1];
  EXPECT_EQ(final_task.task_id(), "t2");
  ASSERT_TRUE(final_task.has_result()) << final_task.error();
  EXPECT_GE(final_task.result().test_top1(), 0);
  EXPECT_EQ(final_task.result().size_bytes(), search.result().size_bytes());
  std::vector<std::string> names;
  for (const autoq::NamedBytes& a : final_task.artifacts()) {
    names.push_back(a.name());
    EXPECT_FALSE(a.data().empty()) << a.name();
  }
  // The three required exports, then the ONNX model and its encodings.
  EXPECT_THAT(names, ElementsAre("model.pt", "weights.bin", "manifest.json",
                                 "model.onnx", "encodings.json"));
  const WorkerStats stats = worker_->stats();
  EXPECT_EQ(stats.completed, 2);
  EXPECT_EQ(stats.model_fetches, 1);
  // One line per task.
  const std::string log = testing::ReadFile(log_path_);
  EXPECT_THAT(log, HasSubstr("task t1 (job job-1) search"));
  EXPECT_THAT(log, HasSubstr("task t2 (job job-1) final"));
}

TEST_F(WorkerTest, NoopAnswersAtOnceWithoutModelOrData) {
  // A hash the server does not even have: the no-op worker never asks.
  const std::string sha(64, 'a');
  const autoq::JobSpec spec = Spec("mnist:/nonexistent");
  Push(MakeTask("s8", autoq::STAGE_SEARCH, {8, 8, 8}, sha, spec));
  Push(MakeTask("s2", autoq::STAGE_SEARCH, {2, 2, 2}, sha, spec));
  Push(MakeTask("f4", autoq::STAGE_FINAL, {4, 4, 4}, sha, spec));
  Push(MakeTask("fl", autoq::STAGE_FLOAT, {}, sha, spec));
  Push(MakeTask("again", autoq::STAGE_SEARCH, {2, 2, 2}, sha, spec));
  autoq::Task bad = MakeTask("bad", autoq::STAGE_SEARCH, {8, 8}, sha, spec);
  bad.add_wbits(8);  // three weight bit-widths, two activation bit-widths
  Push(bad);
  WorkerOptions options = Options();
  options.noop = true;
  options.max_tasks = 6;
  Start(options);
  ASSERT_TRUE(Finish().ok());

  std::lock_guard<std::mutex> lock(state_.mu);
  EXPECT_EQ(state_.fetches, 0);
  ASSERT_EQ(state_.completions.size(), 6u);
  const autoq::EvalResult& s8 = state_.completions[0].result();
  const autoq::EvalResult& s2 = state_.completions[1].result();
  const autoq::EvalResult& f4 = state_.completions[2].result();
  const autoq::EvalResult& fl = state_.completions[3].result();
  EXPECT_DOUBLE_EQ(s8.best_val_top1(), 90);
  EXPECT_LT(s2.best_val_top1(), f4.best_val_top1());
  EXPECT_LT(f4.best_val_top1(), s8.best_val_top1());
  EXPECT_LT(s2.size_bytes(), f4.size_bytes());
  EXPECT_LT(f4.size_bytes(), s8.size_bytes());
  EXPECT_EQ(s8.test_top1(), -1);
  EXPECT_GE(f4.test_top1(), 0);
  EXPECT_DOUBLE_EQ(fl.best_val_top1(), 90);
  EXPECT_EQ(fl.wbits_size(), 0);
  // Deterministic: the same bits give the same result.
  EXPECT_EQ(state_.completions[4].result().SerializeAsString(),
            s2.SerializeAsString());
  std::vector<std::string> names;
  for (const autoq::NamedBytes& a : state_.completions[2].artifacts()) {
    names.push_back(a.name());
  }
  EXPECT_THAT(names, ElementsAre("model.pt", "weights.bin", "manifest.json"));
  EXPECT_EQ(state_.completions[0].artifacts_size(), 0);
  // A malformed task is reported, not run.
  EXPECT_THAT(state_.completions[5].error(), HasSubstr("activation"));
}

TEST_F(WorkerTest, MissingDatasetIsReportedWithItsPath) {
  AUTOQ_REQUIRE_FIXTURE(Fixture(kModel));
  const std::string sha = AddModel();
  Push(MakeTask("t1", autoq::STAGE_SEARCH, std::vector<int>(Genes(), 8), sha,
                Spec("mnist:/nonexistent/autoq-data")));
  WorkerOptions options = Options();
  options.max_tasks = 1;
  Start(options);
  ASSERT_TRUE(Finish().ok());
  std::lock_guard<std::mutex> lock(state_.mu);
  ASSERT_EQ(state_.completions.size(), 1u);
  EXPECT_FALSE(state_.completions[0].has_result());
  EXPECT_THAT(state_.completions[0].error(),
              HasSubstr("/nonexistent/autoq-data"));
  EXPECT_THAT(state_.completions[0].error(), HasSubstr("test-worker"));
  EXPECT_EQ(worker_->stats().failed, 1);
}

TEST_F(WorkerTest, UnauthenticatedEndsRun) {
  WorkerOptions options = Options();
  options.token = "wrong";
  Start(options);
  const absl::Status status = Finish(kKeepRunning, std::chrono::seconds(20));
  EXPECT_EQ(status.code(), absl::StatusCode::kUnauthenticated) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("token"));
  std::lock_guard<std::mutex> lock(state_.mu);
  EXPECT_EQ(state_.registrations, 0);
}

TEST_F(WorkerTest, ReRegistersAfterServerRestartThatLostIt) {
  WorkerOptions options = Options();
  options.noop = true;
  Start(options);
  ASSERT_TRUE(state_.WaitFor([&] { return state_.lease_calls >= 2; }));
  // The server goes away, comes back on the same port without this worker,
  // and with work.
  RestartServer([](FakeState& s) {
    s.workers.clear();
    s.queue.push_back(MakeTask("t1", autoq::STAGE_SEARCH, {4, 4}, "", {}));
  });
  ASSERT_TRUE(state_.WaitFor([&] { return state_.completions.size() == 1; }));
  EXPECT_TRUE(Finish(kFinishAndLeave).ok());
  std::lock_guard<std::mutex> lock(state_.mu);
  EXPECT_EQ(state_.registrations, 2);
  EXPECT_TRUE(state_.completions[0].has_result());
  EXPECT_EQ(state_.completions[0].worker_id(), "w2");
  EXPECT_THAT(testing::ReadFile(log_path_), HasSubstr("is back"));
}

TEST_F(WorkerTest, FollowsTheServerFileToANewAddress) {
  // The server writes where it listens; it moves to another port (another
  // node, for a requeued Slurm job) holding this worker's pending result.
  const std::string addr_file = tmp_.File("server.addr");
  testing::WriteFile(addr_file, absl::StrCat("127.0.0.1:", port_, "\n"));
  {
    std::lock_guard<std::mutex> lock(state_.mu);
    state_.refuse_completions = true;
  }
  Push(MakeTask("t1", autoq::STAGE_SEARCH, {8, 3}, "", {}));
  WorkerOptions options = Options();
  options.server = "";
  options.server_file = addr_file;
  options.noop = true;
  options.max_tasks = 1;
  Start(options);
  ASSERT_TRUE(state_.WaitFor([&] { return state_.refused >= 1; }));
  server_.reset();
  {
    std::lock_guard<std::mutex> lock(state_.mu);
    state_.refuse_completions = false;
  }
  // Half-written: ignored until it holds an address.
  testing::WriteFile(addr_file, "");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  server_ = std::make_unique<FakeServer>(&state_, 0);
  ASSERT_NE(server_->port(), port_);
  testing::WriteFile(addr_file, absl::StrCat("127.0.0.1:", server_->port()));
  ASSERT_TRUE(Finish().ok());
  std::lock_guard<std::mutex> lock(state_.mu);
  ASSERT_EQ(state_.completions.size(), 1u);
  EXPECT_EQ(state_.completions[0].lease_id(), "L1");
  EXPECT_THAT(testing::ReadFile(log_path_),
              HasSubstr(absl::StrCat("is now 127.0.0.1:", server_->port())));
}

TEST_F(WorkerTest, CompletionSurvivesServerRestart) {
  {
    std::lock_guard<std::mutex> lock(state_.mu);
    state_.refuse_completions = true;
  }
  Push(MakeTask("t1", autoq::STAGE_FINAL, {8, 3}, "", {}));
  WorkerOptions options = Options();
  options.noop = true;
  options.max_tasks = 1;
  Start(options);
  ASSERT_TRUE(state_.WaitFor([&] { return state_.refused >= 1; }));
  // Down while the result is pending; back with its lease kept.
  RestartServer([](FakeState& s) { s.refuse_completions = false; });
  ASSERT_TRUE(Finish().ok());
  std::lock_guard<std::mutex> lock(state_.mu);
  EXPECT_EQ(state_.registrations, 1);
  ASSERT_EQ(state_.completions.size(), 1u);
  EXPECT_EQ(state_.completions[0].lease_id(), "L1");
  EXPECT_TRUE(state_.completions[0].has_result());
  EXPECT_EQ(state_.completions[0].artifacts_size(), 3);
}

TEST_F(WorkerTest, LostLeaseAbandonsTheTask) {
  AUTOQ_REQUIRE_FIXTURE(Fixture(kModel));
  const std::string sha = AddModel();
  {
    std::lock_guard<std::mutex> lock(state_.mu);
    // By the fifth heartbeat the data is loaded and the fine-tune runs.
    state_.lose_leases_at = 5;
  }
  // Far longer than the test if it were not cancelled.
  Push(MakeTask("long", autoq::STAGE_SEARCH, std::vector<int>(Genes(), 4), sha,
                Spec("fashion-mnist", 200, 4096)));
  Start(Options());
  ASSERT_TRUE(state_.WaitFor([&] { return !state_.lost.empty(); }));
  // The worker drops the task and asks for more work.
  ASSERT_TRUE(state_.WaitFor([&] { return state_.lease_calls >= 2; },
                             std::chrono::seconds(20)));
  {
    std::lock_guard<std::mutex> lock(state_.mu);
    EXPECT_LT(Clock::now() - state_.lost_at, std::chrono::seconds(10));
  }
  EXPECT_TRUE(Finish(kFinishAndLeave, std::chrono::seconds(10)).ok());
  std::lock_guard<std::mutex> lock(state_.mu);
  EXPECT_GE(state_.heartbeats, 5);
  EXPECT_TRUE(state_.completions.empty());
  EXPECT_EQ(worker_->stats().abandoned, 1);
  EXPECT_THAT(testing::ReadFile(log_path_), HasSubstr("lease lost"));
}

TEST_F(WorkerTest, StopOneFinishesTheCurrentTask) {
  AUTOQ_REQUIRE_FIXTURE(Fixture(kModel));
  const std::string sha = AddModel();
  const int genes = Genes();
  Push(MakeTask("t1", autoq::STAGE_SEARCH, std::vector<int>(genes, 5), sha,
                Spec("fashion-mnist")));
  Push(MakeTask("t2", autoq::STAGE_SEARCH, std::vector<int>(genes, 6), sha,
                Spec("fashion-mnist")));
  Start(Options());
  ASSERT_TRUE(state_.WaitFor([&] { return state_.leases_granted == 1; }));
  EXPECT_TRUE(Finish(kFinishAndLeave).ok());
  std::lock_guard<std::mutex> lock(state_.mu);
  ASSERT_EQ(state_.completions.size(), 1u);
  EXPECT_EQ(state_.completions[0].task_id(), "t1");
  EXPECT_TRUE(state_.completions[0].has_result());
  EXPECT_EQ(state_.leases_granted, 1);  // t2 left for others
  EXPECT_EQ(state_.unregistrations, 1);
}

TEST_F(WorkerTest, StopTwoAbandonsTheCurrentTask) {
  AUTOQ_REQUIRE_FIXTURE(Fixture(kModel));
  const std::string sha = AddModel();
  Push(MakeTask("long", autoq::STAGE_SEARCH, std::vector<int>(Genes(), 4), sha,
                Spec("fashion-mnist", 200, 4096)));
  Start(Options());
  // Fine-tuning by now (the data loads in a second or two).
  ASSERT_TRUE(state_.WaitFor([&] { return state_.heartbeats >= 5; }));
  const auto start = Clock::now();
  EXPECT_TRUE(Finish(kAbandonAndLeave, std::chrono::seconds(20)).ok());
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(10));
  std::lock_guard<std::mutex> lock(state_.mu);
  EXPECT_TRUE(state_.completions.empty());
  EXPECT_EQ(state_.unregistrations, 1);  // gives the lease back at once
  EXPECT_EQ(worker_->stats().abandoned, 1);
}

TEST(WorkerOptionsTest, CreateChecksOptions) {
  WorkerOptions o;
  o.token = "t";
  EXPECT_EQ(Worker::Create(o).status().code(),
            absl::StatusCode::kInvalidArgument);  // no server
  o.server = "127.0.0.1:1";
  o.token = "";
  EXPECT_EQ(Worker::Create(o).status().code(),
            absl::StatusCode::kInvalidArgument);  // no token
  o.token = "t";
  o.device = "tpu:0";
  EXPECT_FALSE(Worker::Create(o).ok());
  o.device = "cuda:99";
  EXPECT_THAT(std::string(Worker::Create(o).status().message()),
              HasSubstr("cuda:99"));
  o.device = "cpu";
  o.backoff_min = std::chrono::milliseconds(-5);
  o.backoff_max = std::chrono::milliseconds(0);
  absl::StatusOr<std::unique_ptr<Worker>> w = Worker::Create(o);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ((*w)->options().backoff_min.count(), 1);
  EXPECT_EQ((*w)->options().backoff_max.count(), 1);
  EXPECT_FALSE((*w)->options().name.empty());  // the host name
  EXPECT_FALSE((*w)->options().model_cache_dir.empty());

  // The address from a file: read at once, checked.
  TempDir tmp;
  o.server = "";
  o.server_file = tmp.File("missing.addr");
  EXPECT_THAT(std::string(Worker::Create(o).status().message()),
              HasSubstr("missing.addr"));
  testing::WriteFile(tmp.File("bad.addr"), "no-port-here\n");
  o.server_file = tmp.File("bad.addr");
  EXPECT_EQ(Worker::Create(o).status().code(),
            absl::StatusCode::kInvalidArgument);
  testing::WriteFile(tmp.File("good.addr"), "  node7:50051 \nignored\n");
  o.server_file = tmp.File("good.addr");
  w = Worker::Create(o);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ((*w)->options().server, "node7:50051");
}

// --- The command line.

std::string WorkerBinary() { return AUTOQ_WORKER_BINARY; }

// Exactly one line, ending in a newline.
bool OneLine(const std::string& s) {
  return !s.empty() && s.back() == '\n' && s.find('\n') == s.size() - 1;
}

TEST(WorkerCliTest, BadFlagsFailWithOneLine) {
  testing::CommandResult r = testing::RunCommand(WorkerBinary() + " --bogus");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(OneLine(r.output)) << r.output;
  EXPECT_THAT(r.output, HasSubstr("--bogus"));

  r = testing::RunCommand(
      WorkerBinary() + " --server 127.0.0.1:1 --token-file /nonexistent/token");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(OneLine(r.output)) << r.output;
  EXPECT_THAT(r.output, HasSubstr("/nonexistent/token"));

  r = testing::RunCommand(WorkerBinary() +
                          " --server a:1 --server-file f --token-file t");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("one of --server"));

  r = testing::RunCommand(WorkerBinary() + " --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("--token-file"));
}

TEST(WorkerCliTest, NoopWorkerServesTasksAndLeavesOnSigterm) {
  FakeState state;
  auto server = std::make_unique<FakeServer>(&state, 0);
  TempDir tmp;
  testing::WriteFile(tmp.File("token"), absl::StrCat("\n  ", kToken, "  \n"));
  const std::string base = absl::StrCat(
      WorkerBinary(), " --server 127.0.0.1:", server->port(), " --token-file ",
      tmp.File("token"), " --noop --cache-dir ", tmp.File("cache"));
  for (int i = 0; i < 2; ++i) {
    state.queue.push_back(
        MakeTask(absl::StrCat("t", i), autoq::STAGE_SEARCH, {8, 4}, "", {}));
  }
  testing::CommandResult r =
      testing::RunCommand(base + " --max-tasks 2 --quiet");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "");
  {
    std::lock_guard<std::mutex> lock(state.mu);
    EXPECT_EQ(state.completions.size(), 2u);
    EXPECT_EQ(state.unregistrations, 1);
  }

  // No work: it polls until SIGTERM, then unregisters and exits 0.
  std::vector<std::string> args = absl::StrSplit(base, ' ');
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid;
  ASSERT_EQ(posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ),
            0);
  ASSERT_TRUE(state.WaitFor([&] { return state.lease_calls >= 5; }));
  kill(pid, SIGTERM);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  std::lock_guard<std::mutex> lock(state.mu);
  EXPECT_EQ(state.unregistrations, 2);
  EXPECT_EQ(state.registrations, 2);
}

}  // namespace
}  // namespace autoq::evaluator
