# The SQLite result cache (results, search checkpoints, exported artifacts).
# Included from search/CMakeLists.txt, which finds SQLite3 and OpenSSL.
add_library(autoq_search_store result_store.cc)
target_link_libraries(autoq_search_store
  PUBLIC absl::status absl::statusor absl::strings
  PRIVATE SQLite::SQLite3 OpenSSL::Crypto)

autoq_test(search_result_store_test
  SOURCES result_store_test.cc
  LIBS autoq_search_store SQLite::SQLite3)
