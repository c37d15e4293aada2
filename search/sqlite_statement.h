// SQLite helpers shared by the two stores that live in one database file:
// the result cache (search/result_store) and the server's state
// (server/server_store). Errors come back as absl::Status carrying the file
// path, SQLite's message and the start of the failing SQL, with codes a
// caller can act on (busy -> UNAVAILABLE, corrupt -> DATA_LOSS, ...).
//
// Thread-safety: like the connection it uses, a Statement belongs to one
// thread at a time; the free functions are as safe as the connection given.
#ifndef AUTOQ_SEARCH_SQLITE_STATEMENT_H_
#define AUTOQ_SEARCH_SQLITE_STATEMENT_H_

#include <sqlite3.h>

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace autoq::search {

// SQLite's message for `rc`: the connection's own when it is about `rc`
// (it names the table or constraint), the generic one otherwise.
std::string SqliteMessage(sqlite3* db, int rc);

// `rc` as a status: "PATH: message (in: SQL...)". A primary-key or unique
// violation (with extended result codes on) is ALREADY_EXISTS; busy/locked
// UNAVAILABLE; corrupt/not-a-database DATA_LOSS; full RESOURCE_EXHAUSTED;
// cannot open/read-only PERMISSION_DENIED; anything else INTERNAL.
absl::Status SqlError(sqlite3* db, int rc, const std::string& path,
                      absl::string_view sql);

// True for a status made by SqlError from SQLITE_FULL (or carried on from
// one): the disk holding the database is full. Such a write changed
// nothing and succeeds again once there is space.
bool IsDiskFull(const absl::Status& status);

// Runs `sql` (one or more statements returning no rows).
absl::Status Exec(sqlite3* db, const std::string& path, const char* sql);

// Ends a failed transaction. SQLite has already rolled back after some
// errors (a full disk, an I/O error); then there is nothing to end.
void RollbackIfOpen(sqlite3* db);

// One use of a prepared statement. Parameters are bound in order; a binding
// error surfaces at the next Step. Bound values are not copied: they must
// outlive the last Step.
class Statement {
 public:
  // Owns the statement that Prepare makes; finalized at destruction.
  Statement(sqlite3* db, const std::string& path);
  // Borrows `stmt`, a prepared statement of `sql` that the caller caches:
  // it is reset and its bindings cleared at destruction, so it holds no
  // read transaction open and no pointer into the caller's data.
  Statement(sqlite3* db, const std::string& path, const char* sql,
            sqlite3_stmt* stmt);
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Prepares `sql` (a literal: it must outlive the statement). Only for a
  // statement made with the two-argument constructor, once.
  absl::Status Prepare(const char* sql);

  // Makes the statement ready to bind and run again.
  void Reset();

  Statement& Text(absl::string_view v);
  Statement& Blob(absl::string_view v);
  Statement& Int(int64_t v);
  Statement& Real(double v);

  // True while there is a row to read, false once done.
  absl::StatusOr<bool> Step();
  // Runs a statement that returns no rows.
  absl::Status Run() { return Step().status(); }

  // Column `i` of the current row as bytes (TEXT or BLOB).
  std::string Bytes(int i) const;
  int64_t Int64(int i) const { return sqlite3_column_int64(stmt_, i); }
  int Columns() const { return sqlite3_column_count(stmt_); }

  // The SQLite code and message of the last failure.
  int error_code() const { return error_code_; }
  const std::string& error_message() const { return error_message_; }

 private:
  Statement& Bound(int rc);
  absl::Status Fail(int rc);

  sqlite3* db_;
  const std::string& path_;
  const char* sql_ = "";
  sqlite3_stmt* stmt_ = nullptr;
  bool owned_ = true;
  int next_ = 1;
  int bind_rc_ = SQLITE_OK;
  int error_code_ = SQLITE_OK;
  std::string error_message_;
};

}  // namespace autoq::search

#endif  // AUTOQ_SEARCH_SQLITE_STATEMENT_H_
