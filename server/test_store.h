// Shared helpers of the tests of the server's durable state (server store,
// store writer, task queue, server API): a database folder with both
// stores open on one file, and raw SQL from outside.
#ifndef AUTOQ_SERVER_TEST_STORE_H_
#define AUTOQ_SERVER_TEST_STORE_H_

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <memory>
#include <string>
#include <utility>

#include "search/result_store.h"
#include "server/server_store.h"
#include "tests/testing.h"

namespace autoq::server::test_util {

// Runs SQL on the file through a connection of its own, as another program
// (or a newer AutoQ) would; waits up to 5 s for a lock.
inline void RawExec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  char* err = nullptr;
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK)
      << (err != nullptr ? err : "");
  sqlite3_free(err);
  sqlite3_close(db);
}

// A fresh database file with the result cache and the server store open on
// it, as the server opens them.
class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.File("autoq.db");
    OpenStores();
  }

  // Closes both stores (if open) and opens them again, as a restarted
  // server does.
  void OpenStores() {
    store_.reset();
    results_.reset();
    auto results = search::ResultStore::Open(path_);
    ASSERT_TRUE(results.ok()) << results.status();
    results_ = std::move(*results);
    store_ = MustOpen();
    ASSERT_NE(store_, nullptr);
  }

  // Another ServerStore on the same file; null (and a test failure) when
  // it does not open.
  std::unique_ptr<ServerStore> MustOpen() {
    auto store = ServerStore::Open(path_);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? std::move(*store) : nullptr;
  }

  autoq::testing::TempDir dir_;
  std::string path_;
  std::unique_ptr<search::ResultStore> results_;
  std::unique_ptr<ServerStore> store_;
};

}  // namespace autoq::server::test_util

#endif  // AUTOQ_SERVER_TEST_STORE_H_
