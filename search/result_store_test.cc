#include "search/result_store.h"

#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/testing.h"

namespace autoq::search {
namespace {

namespace fs = std::filesystem;

using ::autoq::testing::ReadFile;
using ::autoq::testing::WriteFile;

ResultSummary Summary(double top1) {
  ResultSummary s;
  s.val_top1 = top1;
  s.size_bytes = 1234;
  s.wall_seconds = 1.5;
  s.device = "cpu";
  return s;
}

class ResultStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string templ = ::testing::TempDir() + "/result_store_XXXXXX";
    ASSERT_NE(mkdtemp(templ.data()), nullptr);
    dir_ = templ;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  std::unique_ptr<ResultStore> MustOpen(const std::string& path) {
    absl::StatusOr<std::unique_ptr<ResultStore>> store =
        ResultStore::Open(path);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? std::move(*store) : nullptr;
  }

  std::string dir_;
};

TEST_F(ResultStoreTest, PutGetFirstResultWins) {
  auto store = MustOpen(Path("r.db"));
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->path(), Path("r.db"));

  absl::StatusOr<std::optional<std::string>> got = store->Get("k1");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_FALSE(got->has_value());

  bool inserted = false;
  ASSERT_TRUE(store->Put("k1", "first", Summary(90), &inserted).ok());
  EXPECT_TRUE(inserted);
  ASSERT_TRUE(store->Put("k1", "second", Summary(91), &inserted).ok());
  EXPECT_FALSE(inserted);
  ASSERT_TRUE(store->Put("k2", "", Summary(0)).ok());  // null flag is fine

  got = store->Get("k1");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ(**got, "first");
  got = store->Get("k2");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ(**got, "");
  absl::StatusOr<int64_t> n = store->CountResults();
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 2);
}

TEST_F(ResultStoreTest, PersistsAcrossReopenWithBinaryValues) {
  std::string binary("\0\x01\xff\0tail\0", 9);
  {
    auto store = MustOpen(Path("r.db"));
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Put("bin", binary, Summary(50)).ok());
    ASSERT_TRUE(store->PutCheckpoint("job", 3, binary).ok());
    ASSERT_TRUE(store->PutArtifact("bin", "model.pt", binary).ok());
  }
  auto store = MustOpen(Path("r.db"));
  ASSERT_NE(store, nullptr);
  absl::StatusOr<std::optional<std::string>> got = store->Get("bin");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ(**got, binary);
  auto ckpt = store->LatestCheckpoint("job");
  ASSERT_TRUE(ckpt.ok() && ckpt->has_value());
  EXPECT_EQ((*ckpt)->state, binary);
  auto art = store->GetArtifact("bin", "model.pt");
  ASSERT_TRUE(art.ok() && art->has_value());
  EXPECT_EQ(**art, binary);
}

TEST_F(ResultStoreTest, CheckpointsReplaceAndLatest) {
  auto store = MustOpen(Path("r.db"));
  ASSERT_NE(store, nullptr);
  auto none = store->LatestCheckpoint("job");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());

  ASSERT_TRUE(store->PutCheckpoint("job", 0, "g0").ok());
  ASSERT_TRUE(store->PutCheckpoint("job", 2, "g2").ok());
  ASSERT_TRUE(store->PutCheckpoint("job", 1, "g1").ok());
  ASSERT_TRUE(store->PutCheckpoint("job", 2, "g2-again").ok());
  ASSERT_TRUE(store->PutCheckpoint("other", 7, "o7").ok());

  auto latest = store->LatestCheckpoint("job");
  ASSERT_TRUE(latest.ok() && latest->has_value());
  EXPECT_EQ((*latest)->job_key, "job");
  EXPECT_EQ((*latest)->generation, 2);
  EXPECT_EQ((*latest)->state, "g2-again");
  latest = store->LatestCheckpoint("other");
  ASSERT_TRUE(latest.ok() && latest->has_value());
  EXPECT_EQ((*latest)->generation, 7);
}

TEST_F(ResultStoreTest, Artifacts) {
  auto store = MustOpen(Path("r.db"));
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->PutArtifact("k", "model.pt", "v1").ok());
  ASSERT_TRUE(store->PutArtifact("k", "int8.bin", "w").ok());
  ASSERT_TRUE(store->PutArtifact("k", "model.pt", "v2").ok());
  ASSERT_TRUE(store->PutArtifact("k2", "a", "x").ok());

  auto names = store->ListArtifacts("k");
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, (std::vector<std::string>{"int8.bin", "model.pt"}));
  auto art = store->GetArtifact("k", "model.pt");
  ASSERT_TRUE(art.ok() && art->has_value());
  EXPECT_EQ(**art, "v2");
  art = store->GetArtifact("k", "missing");
  ASSERT_TRUE(art.ok());
  EXPECT_FALSE(art->has_value());
  names = store->ListArtifacts("none");
  ASSERT_TRUE(names.ok());
  EXPECT_TRUE(names->empty());
}

TEST_F(ResultStoreTest, ConcurrentPutGet) {
  auto store = MustOpen(Path("r.db"));
  ASSERT_NE(store, nullptr);
  constexpr int kThreads = 4;
  constexpr int kKeys = 100;
  std::atomic<int> inserted_total{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kKeys; ++i) {
        // Every thread writes every key: exactly one insert may win each.
        std::string key = absl::StrCat("key", i);
        bool inserted = false;
        if (!store->Put(key, absl::StrCat("v", i), Summary(t), &inserted)
                 .ok()) {
          ++failures;
        }
        if (inserted) ++inserted_total;
        auto got = store->Get(key);
        if (!got.ok() || !got->has_value() || **got != absl::StrCat("v", i)) {
          ++failures;
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(inserted_total.load(), kKeys);
  auto n = store->CountResults();
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, kKeys);
}

TEST_F(ResultStoreTest, TwoConnectionsOnOneFile) {
  auto a = MustOpen(Path("r.db"));
  auto b = MustOpen(Path("r.db"));
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  bool inserted = false;
  ASSERT_TRUE(a->Put("k", "from-a", Summary(1), &inserted).ok());
  EXPECT_TRUE(inserted);
  ASSERT_TRUE(b->Put("k", "from-b", Summary(2), &inserted).ok());
  EXPECT_FALSE(inserted);
  auto got = b->Get("k");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ(**got, "from-a");
  ASSERT_TRUE(b->PutCheckpoint("job", 4, "s").ok());
  auto ckpt = a->LatestCheckpoint("job");
  ASSERT_TRUE(ckpt.ok() && ckpt->has_value());
  EXPECT_EQ((*ckpt)->generation, 4);
}

TEST_F(ResultStoreTest, RandomBytesAreRefusedAndUntouched) {
  std::string path = Path("random.db");
  std::mt19937 rng(7);
  std::string bytes(8192, '\0');
  for (char& c : bytes) c = static_cast<char>(rng());
  WriteFile(path, bytes);

  auto store = ResultStore::Open(path);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find("not an AutoQ"), std::string::npos)
      << store.status();
  EXPECT_NE(store.status().message().find(path), std::string::npos);
  EXPECT_EQ(ReadFile(path), bytes);
  EXPECT_FALSE(fs::exists(path + "-wal"));
}

TEST_F(ResultStoreTest, ForeignSqliteDatabaseIsRefusedAndUntouched) {
  std::string path = Path("foreign.db");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "CREATE TABLE t (x INTEGER); "
                         "INSERT INTO t VALUES (1), (2);",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  std::string before = ReadFile(path);

  auto store = ResultStore::Open(path);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find("not an AutoQ"), std::string::npos)
      << store.status();
  EXPECT_EQ(ReadFile(path), before);
}

// A foreign WAL database whose last writes are still in its WAL (its
// program crashed): neither file may change, so closing must not fold the
// WAL into the database.
TEST_F(ResultStoreTest, ForeignWalDatabaseIsRefusedAndUntouched) {
  std::string live = Path("live.db");
  std::string path = Path("foreign.db");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(live.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "PRAGMA journal_mode = WAL; CREATE TABLE t (x); "
                         "INSERT INTO t VALUES (1);",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  // Copies taken while the connection is open: the WAL is not checkpointed.
  WriteFile(path, ReadFile(live));
  WriteFile(path + "-wal", ReadFile(live + "-wal"));
  sqlite3_close(db);
  std::string db_before = ReadFile(path);
  std::string wal_before = ReadFile(path + "-wal");
  ASSERT_FALSE(wal_before.empty());

  auto store = ResultStore::Open(path);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find("not an AutoQ"), std::string::npos)
      << store.status();
  EXPECT_EQ(ReadFile(path), db_before);
  EXPECT_EQ(ReadFile(path + "-wal"), wal_before);
}

TEST_F(ResultStoreTest, NewerSchemaVersionIsRefused) {
  std::string path = Path("r.db");
  ASSERT_NE(MustOpen(path), nullptr);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "UPDATE meta SET value = '999' "
                         "WHERE key = 'schema_version'",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto store = ResultStore::Open(path);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find("newer"), std::string::npos)
      << store.status();
}

TEST_F(ResultStoreTest, TruncatedDatabaseIsRefusedOriginalIntact) {
  std::string path = Path("good.db");
  {
    auto store = MustOpen(path);
    ASSERT_NE(store, nullptr);
    for (int i = 0; i < 200; ++i) {
      ASSERT_TRUE(store
                      ->Put(absl::StrCat("k", i),
                            std::string(2000, 'a' + i % 26), Summary(i))
                      .ok());
    }
  }  // closing the last connection checkpoints the WAL into the file
  std::string good = ReadFile(path);
  ASSERT_GT(good.size(), 100000u);
  std::string cut = Path("cut.db");
  WriteFile(cut, good.substr(0, good.size() / 2));

  // SQLite sees the header's page count exceed the file and calls it
  // malformed on the first read.
  std::string cut_before = ReadFile(cut);
  auto bad = ResultStore::Open(cut);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("not an AutoQ"), std::string::npos)
      << bad.status();
  EXPECT_NE(bad.status().message().find(cut), std::string::npos);
  EXPECT_EQ(ReadFile(cut), cut_before);
  EXPECT_FALSE(fs::exists(cut + "-wal"));

  auto store = MustOpen(path);
  ASSERT_NE(store, nullptr);
  auto n = store->CountResults();
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 200);
  auto got = store->Get("k199");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ(**got, std::string(2000, 'a' + 199 % 26));
}

TEST_F(ResultStoreTest, MissingParentFolderIsAnError) {
  std::string path = Path("no/such/folder/r.db");
  auto store = ResultStore::Open(path);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find(path), std::string::npos);
  EXPECT_FALSE(fs::exists(Path("no")));
}

bool ReadFull(int fd, void* buf, size_t n) {
  char* p = static_cast<char*>(buf);
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

// A worker killed mid-write loses nothing it reported as stored.
TEST_F(ResultStoreTest, SurvivesKilledWriter) {
  std::string path = Path("crash.db");
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    auto store = ResultStore::Open(path);
    if (!store.ok()) _exit(2);
    std::string value(4096, 'x');
    for (int i = 0; i < 1000000; ++i) {
      if (!(*store)->Put(absl::StrCat("k", i), value, Summary(i)).ok()) {
        _exit(3);
      }
      if (write(fds[1], &i, sizeof(i)) != sizeof(i)) _exit(4);
    }
    _exit(0);
  }
  close(fds[1]);
  std::set<int> done;
  int i = 0;
  while (done.size() < 300 && ReadFull(fds[0], &i, sizeof(i))) done.insert(i);
  ASSERT_EQ(done.size(), 300u);
  kill(pid, SIGKILL);
  int wstatus = 0;
  ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
  EXPECT_TRUE(WIFSIGNALED(wstatus));
  // Whatever the child reported before it died was committed too.
  while (ReadFull(fds[0], &i, sizeof(i))) done.insert(i);
  close(fds[0]);

  auto store = MustOpen(path);
  ASSERT_NE(store, nullptr);
  for (int k : done) {
    auto got = store->Get(absl::StrCat("k", k));
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_TRUE(got->has_value()) << "lost k" << k;
  }
  auto n = store->CountResults();
  ASSERT_TRUE(n.ok());
  EXPECT_GE(*n, static_cast<int64_t>(done.size()));
}

}  // namespace
}  // namespace autoq::search
