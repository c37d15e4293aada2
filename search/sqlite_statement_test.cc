#include "search/sqlite_statement.h"

#include <sqlite3.h>

#include <string>

#include "gtest/gtest.h"
#include "tests/testing.h"

namespace autoq::search {
namespace {

class SqliteStatementTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.File("t.db");
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db_), SQLITE_OK);
    ASSERT_TRUE(Exec(db_, path_,
                     "CREATE TABLE t (k TEXT PRIMARY KEY, v BLOB, n INTEGER, "
                     "r REAL)")
                    .ok());
  }
  void TearDown() override { sqlite3_close(db_); }

  testing::TempDir dir_;
  std::string path_;
  sqlite3* db_ = nullptr;
};

TEST_F(SqliteStatementTest, BindsInOrderAndReadsBack) {
  Statement insert(db_, path_);
  ASSERT_TRUE(insert.Prepare("INSERT INTO t VALUES (?, ?, ?, ?)").ok());
  std::string blob("a\0b", 3);  // embedded NUL survives
  ASSERT_TRUE(insert.Text("key").Blob(blob).Int(-7).Real(0.5).Run().ok());

  Statement select(db_, path_);
  ASSERT_TRUE(select.Prepare("SELECT k, v, n, r FROM t").ok());
  absl::StatusOr<bool> row = select.Step();
  ASSERT_TRUE(row.ok() && *row);
  EXPECT_EQ(select.Columns(), 4);
  EXPECT_EQ(select.Bytes(0), "key");
  EXPECT_EQ(select.Bytes(1), blob);
  EXPECT_EQ(select.Int64(2), -7);
  row = select.Step();
  ASSERT_TRUE(row.ok());
  EXPECT_FALSE(*row);
}

TEST_F(SqliteStatementTest, DuplicateKeyIsAlreadyExistsWithExtendedCodes) {
  sqlite3_extended_result_codes(db_, 1);
  ASSERT_TRUE(Exec(db_, path_, "INSERT INTO t (k) VALUES ('a')").ok());
  absl::Status st = Exec(db_, path_, "INSERT INTO t (k) VALUES ('a')");
  EXPECT_EQ(st.code(), absl::StatusCode::kAlreadyExists) << st;
  // The message names the file, SQLite's reason and the statement.
  EXPECT_NE(st.message().find(path_), std::string::npos) << st;
  EXPECT_NE(st.message().find("UNIQUE constraint failed: t.k"),
            std::string::npos)
      << st;
  EXPECT_NE(st.message().find("(in: INSERT INTO t"), std::string::npos) << st;
}

TEST_F(SqliteStatementTest, ErrorsCarrySqliteMessageAndCode) {
  Statement s(db_, path_);
  absl::Status st = s.Prepare("SELECT * FROM missing_table");
  EXPECT_EQ(st.code(), absl::StatusCode::kInternal) << st;
  EXPECT_NE(st.message().find("no such table: missing_table"),
            std::string::npos)
      << st;
  EXPECT_EQ(s.error_code(), SQLITE_ERROR);

  EXPECT_EQ(SqlError(nullptr, SQLITE_BUSY, "f", "").code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(SqlError(nullptr, SQLITE_NOTADB, "f", "").code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(SqlError(nullptr, SQLITE_FULL, "f", "").code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(SqlError(nullptr, SQLITE_READONLY, "f", "").code(),
            absl::StatusCode::kPermissionDenied);
}

TEST_F(SqliteStatementTest, BorrowedStatementIsResetForTheNextUse) {
  const char* sql = "INSERT INTO t (k, n) VALUES (?, ?)";
  sqlite3_stmt* cached = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db_, sql, -1, &cached, nullptr), SQLITE_OK);
  {
    Statement s(db_, path_, sql, cached);
    ASSERT_TRUE(s.Text("a").Int(1).Run().ok());
  }
  {
    // Binding starts at the first parameter again, with no stale values.
    Statement s(db_, path_, sql, cached);
    ASSERT_TRUE(s.Text("b").Run().ok());
  }
  sqlite3_finalize(cached);
  Statement count(db_, path_);
  ASSERT_TRUE(count.Prepare("SELECT COUNT(*), COUNT(n) FROM t").ok());
  ASSERT_TRUE(*count.Step());
  EXPECT_EQ(count.Int64(0), 2);
  EXPECT_EQ(count.Int64(1), 1);  // "b" got NULL, not "a"'s 1
}

TEST_F(SqliteStatementTest, RollbackIfOpenEndsAnOpenTransactionOnly) {
  RollbackIfOpen(db_);  // nothing open: harmless
  ASSERT_TRUE(Exec(db_, path_, "BEGIN").ok());
  ASSERT_TRUE(Exec(db_, path_, "INSERT INTO t (k) VALUES ('x')").ok());
  RollbackIfOpen(db_);
  EXPECT_NE(sqlite3_get_autocommit(db_), 0);
  Statement count(db_, path_);
  ASSERT_TRUE(count.Prepare("SELECT COUNT(*) FROM t").ok());
  ASSERT_TRUE(*count.Step());
  EXPECT_EQ(count.Int64(0), 0);
}

}  // namespace
}  // namespace autoq::search
