# Pareto utilities (non-dominated sort, hypervolume) and the reports of the
# final front (text table, JSON, CSV, SVG). No LibTorch, no SQLite.
add_library(autoq_search_report pareto.cc report.cc report_svg.cc)
target_link_libraries(autoq_search_report
  PUBLIC absl::status absl::statusor absl::strings
  PRIVATE absl::str_format)

autoq_test(search_pareto_test SOURCES pareto_test.cc LIBS autoq_search_report)
autoq_test(search_report_test SOURCES report_test.cc LIBS autoq_search_report)
