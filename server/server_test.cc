// The service's API contract on loopback, in process: authentication,
// isolation between clients, rejected uploads that store nothing, and
// completions from workers that do not hold the lease.
#include "server/server.h"

#include <google/protobuf/util/json_util.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/security/credentials.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/rpc_util.h"
#include "common/sha256.h"
#include "evaluator/task.h"
#include "gtest/gtest.h"
#include "proto/autoq.grpc.pb.h"
#include "search/result_store.h"
#include "server/auth.h"
#include "server/model_check.h"
#include "server/server_store.h"
#include "server/test_fault_vfs.h"
#include "server/test_noop_completion.h"
#include "server/test_store.h"
#include "tests/testing.h"

namespace autoq::server {
namespace {

using ::autoq::server::test_util::RawExec;

using testing::Fixture;
using testing::TempDir;

constexpr char kAlice[] = "alice-token-0123456789";
constexpr char kBob[] = "bob-token-0123456789ab";
constexpr char kWorker[] = "worker-token-012345678";

JobSpec SmallSpec(int population = 8) {
  JobSpec spec;
  const std::string json = absl::StrCat(R"({
    "name": "api",
    "model": {"path": "small_dscnn.pt"},
    "dataset": {"spec": "fashion-mnist", "val_subset": 100, "test_subset": 100},
    "search": {"population": )",
                                        population, R"(, "generations": 1,
               "qat": {"epochs": 1, "train_subset": 64}},
    "final_front": {"recipe": {"epochs": 1, "train_subset": 64},
                    "compare_uniform": false}})");
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json, &spec).ok());
  return spec;
}

class ServerTest : public ::testing::Test {
 protected:
  void StartServer(int64_t max_model_bytes = int64_t{64} << 20,
                   const std::function<void(ServerOptions*)>& tweak = nullptr) {
    TokenAuth auth;
    ASSERT_TRUE(auth.Add(Role::kClient, "alice", kAlice).ok());
    ASSERT_TRUE(auth.Add(Role::kClient, "bob", kBob).ok());
    ASSERT_TRUE(auth.Add(Role::kWorker, "node", kWorker).ok());
    ServerOptions options;
    options.listen = "127.0.0.1:0";
    options.database = tmp_.File("server.db");
    options.max_model_bytes = max_model_bytes;
    options.log = nullptr;
    if (tweak) tweak(&options);
    auto server = AutoqServer::Start(options, std::move(auth));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    auto channel =
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                            grpc::InsecureChannelCredentials());
    jobs_ = JobService::NewStub(channel);
    workers_ = WorkerService::NewStub(channel);
    channel_ = channel;
  }

  void Prepare(grpc::ClientContext* ctx, const std::string& token) {
    if (!token.empty()) PrepareContext(ctx, token, std::chrono::seconds(30));
  }

  grpc::Status Submit(const std::string& token, const JobSpec& spec,
                      const std::string& model, SubmitJobResponse* response) {
    grpc::ClientContext ctx;
    Prepare(&ctx, token);
    auto writer = jobs_->SubmitJob(&ctx, response);
    SubmitJobRequest request;
    *request.mutable_spec() = spec;
    writer->Write(request);
    for (size_t at = 0; at < model.size(); at += 4096) {
      SubmitJobRequest chunk;
      chunk.set_model_chunk(model.substr(at, 4096));
      if (!writer->Write(chunk)) break;
    }
    writer->WritesDone();
    return writer->Finish();
  }

  // Submits SmallSpec() with the small fixture model as alice.
  grpc::Status SubmitSmall(SubmitJobResponse* response) {
    return Submit(kAlice, SmallSpec(),
                  testing::ReadFile(Fixture("small_dscnn.pt")), response);
  }

  // CancelJob; the job's status after it in `status` when given.
  grpc::Status Cancel(const std::string& token, const std::string& job_id,
                      JobStatus* status = nullptr) {
    grpc::ClientContext ctx;
    Prepare(&ctx, token);
    CancelJobRequest request;
    request.set_job_id(job_id);
    JobStatus ignored;
    return jobs_->CancelJob(&ctx, request, status ? status : &ignored);
  }

  grpc::Status List(const std::string& token, ListJobsResponse* response) {
    grpc::ClientContext ctx;
    Prepare(&ctx, token);
    return jobs_->ListJobs(&ctx, ListJobsRequest(), response);
  }

  std::string Register() {
    grpc::ClientContext ctx;
    Prepare(&ctx, kWorker);
    RegisterWorkerRequest request;
    request.set_name("test");
    request.add_devices("cpu");
    RegisterWorkerResponse response;
    EXPECT_TRUE(workers_->RegisterWorker(&ctx, request, &response).ok());
    return response.worker_id();
  }

  // LeaseTask as `worker`, on a CPU.
  grpc::Status Lease(const std::string& worker, LeaseTaskResponse* lease) {
    grpc::ClientContext ctx;
    Prepare(&ctx, kWorker);
    LeaseTaskRequest request;
    request.set_worker_id(worker);
    request.set_device("cpu");
    return workers_->LeaseTask(&ctx, request, lease);
  }

  // Leases as `worker` until a task is queued (a job's first one comes
  // shortly after its submit), for up to 5 s.
  ::testing::AssertionResult LeaseFirstTask(const std::string& worker,
                                            LeaseTaskResponse* lease) {
    for (int i = 0; i < 100; ++i) {
      grpc::Status st = Lease(worker, lease);
      if (!st.ok()) {
        return ::testing::AssertionFailure() << "LeaseTask: "
                                             << st.error_message();
      }
      if (lease->has_task()) return ::testing::AssertionSuccess();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return ::testing::AssertionFailure() << "no task within 5 s";
  }

  grpc::Status Complete(const CompleteTaskRequest& request,
                        CompleteTaskResponse* response) {
    grpc::ClientContext ctx;
    Prepare(&ctx, kWorker);
    return workers_->CompleteTask(&ctx, request, response);
  }

  TempDir tmp_;
  std::unique_ptr<AutoqServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<JobService::Stub> jobs_;
  std::unique_ptr<WorkerService::Stub> workers_;
};

TEST_F(ServerTest, EveryCallNeedsTheRightKindOfToken) {
  StartServer();
  ListJobsResponse list;
  EXPECT_EQ(List("", &list).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(List("not-a-known-token-at-all", &list).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(List(kWorker, &list).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(List(kAlice, &list).ok());

  grpc::ClientContext ctx;
  Prepare(&ctx, kAlice);
  RegisterWorkerRequest request;
  request.add_devices("cpu");
  RegisterWorkerResponse response;
  EXPECT_EQ(workers_->RegisterWorker(&ctx, request, &response).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

// Uploaded models are loaded in a child process with limits: a hostile or
// broken one fails its submission with a clear status, and the server goes
// on serving.
TEST_F(ServerTest, HostileModelsAreRefusedByTheAnalyzerChild) {
  for (const char* f : {"small_dscnn.pt", "reads_file.pt",
                        "allocates_huge.pt", "spins.pt", "truncated.pt"}) {
    AUTOQ_REQUIRE_FIXTURE(Fixture(f));
  }
  StartServer(int64_t{64} << 20, [](ServerOptions* o) {
    o->model_check.analyzer = AUTOQ_SERVER_BINARY;
    o->model_check.memory_mb = 2048;
    o->model_check.cpu_seconds = 3;
    o->model_check.wall_seconds = 20;
  });
  struct Case {
    const char* file;
    grpc::StatusCode code;
    const char* says;
  };
  for (const Case& c : {
           Case{"truncated.pt", grpc::StatusCode::INVALID_ARGUMENT,
                "TorchScript"},
           Case{"reads_file.pt", grpc::StatusCode::INVALID_ARGUMENT,
                "aten::from_file"},
           Case{"allocates_huge.pt", grpc::StatusCode::RESOURCE_EXHAUSTED,
                "more than 2048 MB"},
           Case{"spins.pt", grpc::StatusCode::RESOURCE_EXHAUSTED,
                "within the limits"},
       }) {
    SubmitJobResponse response;
    const grpc::Status st = Submit(
        kAlice, SmallSpec(), testing::ReadFile(Fixture(c.file)), &response);
    EXPECT_EQ(st.error_code(), c.code) << c.file << ": " << st.error_message();
    EXPECT_NE(st.error_message().find(c.says), std::string::npos)
        << c.file << ": " << st.error_message();
    // The temporary name the child saw is not the user's business.
    EXPECT_EQ(st.error_message().find("autoq-model-"), std::string::npos)
        << st.error_message();
  }
  // A good model is analyzed by the child and accepted.
  SubmitJobResponse ok;
  const grpc::Status st = Submit(
      kAlice, SmallSpec(), testing::ReadFile(Fixture("small_dscnn.pt")), &ok);
  EXPECT_TRUE(st.ok()) << st.error_message();
  ListJobsResponse list;
  ASSERT_TRUE(List(kAlice, &list).ok());
  EXPECT_EQ(list.jobs_size(), 1);
}

TEST_F(ServerTest, BadUploadsAreRefusedAndNothingIsStored) {
  AUTOQ_REQUIRE_FIXTURE(Fixture("small_dscnn.pt"));
  const std::string model = testing::ReadFile(Fixture("small_dscnn.pt"));
  StartServer(/*max_model_bytes=*/model.size() - 1);
  SubmitJobResponse response;

  grpc::Status st = Submit(kAlice, SmallSpec(), model, &response);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("larger than"), std::string::npos)
      << st.error_message();

  st = Submit(kAlice, SmallSpec(), "definitely not a zip archive", &response);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("TorchScript"), std::string::npos)
      << st.error_message();

  st = Submit(kAlice, SmallSpec(/*population=*/3), "x", &response);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("population"), std::string::npos)
      << st.error_message();


  ListJobsResponse list;
  ASSERT_TRUE(List(kAlice, &list).ok());
  EXPECT_EQ(list.jobs_size(), 0);
  server_.reset();
  auto results = search::ResultStore::Open(tmp_.File("server.db"));
  ASSERT_TRUE(results.ok());
  auto store = ServerStore::Open(tmp_.File("server.db"));
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_FALSE(*(*store)->HasModel(autoq::Sha256Hex(model)));
  EXPECT_TRUE((*store)->ListJobs("")->empty());
}

TEST_F(ServerTest, ClientsSeeOnlyTheirOwnJobs) {
  AUTOQ_REQUIRE_FIXTURE(Fixture("small_dscnn.pt"));
  StartServer();
  SubmitJobResponse submitted;
  ASSERT_TRUE(SubmitSmall(&submitted).ok());
  const std::string id = submitted.status().job_id();
  EXPECT_EQ(submitted.status().owner(), "alice");

  {
    grpc::ClientContext ctx;
    Prepare(&ctx, kAlice);
    GetJobRequest request;
    request.set_job_id(id);
    JobStatus status;
    EXPECT_TRUE(jobs_->GetJob(&ctx, request, &status).ok());
  }
  {
    grpc::ClientContext ctx;
    Prepare(&ctx, kBob);
    GetJobRequest request;
    request.set_job_id(id);
    JobStatus status;
    EXPECT_EQ(jobs_->GetJob(&ctx, request, &status).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  EXPECT_EQ(Cancel(kBob, id).error_code(), grpc::StatusCode::NOT_FOUND);
  {
    grpc::ClientContext ctx;
    Prepare(&ctx, kBob);
    WatchJobRequest request;
    request.set_job_id(id);
    auto reader = jobs_->WatchJob(&ctx, request);
    JobEvents events;
    EXPECT_FALSE(reader->Read(&events));
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::NOT_FOUND);
  }
  ListJobsResponse bobs;
  ASSERT_TRUE(List(kBob, &bobs).ok());
  EXPECT_EQ(bobs.jobs_size(), 0);
  ListJobsResponse alices;
  ASSERT_TRUE(List(kAlice, &alices).ok());
  ASSERT_EQ(alices.jobs_size(), 1);

  // Alice's watch replays the acceptance.
  grpc::ClientContext ctx;
  Prepare(&ctx, kAlice);
  WatchJobRequest request;
  request.set_job_id(id);
  auto reader = jobs_->WatchJob(&ctx, request);
  JobEvents events;
  ASSERT_TRUE(reader->Read(&events));
  ASSERT_GE(events.events_size(), 1);
  const JobEvent& event = events.events(0);
  EXPECT_TRUE(event.has_accepted());
  EXPECT_EQ(event.seq(), 1);
  ctx.TryCancel();
}

// Event numbers restart above the previous server's, so a watcher that
// resumes from the last number it saw gets the restarted job's events, the
// end included, rather than skipping as many as it had seen before.
TEST_F(ServerTest, WatchResumesAcrossARestart) {
  AUTOQ_REQUIRE_FIXTURE(Fixture("small_dscnn.pt"));
  StartServer();
  SubmitJobResponse submitted;
  ASSERT_TRUE(SubmitSmall(&submitted).ok());
  const std::string id = submitted.status().job_id();

  // Reads from `after_seq` until an event satisfies `stop`; returns it.
  auto watch_until = [&](int64_t after_seq,
                         const std::function<bool(const JobEvent&)>& stop) {
    grpc::ClientContext ctx;
    Prepare(&ctx, kAlice);
    WatchJobRequest request;
    request.set_job_id(id);
    request.set_after_seq(after_seq);
    auto reader = jobs_->WatchJob(&ctx, request);
    JobEvents events;
    std::vector<JobEvent> seen;
    bool stopped = false;
    while (!stopped && reader->Read(&events)) {
      for (const JobEvent& event : events.events()) {
        seen.push_back(event);
        if (stop(event)) {
          stopped = true;
          break;
        }
      }
    }
    ctx.TryCancel();
    reader->Finish();
    return seen;
  };
  auto is_log = [](const JobEvent& e) { return !e.log().empty(); };

  // No worker: the job waits for its float score. Its history so far.
  std::vector<JobEvent> first =
      watch_until(0, [](const JobEvent& e) { return e.has_accepted(); });
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].seq(), 1);

  server_.reset();
  StartServer();
  std::vector<JobEvent> second = watch_until(first.back().seq(), is_log);
  ASSERT_EQ(second.size(), 2u);
  EXPECT_TRUE(second[0].has_accepted());
  EXPECT_EQ(second[0].seq(), (int64_t{1} << 40) + 1);
  EXPECT_EQ(second[1].log(), "resumed after a server restart");
  ASSERT_TRUE(Cancel(kAlice, id).ok());
  std::vector<JobEvent> ended = watch_until(
      second.back().seq(), [](const JobEvent& e) { return e.has_ended(); });
  ASSERT_FALSE(ended.empty());
  EXPECT_EQ(ended.back().ended().state(), JOB_CANCELLED);

  // A third start serves the ended job from its stored row, again numbered
  // above what the watcher saw.
  server_.reset();
  StartServer();
  std::vector<JobEvent> third = watch_until(
      ended.back().seq(), [](const JobEvent& e) { return e.has_ended(); });
  ASSERT_FALSE(third.empty());
  EXPECT_EQ(third.front().seq(), (int64_t{2} << 40) + 1);
  EXPECT_EQ(third.back().ended().state(), JOB_CANCELLED);
}

// grpc.health.v1.Health/Check as a Kubernetes gRPC probe sends it: no
// token, the service name in field 1. Returns the reply's bytes.
grpc::Status HealthCheck(const std::shared_ptr<grpc::Channel>& channel,
                         const std::string& service, std::string* reply) {
  std::string request;
  if (!service.empty()) {
    request =
        absl::StrCat("\x0a", std::string(1, char(service.size())), service);
  }
  grpc::Slice slice(request);
  grpc::ByteBuffer in(&slice, 1), out;
  grpc::GenericStub stub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  std::promise<grpc::Status> done;
  stub.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &in,
                 &out, [&](grpc::Status st) { done.set_value(st); });
  grpc::Status st = done.get_future().get();
  std::vector<grpc::Slice> slices;
  reply->clear();
  if (st.ok() && out.Dump(&slices).ok()) {
    for (const grpc::Slice& s : slices) {
      reply->append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
  }
  return st;
}

TEST_F(ServerTest, AnswersHealthChecksWithoutAToken) {
  StartServer();
  std::string reply;
  grpc::Status st = HealthCheck(channel_, "", &reply);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(reply, std::string("\x08\x01"));  // status: SERVING
  st = HealthCheck(channel_, "no.such.Service", &reply);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(ServerTest, OnlyTheLeaseHolderCanCompleteATask) {
  AUTOQ_REQUIRE_FIXTURE(Fixture("small_dscnn.pt"));
  StartServer();
  SubmitJobResponse submitted;
  ASSERT_TRUE(SubmitSmall(&submitted).ok());
  const std::string holder = Register();
  const std::string other = Register();

  // The job's first task (the float model's score) shows up shortly.
  LeaseTaskResponse lease;
  ASSERT_TRUE(LeaseFirstTask(holder, &lease));
  EXPECT_EQ(lease.task().stage(), STAGE_FLOAT);
  EXPECT_FALSE(lease.task().model_sha256().empty());

  CompleteTaskRequest complete;
  complete.set_task_id(lease.task().task_id());
  complete.mutable_result()->set_best_val_top1(50);
  complete.mutable_result()->set_test_top1(50);
  auto send = [&](const std::string& worker, const std::string& lease_id,
                  CompleteTaskResponse* response) {
    CompleteTaskRequest r = complete;
    r.set_worker_id(worker);
    r.set_lease_id(lease_id);
    return Complete(r, response);
  };
  CompleteTaskResponse response;
  EXPECT_EQ(send(other, lease.lease_id(), &response).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(send(holder, "not-a-lease", &response).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  // The holder still completes it, once; a retry is a harmless duplicate.
  ASSERT_TRUE(send(holder, lease.lease_id(), &response).ok());
  EXPECT_FALSE(response.duplicate());
  ASSERT_TRUE(send(holder, lease.lease_id(), &response).ok());
  EXPECT_TRUE(response.duplicate());

  // Cancel, so the job thread ends with the test.
  JobStatus status;
  ASSERT_TRUE(Cancel(kAlice, submitted.status().job_id(), &status).ok());
  EXPECT_EQ(status.state(), JOB_CANCELLED);
}

// A store write that fails reaches the worker as the RPC's error, and the
// change it would have recorded is undone: the worker may simply retry.
TEST_F(ServerTest, AFailedStoreWriteIsTheWorkersErrorAndChangesNothing) {
  AUTOQ_REQUIRE_FIXTURE(Fixture("small_dscnn.pt"));
  StartServer();
  SubmitJobResponse submitted;
  ASSERT_TRUE(SubmitSmall(&submitted).ok());
  const std::string worker = Register();
  const std::string db = tmp_.File("server.db");

  RawExec(db,
          "CREATE TRIGGER no_update BEFORE UPDATE ON tasks "
          "BEGIN SELECT RAISE(ABORT, 'disk on fire'); END");
  // Once the job's first task is queued, leasing it fails.
  grpc::Status failed;
  for (int i = 0; i < 100 && failed.ok(); ++i) {
    LeaseTaskResponse lease;
    failed = Lease(worker, &lease);
    ASSERT_FALSE(lease.has_task());
    if (failed.ok()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_NE(failed.error_message().find("disk on fire"), std::string::npos)
      << failed.error_message();
  RawExec(db, "DROP TRIGGER no_update");
  // The lease was undone: the task is there to lease again.
  LeaseTaskResponse lease;
  ASSERT_TRUE(Lease(worker, &lease).ok());
  ASSERT_TRUE(lease.has_task());
  EXPECT_EQ(lease.task().stage(), STAGE_FLOAT);

  CompleteTaskRequest complete;
  complete.set_worker_id(worker);
  complete.set_lease_id(lease.lease_id());
  complete.set_task_id(lease.task().task_id());
  complete.mutable_result()->set_best_val_top1(50);
  complete.mutable_result()->set_test_top1(50);
  auto send = [&](CompleteTaskResponse* response) {
    return Complete(complete, response);
  };
  RawExec(db,
          "CREATE TRIGGER no_delete BEFORE DELETE ON tasks "
          "BEGIN SELECT RAISE(ABORT, 'disk on fire'); END");
  CompleteTaskResponse response;
  grpc::Status refused = send(&response);
  EXPECT_FALSE(refused.ok());
  EXPECT_NE(refused.error_message().find("disk on fire"), std::string::npos)
      << refused.error_message();
  RawExec(db, "DROP TRIGGER no_delete");
  // Still leased to the worker, whose retry is accepted (not a duplicate).
  ASSERT_TRUE(send(&response).ok());
  EXPECT_FALSE(response.duplicate());

  ASSERT_TRUE(Cancel(kAlice, submitted.status().job_id()).ok());
}

// A full database disk: requests that must write fail with a clear status
// and keep nothing; a worker's completion is UNAVAILABLE (it keeps its
// result and sends it again); and once there is space the server carries
// on by itself: a job whose writes met the full disk at any point still
// finishes.
TEST_F(ServerTest, RidesOutAFullDisk) {
  AUTOQ_REQUIRE_FIXTURE(Fixture("small_dscnn.pt"));
  test_util::FullDiskVfs& disk = test_util::FullDiskVfs::Install();
  StartServer(int64_t{64} << 20,
              [](ServerOptions* o) { o->disk_full_retry_ms = 50; });
  SubmitJobResponse submitted;
  JobSpec spec = SmallSpec(/*population=*/16);
  spec.mutable_search()->set_generations(3);
  ASSERT_TRUE(Submit(kAlice, spec,
                     testing::ReadFile(Fixture("small_dscnn.pt")), &submitted)
                  .ok());
  const std::string job_id = submitted.status().job_id();
  const std::string worker = Register();
  LeaseTaskResponse lease;
  ASSERT_TRUE(LeaseFirstTask(worker, &lease));

  disk.SetFull(true);
  const std::string model = testing::ReadFile(Fixture("small_dscnn.pt"));
  JobSpec other = SmallSpec();
  other.set_name("while-full");
  SubmitJobResponse refused;
  grpc::Status st = Submit(kBob, other, model, &refused);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << st.error_message();
  EXPECT_NE(st.error_message().find("disk holding the database is full"),
            std::string::npos)
      << st.error_message();
  const CompleteTaskRequest done = test_util::NoopCompletion(worker, lease);
  CompleteTaskResponse response;
  st = Complete(done, &response);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE)
      << st.error_message();
  EXPECT_NE(st.error_message().find("full"), std::string::npos)
      << st.error_message();
  disk.SetFull(false);
  EXPECT_GT(disk.refused(), 0);

  // Nothing of the refused job was kept; the completion is accepted now.
  ListJobsResponse bobs;
  ASSERT_TRUE(List(kBob, &bobs).ok());
  EXPECT_EQ(bobs.jobs_size(), 0);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(tmp_.File("server.db").c_str(), &db), SQLITE_OK);
  auto count = [&](const char* sql) {
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr), SQLITE_OK);
    std::string out;
    if (sqlite3_step(stmt) == SQLITE_ROW) {
      out = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    }
    sqlite3_finalize(stmt);
    return out;
  };
  EXPECT_EQ(count("SELECT COUNT(*) FROM jobs"), "1");
  EXPECT_EQ(count("SELECT COUNT(*) FROM models"), "1");
  EXPECT_EQ(count("SELECT COUNT(*) FROM results"), "0");
  ASSERT_TRUE(Complete(done, &response).ok());
  EXPECT_FALSE(response.duplicate());

  // The rest of the job and three more jobs (more of the job threads' own
  // writes), with the disk full half of the time in 30 ms spells: each
  // write may meet it.
  std::vector<std::string> job_ids = {job_id};
  for (int seed = 2; seed <= 4; ++seed) {
    JobSpec more = spec;
    more.mutable_search()->set_seed(seed);
    SubmitJobResponse r;
    ASSERT_TRUE(Submit(kAlice, more, model, &r).ok());
    job_ids.push_back(r.status().job_id());
  }
  std::atomic<bool> stop{false};
  std::thread flapping([&] {
    while (!stop.load()) {
      disk.SetFull(true);
      std::this_thread::sleep_for(std::chrono::milliseconds(30));
      disk.SetFull(false);
      std::this_thread::sleep_for(std::chrono::milliseconds(30));
    }
  });
  const long refused_before = disk.refused();
  int completed = 1, retried = 0;
  std::string unexpected;
  std::vector<JobStatus> statuses(job_ids.size());
  auto all_ended = [&] {
    for (size_t j = 0; j < job_ids.size(); ++j) {
      grpc::ClientContext ctx;
      Prepare(&ctx, kAlice);
      GetJobRequest get;
      get.set_job_id(job_ids[j]);
      if (!jobs_->GetJob(&ctx, get, &statuses[j]).ok() ||
          statuses[j].state() == JOB_QUEUED ||
          statuses[j].state() == JOB_RUNNING) {
        return false;
      }
    }
    return true;
  };
  const auto give_up =
      std::chrono::steady_clock::now() + std::chrono::minutes(2);
  while (std::chrono::steady_clock::now() < give_up && !all_ended()) {
    LeaseTaskResponse next;
    st = Lease(worker, &next);
    if (!st.ok() || !next.has_task()) {
      if (!st.ok() && st.error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED)
        unexpected = st.error_message();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    const CompleteTaskRequest answer = test_util::NoopCompletion(worker, next);
    for (;;) {
      CompleteTaskResponse r;
      st = Complete(answer, &r);
      if (st.error_code() != grpc::StatusCode::UNAVAILABLE) break;
      ++retried;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (st.ok()) {
      ++completed;
    } else {
      unexpected = st.error_message();
    }
  }
  stop = true;
  flapping.join();
  disk.SetFull(false);
  for (const JobStatus& status : statuses) {
    EXPECT_EQ(status.state(), JOB_FINISHED) << status.error();
  }
  EXPECT_EQ(unexpected, "");
  EXPECT_GT(disk.refused(), refused_before);
  // How often the job threads themselves waited for space (it depends on
  // where the spells fell).
  int waits = 0;
  for (const std::string& id : job_ids) {
    grpc::ClientContext ctx;
    Prepare(&ctx, kAlice);
    WatchJobRequest watch;
    watch.set_job_id(id);
    auto reader = jobs_->WatchJob(&ctx, watch);
    JobEvents batch;
    while (reader->Read(&batch)) {
      for (const JobEvent& e : batch.events()) {
        waits += e.log().find("waiting for disk space") != std::string::npos;
      }
    }
    EXPECT_TRUE(reader->Finish().ok());
  }
  std::printf(
      "%d completions (%d sent again), %ld writes refused, jobs waited for "
      "space %d time(s)\n",
      completed, retried, disk.refused(), waits);
  EXPECT_EQ(count("PRAGMA integrity_check"), "ok");
  sqlite3_close(db);

  // A restarted server reports the finished jobs whole: every generation.
  server_.reset();
  StartServer();
  grpc::ClientContext ctx;
  Prepare(&ctx, kAlice);
  GetJobRequest get;
  get.set_job_id(job_id);
  JobStatus after;
  ASSERT_TRUE(jobs_->GetJob(&ctx, get, &after).ok());
  EXPECT_EQ(after.state(), JOB_FINISHED);
  EXPECT_EQ(after.generations(), 3);
  EXPECT_EQ(after.generation(), 3);
}

TEST_F(ServerTest, JobsPerClientAreLimited) {
  AUTOQ_REQUIRE_FIXTURE(Fixture("small_dscnn.pt"));
  StartServer(int64_t{64} << 20,
              [](ServerOptions* o) { o->max_jobs_per_client = 1; });
  const std::string model = testing::ReadFile(Fixture("small_dscnn.pt"));
  SubmitJobResponse first, second, other;
  ASSERT_TRUE(Submit(kAlice, SmallSpec(), model, &first).ok());
  grpc::Status st = Submit(kAlice, SmallSpec(), model, &second);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(st.error_message().find("limit"), std::string::npos)
      << st.error_message();
  // The limit is per client.
  EXPECT_TRUE(Submit(kBob, SmallSpec(), model, &other).ok());
  for (const auto& [token, id] :
       {std::pair<const char*, std::string>{kAlice, first.status().job_id()},
        {kBob, other.status().job_id()}}) {
    EXPECT_TRUE(Cancel(token, id).ok());
  }
}

TEST_F(ServerTest, ServesTlsWhenGivenACertificate) {
  const std::string cert = tmp_.File("cert.pem");
  const std::string key = tmp_.File("key.pem");
  testing::CommandResult made = testing::RunCommand(absl::StrCat(
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost "
      "-addext subjectAltName=DNS:localhost -keyout ",
      key, " -out ", cert));
  ASSERT_EQ(made.exit_code, 0) << made.output;
  StartServer(int64_t{64} << 20, [&](ServerOptions* o) {
    o->tls_cert_file = cert;
    o->tls_key_file = key;
  });
  const std::string target = absl::StrCat("localhost:", server_->port());
  ChannelOptions tls;
  tls.target = target;
  tls.tls_ca_file = cert;
  auto channel = MakeChannel(tls);
  ASSERT_TRUE(channel.ok()) << channel.status();
  auto stub = JobService::NewStub(*channel);
  {
    grpc::ClientContext ctx;
    Prepare(&ctx, kAlice);
    ListJobsResponse list;
    grpc::Status st = stub->ListJobs(&ctx, ListJobsRequest(), &list);
    EXPECT_TRUE(st.ok()) << st.error_message();
  }
  // A plain-TCP client cannot talk to a TLS server.
  auto plain = JobService::NewStub(
      grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  PrepareContext(&ctx, kAlice, std::chrono::seconds(5));
  ListJobsResponse list;
  EXPECT_FALSE(plain->ListJobs(&ctx, ListJobsRequest(), &list).ok());
}

// A job's model is analyzed at submit and again when its thread starts:
// the second time comes from the cache, keyed by digest and input shape.
TEST(ModelCheckTest, AnalysesAreRememberedByDigestAndShape) {
  AUTOQ_REQUIRE_FIXTURE(Fixture("small_dscnn.pt"));
  const std::string model = testing::ReadFile(Fixture("small_dscnn.pt"));
  ModelCheckOptions options;
  options.analyzer = AUTOQ_SERVER_BINARY;
  options.cache = std::make_shared<AnalysisCache>();
  auto first = AnalyzeModelApart(model, "", {1, 28, 28}, options);
  ASSERT_TRUE(first.ok()) << first.status();
  // An analyzer that cannot start: only the cache can answer now.
  options.analyzer = "/nonexistent/autoq-analyzer";
  auto again = AnalyzeModelApart(model, "", {1, 28, 28}, options);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->num_genes(), first->num_genes());
  // The digest a caller already has is the same key.
  EXPECT_TRUE(
      AnalyzeModelApart(model, autoq::Sha256Hex(model), {1, 28, 28}, options)
          .ok());
  EXPECT_FALSE(AnalyzeModelApart(model, "", {1, 32, 32}, options).ok());
  EXPECT_FALSE(AnalyzeModelApart(model + "x", "", {1, 28, 28}, options).ok());
}

TEST(ModelCheckTest, TheCacheDropsTheLeastRecentlyUsed) {
  AnalysisCache cache(2);
  qat::ModelAnalysis a;
  cache.Put("a", a);
  cache.Put("b", a);
  EXPECT_TRUE(cache.Get("a").has_value());  // now "b" is the oldest
  cache.Put("c", a);
  EXPECT_TRUE(cache.Get("a").has_value());
  EXPECT_FALSE(cache.Get("b").has_value());
  EXPECT_TRUE(cache.Get("c").has_value());
}

TEST(ServerStartTest, RefusesHalfATlsConfiguration) {
  TokenAuth auth;
  ASSERT_TRUE(auth.Add(Role::kClient, "alice", kAlice).ok());
  TempDir tmp;
  ServerOptions options;
  options.listen = "127.0.0.1:0";
  options.database = tmp.File("server.db");
  options.tls_cert_file = tmp.File("cert.pem");
  options.log = nullptr;
  auto server = AutoqServer::Start(options, std::move(auth));
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace autoq::server
