#include "common/flags.h"

#include <gtest/gtest.h>

namespace autoq {
namespace {

absl::StatusOr<Flags> ParseArgs(std::vector<std::string> args) {
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  FlagSpec spec{{"bits", "epochs"}, {"json"}};
  return Flags::Parse(static_cast<int>(argv.size()), argv.data(), 0, spec);
}

TEST(FlagsTest, ParsesValuesBooleansAndPositionals) {
  auto f = ParseArgs({"model.pt", "--bits", "8,4", "--epochs=3", "--json"});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->Get("bits"), "8,4");
  EXPECT_EQ(f->GetInt("epochs", 1).value(), 3);
  EXPECT_TRUE(f->Has("json"));
  ASSERT_EQ(f->positional().size(), 1u);
  EXPECT_EQ(f->positional()[0], "model.pt");
  EXPECT_EQ(f->GetInt("missing", 7).value(), 7);
}

TEST(FlagsTest, RejectsUnknownMissingAndMalformed) {
  EXPECT_FALSE(ParseArgs({"--nope", "1"}).ok());
  EXPECT_FALSE(ParseArgs({"--bits"}).ok());
  EXPECT_FALSE(ParseArgs({"--json=1"}).ok());
  auto f = ParseArgs({"--epochs", "three"});
  ASSERT_TRUE(f.ok());
  EXPECT_FALSE(f->GetInt("epochs", 1).ok());
}

TEST(FlagsTest, IntInRangeNamesTheRange) {
  auto f = ParseArgs({"--epochs", "12", "--bits", "99999999999"});
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->GetIntIn("epochs", 1, 1, 12).value(), 12);
  EXPECT_EQ(f->GetIntIn("missing", 5, 1, 12).value(), 5);
  absl::StatusOr<int> low = f->GetIntIn("epochs", 1, 13, 20);
  EXPECT_EQ(low.status().message(), "--epochs must be in [13, 20]");
  // Beyond int: refused by the range, not truncated into it.
  EXPECT_FALSE(f->GetIntIn("bits", 1, 0, 1000000).ok());
}

}  // namespace
}  // namespace autoq
