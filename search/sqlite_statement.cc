#include "search/sqlite_statement.h"

#include <limits>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"

namespace autoq::search {
namespace {

// A null pointer would bind SQL NULL; an empty string_view may carry one.
const char* NonNull(absl::string_view v) { return v.empty() ? "" : v.data(); }

// SQLite takes lengths as int, and a negative one means "up to the NUL".
bool TooBig(absl::string_view v) {
  return v.size() > static_cast<size_t>(std::numeric_limits<int>::max());
}

// Marks a disk-full status; a code alone cannot tell it from other
// RESOURCE_EXHAUSTED errors.
constexpr char kDiskFullPayload[] = "autoq.sqlite/disk_full";

}  // namespace

std::string SqliteMessage(sqlite3* db, int rc) {
  // The connection reports the extended code or the primary one, depending
  // on whether extended result codes are on.
  if (db != nullptr &&
      (sqlite3_extended_errcode(db) == rc || sqlite3_errcode(db) == rc)) {
    return sqlite3_errmsg(db);
  }
  return sqlite3_errstr(rc);
}

absl::Status SqlError(sqlite3* db, int rc, const std::string& path,
                      absl::string_view sql) {
  std::string msg = absl::StrCat(path, ": ", SqliteMessage(db, rc));
  if (!sql.empty()) absl::StrAppend(&msg, " (in: ", sql.substr(0, 60), ")");
  if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE) {
    return absl::AlreadyExistsError(msg);
  }
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(msg);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::DataLossError(msg);
    case SQLITE_FULL: {
      absl::Status full = absl::ResourceExhaustedError(
          absl::StrCat(msg, ": the disk holding the database is full; "
                            "writes succeed again once space is freed"));
      full.SetPayload(kDiskFullPayload, absl::Cord("1"));
      return full;
    }
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY:
      return absl::PermissionDeniedError(msg);
    default:
      return absl::InternalError(msg);
  }
}

bool IsDiskFull(const absl::Status& status) {
  return absl::IsResourceExhausted(status) &&
         status.GetPayload(kDiskFullPayload).has_value();
}

absl::Status Exec(sqlite3* db, const std::string& path, const char* sql) {
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
  return rc == SQLITE_OK ? absl::OkStatus() : SqlError(db, rc, path, sql);
}

void RollbackIfOpen(sqlite3* db) {
  if (!sqlite3_get_autocommit(db)) {
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
  }
}

Statement::Statement(sqlite3* db, const std::string& path)
    : db_(db), path_(path) {}

Statement::Statement(sqlite3* db, const std::string& path, const char* sql,
                     sqlite3_stmt* stmt)
    : db_(db), path_(path), sql_(sql), stmt_(stmt), owned_(false) {}

Statement::~Statement() {
  if (owned_) {
    sqlite3_finalize(stmt_);
  } else {
    Reset();
  }
}

absl::Status Statement::Prepare(const char* sql) {
  if (!owned_ || stmt_ != nullptr) {
    return absl::InternalError("Statement::Prepare called twice");
  }
  sql_ = sql;
  int rc = sqlite3_prepare_v2(db_, sql, -1, &stmt_, nullptr);
  return rc == SQLITE_OK ? absl::OkStatus() : Fail(rc);
}

void Statement::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  next_ = 1;
  bind_rc_ = SQLITE_OK;
}

Statement& Statement::Text(absl::string_view v) {
  if (TooBig(v)) return Bound(SQLITE_TOOBIG);
  return Bound(sqlite3_bind_text(stmt_, next_++, NonNull(v),
                                 static_cast<int>(v.size()), SQLITE_STATIC));
}

Statement& Statement::Blob(absl::string_view v) {
  if (TooBig(v)) return Bound(SQLITE_TOOBIG);
  return Bound(sqlite3_bind_blob(stmt_, next_++, NonNull(v),
                                 static_cast<int>(v.size()), SQLITE_STATIC));
}

Statement& Statement::Int(int64_t v) {
  return Bound(sqlite3_bind_int64(stmt_, next_++, v));
}

Statement& Statement::Real(double v) {
  return Bound(sqlite3_bind_double(stmt_, next_++, v));
}

absl::StatusOr<bool> Statement::Step() {
  if (bind_rc_ != SQLITE_OK) return Fail(bind_rc_);
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return Fail(rc);
}

std::string Statement::Bytes(int i) const {
  const void* p = sqlite3_column_blob(stmt_, i);
  int n = sqlite3_column_bytes(stmt_, i);
  return p == nullptr ? std::string()
                      : std::string(static_cast<const char*>(p), n);
}

Statement& Statement::Bound(int rc) {
  if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

absl::Status Statement::Fail(int rc) {
  error_code_ = rc;
  error_message_ = SqliteMessage(db_, rc);
  return SqlError(db_, rc, path_, sql_);
}

}  // namespace autoq::search
