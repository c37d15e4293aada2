# The search proper: job config, encoding, evaluation interface, local
# workers, the pagmo problem and driver, the job pipeline and runner.
find_package(Pagmo REQUIRED)

add_library(autoq_search
  chromosome.cc
  evaluation.cc
  job_config.cc
  job_pipeline.cc
  job_runner.cc
  local_pool.cc
  problem.cc
  search_driver.cc
  task_runner.cc
)
target_link_libraries(autoq_search
  PUBLIC autoq_search_store autoq_search_report autoq_evaluator autoq_qat
         autoq_proto Pagmo::pagmo absl::status absl::statusor absl::strings)

autoq_test(search_job_config_test SOURCES job_config_test.cc
           LIBS autoq_search GTest::gmock)
autoq_test(search_driver_test SOURCES search_driver_test.cc
           LIBS autoq_search GTest::gmock)
autoq_test(search_job_pipeline_test SOURCES job_pipeline_test.cc
           LIBS autoq_search GTest::gmock)
