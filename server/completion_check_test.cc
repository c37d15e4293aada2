#include "server/completion_check.h"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "evaluator/task.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace autoq::server {
namespace {

using ::testing::HasSubstr;

CompleteTaskRequest Good(int stage) {
  CompleteTaskRequest r;
  EvalResult* e = r.mutable_result();
  e->set_best_val_top1(88);
  e->set_test_top1(87);
  e->set_size_bytes(100);
  for (int b : {4, 8}) e->add_wbits(b);
  if (stage == STAGE_FINAL) {
    for (const char* name : evaluator::kFinalArtifacts) {
      NamedBytes* a = r.add_artifacts();
      a->set_name(name);
      a->set_data("x");
    }
  }
  return r;
}

const std::vector<int> kBits = {4, 8};

TEST(CompletionCheckTest, AcceptsAWellFormedResult) {
  for (int stage : {STAGE_FLOAT, STAGE_SEARCH, STAGE_FINAL}) {
    CompleteTaskRequest r = Good(stage);
    EXPECT_TRUE(CheckArtifactNames(r).ok());
    EXPECT_TRUE(CheckResult(r, stage, kBits).ok()) << stage;
  }
}

TEST(CompletionCheckTest, RefusesOtherBitWidthsButForTheFloatTask) {
  CompleteTaskRequest r = Good(STAGE_SEARCH);
  r.mutable_result()->set_wbits(1, 2);
  EXPECT_THAT(std::string(CheckResult(r, STAGE_SEARCH, kBits).message()),
              HasSubstr("bit-widths are not the task's"));
  EXPECT_TRUE(CheckResult(r, STAGE_FLOAT, kBits).ok());
}

TEST(CompletionCheckTest, AFinalTaskNeedsEachExportByName) {
  CompleteTaskRequest r = Good(STAGE_FINAL);
  // As many artifacts as required, but one of them twice.
  r.mutable_artifacts(0)->set_name(r.artifacts(1).name());
  absl::Status st = CheckResult(r, STAGE_FINAL, kBits);
  EXPECT_TRUE(absl::IsInvalidArgument(st));
  EXPECT_THAT(std::string(st.message()),
              HasSubstr(std::string(evaluator::kFinalArtifacts[0]) +
                        " is missing"));
}

TEST(CompletionCheckTest, RefusesNumbersThatAreNotFinite) {
  for (double bad : {std::nan(""), std::numeric_limits<double>::infinity()}) {
    CompleteTaskRequest r = Good(STAGE_SEARCH);
    r.mutable_result()->set_best_val_top1(bad);
    EXPECT_THAT(std::string(CheckResult(r, STAGE_SEARCH, kBits).message()),
                HasSubstr("best_val_top1 is not a finite number"));
    r = Good(STAGE_SEARCH);
    r.mutable_result()->add_curve()->set_val_top1(bad);
    EXPECT_FALSE(CheckResult(r, STAGE_SEARCH, kBits).ok());
  }
  CompleteTaskRequest r = Good(STAGE_SEARCH);
  r.mutable_result()->set_size_bytes(-1);
  EXPECT_THAT(std::string(CheckResult(r, STAGE_SEARCH, kBits).message()),
              HasSubstr("size_bytes is negative"));
}

TEST(CompletionCheckTest, RefusesASensitivityTableThatDoesNotDecode) {
  CompleteTaskRequest r = Good(STAGE_SENSITIVITY);
  SensitivityResult* s = r.mutable_result()->mutable_sensitivity();
  s->set_min_bits(2);
  s->set_max_bits(4);
  SensitivityLayer* l = s->add_layers();
  l->add_loss(0.1);  // three widths, one value
  l->add_top1(80);
  absl::Status st = CheckResult(r, STAGE_SENSITIVITY, kBits);
  EXPECT_TRUE(absl::IsInvalidArgument(st));
  EXPECT_THAT(std::string(st.message()), HasSubstr("does not decode"));
}

TEST(CompletionCheckTest, RefusesArtifactNamesOutsideTheExports) {
  CompleteTaskRequest r = Good(STAGE_FINAL);
  r.add_artifacts()->set_name("../../etc/passwd");
  EXPECT_THAT(std::string(CheckArtifactNames(r).message()),
              HasSubstr("is not one of"));
}

}  // namespace
}  // namespace autoq::server
