#include "server/server_store.h"

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "search/result_store.h"
#include "search/sqlite_statement.h"
#include "server/test_store.h"
#include "tests/testing.h"

namespace autoq::server {
namespace {

using ::autoq::server::test_util::RawExec;

using ::autoq::testing::ReadFile;
using ::autoq::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

JobRow MakeJob(const std::string& id, const std::string& owner,
               int64_t submitted_ms) {
  JobRow j;
  j.job_id = id;
  j.owner = owner;
  j.name = "mnv2 " + id;
  j.spec = std::string("spec\0bytes", 10);
  j.model_sha256 = std::string(64, 'a');
  j.model_bytes = 12345;
  j.state = 1;
  j.phase = "float";
  j.submitted_ms = submitted_ms;
  j.updated_ms = submitted_ms;
  return j;
}

TaskRow MakeTask(const std::string& key, const std::string& job) {
  TaskRow t;
  t.key = key;
  t.job_id = job;
  t.stage = 2;
  t.wbits = {8, 4, 2};
  t.abits = {8, 0, 6};
  return t;
}

class ServerStoreTest : public test_util::StoreTest {
 protected:
  // Closes and reopens both stores, as a restarted server does.
  void Reopen() { OpenStores(); }
};

TEST_F(ServerStoreTest, ModelsAreContentAddressed) {
  const std::string bytes("PK\0\x01torchscript", 15);
  EXPECT_EQ(*store_->HasModel("h1"), false);
  EXPECT_EQ(*store_->GetModel("h1"), std::nullopt);
  ASSERT_TRUE(store_->PutModel("h1", bytes).ok());
  EXPECT_EQ(*store_->HasModel("h1"), true);
  EXPECT_EQ(*store_->GetModel("h1"), bytes);
  // A present hash keeps its bytes.
  ASSERT_TRUE(store_->PutModel("h1", "other").ok());
  EXPECT_EQ(*store_->GetModel("h1"), bytes);
  ASSERT_TRUE(store_->PutModel("empty", "").ok());
  EXPECT_EQ(*store_->GetModel("empty"), std::string());

  Reopen();
  EXPECT_EQ(*store_->GetModel("h1"), bytes);
  EXPECT_EQ(*store_->HasModel("h2"), false);
}

TEST_F(ServerStoreTest, JobsRoundTrip) {
  JobRow a = MakeJob("j-0000000000000001", "alice", 1000);
  JobRow b = MakeJob("j-0000000000000002", "bob", 900);
  JobRow c = MakeJob("j-0000000000000003", "alice", 2000);
  ASSERT_TRUE(store_->InsertJob(a).ok());
  ASSERT_TRUE(store_->InsertJob(b).ok());
  ASSERT_TRUE(store_->InsertJob(c).ok());
  absl::Status dup = store_->InsertJob(a);
  EXPECT_EQ(dup.code(), absl::StatusCode::kAlreadyExists) << dup;
  EXPECT_THAT(std::string(dup.message()), HasSubstr(path_));

  auto got = store_->GetJob(a.job_id);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_TRUE(got->has_value());
  const JobRow& g = **got;
  EXPECT_EQ(g.job_id, a.job_id);
  EXPECT_EQ(g.owner, "alice");
  EXPECT_EQ(g.name, a.name);
  EXPECT_EQ(g.spec, a.spec);
  EXPECT_EQ(g.model_sha256, a.model_sha256);
  EXPECT_EQ(g.model_bytes, 12345);
  EXPECT_EQ(g.state, 1);
  EXPECT_EQ(g.phase, "float");
  EXPECT_EQ(g.error, "");
  EXPECT_EQ(g.results, "");
  EXPECT_EQ(g.submitted_ms, 1000);
  EXPECT_EQ(g.updated_ms, 1000);
  EXPECT_EQ(*store_->GetJob("j-none"), std::nullopt);

  ASSERT_TRUE(
      store_->UpdateJob(a.job_id, 4, "search", "out of memory", 1500).ok());
  const std::string front("front\0proto", 11);
  ASSERT_TRUE(store_->SetJobResults(a.job_id, front).ok());
  EXPECT_EQ(store_->UpdateJob("j-none", 2, "search", "", 1).code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->SetJobResults("j-none", "x").code(),
            absl::StatusCode::kNotFound);

  Reopen();
  got = store_->GetJob(a.job_id);
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->state, 4);
  EXPECT_EQ((*got)->phase, "search");
  EXPECT_EQ((*got)->error, "out of memory");
  EXPECT_EQ((*got)->updated_ms, 1500);
  EXPECT_EQ((*got)->submitted_ms, 1000);
  EXPECT_EQ((*got)->results, front);
  EXPECT_EQ((*got)->spec, a.spec);

  auto all = store_->ListJobs("");
  ASSERT_TRUE(all.ok()) << all.status();
  std::vector<std::string> ids;
  for (const JobRow& j : *all) ids.push_back(j.job_id);
  EXPECT_THAT(ids, ElementsAre(b.job_id, a.job_id, c.job_id));
  auto alice = store_->ListJobs("alice");
  ASSERT_TRUE(alice.ok()) << alice.status();
  ids.clear();
  for (const JobRow& j : *alice) ids.push_back(j.job_id);
  EXPECT_THAT(ids, ElementsAre(a.job_id, c.job_id));
  EXPECT_TRUE(store_->ListJobs("carol")->empty());
}

TEST_F(ServerStoreTest, TasksRoundTrip) {
  auto id1 = store_->InsertTask(MakeTask("k1", "j-a"));
  ASSERT_TRUE(id1.ok()) << id1.status();
  TaskRow empty_bits = MakeTask("k2", "j-b");
  empty_bits.stage = 1;
  empty_bits.wbits.clear();
  empty_bits.abits.clear();
  auto id2 = store_->InsertTask(empty_bits);
  ASSERT_TRUE(id2.ok()) << id2.status();
  EXPECT_GT(*id2, *id1);
  auto dup = store_->InsertTask(MakeTask("k1", "j-c"));
  EXPECT_EQ(dup.status().code(), absl::StatusCode::kAlreadyExists)
      << dup.status();

  ASSERT_TRUE(store_->SetLease(*id1, "lease-1", "w-1", 5000, 1).ok());
  ASSERT_TRUE(store_->SetDeadlines({*id1, *id2}, 7000).ok());
  EXPECT_EQ(store_->SetLease(999, "l", "w", 1, 1).code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->ClearLease(999).code(), absl::StatusCode::kNotFound);
  // All or nothing: an unknown id rolls back the known ones.
  EXPECT_EQ(store_->SetDeadlines({*id1, 999}, 9000).code(),
            absl::StatusCode::kNotFound);

  Reopen();
  auto tasks = store_->ListTasks();
  ASSERT_TRUE(tasks.ok()) << tasks.status();
  ASSERT_EQ(tasks->size(), 2u);
  const TaskRow& t1 = (*tasks)[0];
  EXPECT_EQ(t1.task_id, *id1);
  EXPECT_EQ(t1.key, "k1");
  EXPECT_EQ(t1.job_id, "j-a");
  EXPECT_EQ(t1.stage, 2);
  EXPECT_THAT(t1.wbits, ElementsAre(8, 4, 2));
  EXPECT_THAT(t1.abits, ElementsAre(8, 0, 6));
  EXPECT_EQ(t1.lease_id, "lease-1");
  EXPECT_EQ(t1.worker_id, "w-1");
  EXPECT_EQ(t1.deadline_ms, 7000);
  EXPECT_EQ(t1.attempts, 1);
  const TaskRow& t2 = (*tasks)[1];
  EXPECT_EQ(t2.task_id, *id2);
  EXPECT_EQ(t2.stage, 1);
  EXPECT_TRUE(t2.wbits.empty());
  EXPECT_TRUE(t2.abits.empty());
  EXPECT_EQ(t2.lease_id, "");

  ASSERT_TRUE(store_->ClearLease(*id1).ok());
  ASSERT_TRUE(store_->DeleteTask(*id2).ok());
  ASSERT_TRUE(store_->DeleteTask(*id2).ok());  // absent: a no-op
  tasks = store_->ListTasks();
  ASSERT_TRUE(tasks.ok()) << tasks.status();
  ASSERT_EQ(tasks->size(), 1u);
  EXPECT_EQ((*tasks)[0].lease_id, "");
  EXPECT_EQ((*tasks)[0].worker_id, "");
  EXPECT_EQ((*tasks)[0].attempts, 1);  // leases so far are kept

  // Ids are never reused, not even after the newest task is deleted and
  // the server restarts.
  ASSERT_TRUE(store_->DeleteTask(*id1).ok());
  auto id3 = store_->InsertTask(MakeTask("k3", "j-a"));
  ASSERT_TRUE(id3.ok());
  ASSERT_TRUE(store_->DeleteTask(*id3).ok());
  Reopen();
  auto id4 = store_->InsertTask(MakeTask("k1", "j-a"));
  ASSERT_TRUE(id4.ok()) << id4.status();
  EXPECT_GT(*id4, *id3);
}

TEST_F(ServerStoreTest, UnreadableBitsAreDataLossNamingThePath) {
  ASSERT_TRUE(store_->InsertTask(MakeTask("k1", "j-a")).ok());
  RawExec(path_, "UPDATE tasks SET wbits = '8,x'");
  auto tasks = store_->ListTasks();
  EXPECT_EQ(tasks.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(tasks.status().message()), HasSubstr(path_));
}

TEST_F(ServerStoreTest, WorkersRoundTrip) {
  WorkerRow w1{"w-1", "node1", {"cuda:0", "odd,name%2C"}, 100};
  WorkerRow w2{"w-2", "node2", {}, 50};
  ASSERT_TRUE(store_->PutWorker(w1).ok());
  ASSERT_TRUE(store_->PutWorker(w2).ok());
  Reopen();
  auto workers = store_->ListWorkers();
  ASSERT_TRUE(workers.ok()) << workers.status();
  ASSERT_EQ(workers->size(), 2u);
  EXPECT_EQ((*workers)[0].worker_id, "w-2");
  EXPECT_TRUE((*workers)[0].devices.empty());
  EXPECT_EQ((*workers)[1].worker_id, "w-1");
  EXPECT_EQ((*workers)[1].name, "node1");
  EXPECT_THAT((*workers)[1].devices, ElementsAre("cuda:0", "odd,name%2C"));
  EXPECT_EQ((*workers)[1].registered_ms, 100);

  w2.name = "node2b";
  w2.devices = {"cpu"};
  w2.registered_ms = 300;
  ASSERT_TRUE(store_->PutWorker(w2).ok());  // replaces
  ASSERT_TRUE(store_->DeleteWorker("w-1").ok());
  ASSERT_TRUE(store_->DeleteWorker("w-1").ok());
  workers = store_->ListWorkers();
  ASSERT_TRUE(workers.ok());
  ASSERT_EQ(workers->size(), 1u);
  EXPECT_EQ((*workers)[0].name, "node2b");
  EXPECT_THAT((*workers)[0].devices, ElementsAre("cpu"));
  EXPECT_EQ((*workers)[0].registered_ms, 300);
}

TEST_F(ServerStoreTest, SharesTheFileWithTheResultCache) {
  ASSERT_TRUE(store_->PutModel("h", "model").ok());
  search::ResultSummary summary;
  summary.device = "cpu";
  ASSERT_TRUE(results_->Put("key", "value", summary).ok());
  Reopen();
  EXPECT_EQ(*results_->Get("key"), "value");
  EXPECT_EQ(*store_->GetModel("h"), "model");
}

TEST_F(ServerStoreTest, NewerServerSchemaIsRefusedUnmodified) {
  ASSERT_TRUE(store_->InsertJob(MakeJob("j-1", "alice", 1)).ok());
  store_.reset();
  results_.reset();
  RawExec(path_,
          "UPDATE meta SET value = '2' WHERE key = 'server_schema_version'");
  const std::string before = ReadFile(path_);
  ASSERT_FALSE(before.empty());
  {
    auto results = search::ResultStore::Open(path_);
    ASSERT_TRUE(results.ok()) << results.status();
    auto store = ServerStore::Open(path_);
    ASSERT_FALSE(store.ok());
    EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(std::string(store.status().message()), HasSubstr("newer"));
    EXPECT_THAT(std::string(store.status().message()), HasSubstr(path_));
  }
  EXPECT_EQ(ReadFile(path_), before);

  // This build's own version is accepted, and the data is intact.
  RawExec(path_,
          "UPDATE meta SET value = '1' WHERE key = 'server_schema_version'");
  store_ = MustOpen();
  ASSERT_NE(store_, nullptr);
  EXPECT_TRUE((*store_->GetJob("j-1")).has_value());
}

TEST_F(ServerStoreTest, RefusesFilesTheResultStoreDidNotMake) {
  auto missing = ServerStore::Open(dir_.File("missing.db"));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(std::filesystem::exists(dir_.File("missing.db")));

  const std::string other = dir_.File("other.db");
  RawExec(other, "CREATE TABLE t (x INTEGER)");
  const std::string before = ReadFile(other);
  auto foreign = ServerStore::Open(other);
  EXPECT_EQ(foreign.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(foreign.status().message()), HasSubstr(other));
  EXPECT_EQ(ReadFile(other), before);

  EXPECT_EQ(ServerStore::Open("").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(ServerStoreTest, SecondOpenOfTheSameFileSeesTheTables) {
  ASSERT_TRUE(store_->PutModel("h", "m").ok());
  auto second = MustOpen();
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(*second->GetModel("h"), "m");
}

TEST_F(ServerStoreTest, CountsServerStartsAcrossReopens) {
  EXPECT_EQ(*store_->CountStart(), 0);
  EXPECT_EQ(*store_->CountStart(), 1);
  Reopen();
  EXPECT_EQ(*store_->CountStart(), 2);
  // A second connection to the file counts on the same number.
  auto second = MustOpen();
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(*second->CountStart(), 3);
  EXPECT_EQ(*store_->CountStart(), 4);
}

// A full disk, with the kernel's own ENOSPC (a small tmpfs; needs root):
// a job and its model are stored together or not at all, and so are a
// result and its exports; the error says so; writes succeed again once
// space is freed.
TEST(ServerStoreDiskTest, FullDiskKeepsNothingHalfWrittenAndRecovers) {
  autoq::testing::SmallFilesystem fs(4 << 20);
  if (!fs.mounted()) GTEST_SKIP() << fs.why();
  const std::string path = fs.File("autoq.db");
  auto results = search::ResultStore::Open(path);
  ASSERT_TRUE(results.ok()) << results.status();
  auto store = ServerStore::Open(path);
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE(fs.Fill());

  JobRow job = MakeJob("j-0000000000000001", "alice", 1000);
  const std::string model(512 << 10, 'm');
  absl::Status st = (*store)->InsertJobWithModel(job, model);
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(search::IsDiskFull(st)) << st;
  EXPECT_THAT(st.message(), HasSubstr("disk holding the database is full"));
  EXPECT_THAT(st.message(), HasSubstr(path));
  EXPECT_EQ(*(*store)->GetJob(job.job_id), std::nullopt);
  EXPECT_FALSE(*(*store)->HasModel(job.model_sha256));

  const std::string exported(512 << 10, 'e');
  st = (*results)->PutWithArtifacts("k1", "result", search::ResultSummary{},
                                    {{"model.pt", exported}});
  EXPECT_TRUE(search::IsDiskFull(st)) << st;
  EXPECT_EQ(*(*results)->Get("k1"), std::nullopt);
  EXPECT_THAT(*(*results)->ListArtifacts("k1"), ElementsAre());

  fs.Free();
  ASSERT_TRUE((*store)->InsertJobWithModel(job, model).ok());
  ASSERT_TRUE((*results)
                  ->PutWithArtifacts("k1", "result", search::ResultSummary{},
                                     {{"model.pt", exported}})
                  .ok());
  EXPECT_TRUE((*store)->GetJob(job.job_id)->has_value());
  EXPECT_EQ(*(*results)->Get("k1"), "result");
  EXPECT_THAT(*(*results)->ListArtifacts("k1"), ElementsAre("model.pt"));
}

// Another process holding the write lock: a server's start-up check fails
// within the busy timeout with a one-line error naming the file.
TEST_F(ServerStoreTest, CheckWritableFailsFastOnALockedDatabase) {
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr),
            SQLITE_OK);
  const auto start = std::chrono::steady_clock::now();
  absl::Status st = store_->CheckWritable();
  const double seconds = std::chrono::duration<double>(
                             std::chrono::steady_clock::now() - start)
                             .count();
  EXPECT_TRUE(absl::IsUnavailable(st)) << st;
  EXPECT_THAT(st.message(), HasSubstr("another process holds"));
  EXPECT_THAT(st.message(), HasSubstr(path_));
  EXPECT_EQ(std::string(st.message()).find('\n'), std::string::npos);
  EXPECT_LT(seconds, 15);
  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(other);
  EXPECT_TRUE(store_->CheckWritable().ok());
}

// A database on a read-only filesystem (or a read-only file): refused at
// open with what is wrong, not SQLite's "unable to open database file" at
// the first write.
TEST(ServerStoreDiskTest, ReadOnlyDatabaseIsRefusedAtOpen) {
  autoq::testing::SmallFilesystem fs(1 << 20);
  autoq::testing::TempDir dir;
  std::string path;
  if (fs.mounted()) {
    path = fs.File("autoq.db");
    ASSERT_TRUE(search::ResultStore::Open(path).ok());
    ASSERT_TRUE(fs.RemountReadOnly());
  } else if (geteuid() != 0) {
    path = dir.File("autoq.db");
    ASSERT_TRUE(search::ResultStore::Open(path).ok());
    ASSERT_EQ(chmod(path.c_str(), 0444), 0);
  } else {
    GTEST_SKIP() << "root without a mount: " << fs.why();
  }
  auto results = search::ResultStore::Open(path);
  ASSERT_FALSE(results.ok());
  EXPECT_TRUE(absl::IsPermissionDenied(results.status())) << results.status();
  EXPECT_THAT(results.status().message(), HasSubstr("cannot be written"));
  EXPECT_THAT(results.status().message(), HasSubstr(path));
  EXPECT_EQ(std::string(results.status().message()).find('\n'),
            std::string::npos);
}

}  // namespace
}  // namespace autoq::server
