# The SQLite result cache (results, search checkpoints, exported artifacts).
# Included from search/CMakeLists.txt, which finds SQLite3 and OpenSSL.
# sqlite_statement: the SQLite helpers it shares with the server's state.
add_library(autoq_search_store result_store.cc sqlite_statement.cc)
target_link_libraries(autoq_search_store
  PUBLIC absl::status absl::statusor absl::strings SQLite::SQLite3
  PRIVATE OpenSSL::Crypto)

autoq_test(search_sqlite_statement_test
  SOURCES sqlite_statement_test.cc
  LIBS autoq_search_store)

autoq_test(search_result_store_test
  SOURCES result_store_test.cc
  LIBS autoq_search_store SQLite::SQLite3)
