// The recipe's validation and the eval batch size it resolves to.
#include "qat/recipe.h"

#include <gtest/gtest.h>

namespace autoq::qat {
namespace {

TEST(RecipeTest, DefaultsAreValidAndBadFieldsAreNamed) {
  EXPECT_TRUE(ValidateRecipe(QatRecipe{}).ok());
  QatRecipe r;
  r.eval_batch_size = -1;
  const absl::Status st = ValidateRecipe(r);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("recipe.eval_batch_size"), std::string::npos)
      << st.message();
  r = QatRecipe{};
  r.batch_size = 0;
  EXPECT_NE(ValidateRecipe(r).message().find("recipe.batch_size"),
            std::string::npos);
}

TEST(RecipeTest, EvalBatchSizeByDeviceUnlessGiven) {
  QatRecipe r;
  EXPECT_EQ(EvalBatchSize(r, /*on_cpu=*/true), 64);
  EXPECT_EQ(EvalBatchSize(r, /*on_cpu=*/false), 512);
  r.eval_batch_size = 200;
  EXPECT_EQ(EvalBatchSize(r, true), 200);
  EXPECT_EQ(EvalBatchSize(r, false), 200);
}

}  // namespace
}  // namespace autoq::qat
