#include "qat/quant_config.h"

#include <gtest/gtest.h>

namespace autoq::qat {
namespace {

TEST(QuantConfigTest, ParsesBitLists) {
  auto b = ParseBitList("8, 4,2", 3, false);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(*b, (std::vector<int>{8, 4, 2}));
  auto all = ParseBitList("6", 4, false);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(*all, (std::vector<int>{6, 6, 6, 6}));
  auto act = ParseBitList("8,f,0", 3, true);
  ASSERT_TRUE(act.ok());
  EXPECT_EQ(*act, (std::vector<int>{8, 0, 0}));
  EXPECT_EQ(FormatBitList(*act), "8,f,f");
}

TEST(QuantConfigTest, RejectsBadBitLists) {
  auto len = ParseBitList("8,4", 3, false);
  EXPECT_EQ(len.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(len.status().message().find("2 entries"), std::string::npos);
  auto range = ParseBitList("8,9,4", 3, false);
  EXPECT_NE(range.status().message().find("outside 2..8"), std::string::npos);
  EXPECT_FALSE(ParseBitList("8,1,4", 3, false).ok());
  EXPECT_FALSE(ParseBitList("8,f,4", 3, false).ok());  // weights never float
  EXPECT_FALSE(ParseBitList("8,x,4", 3, true).ok());
  EXPECT_FALSE(ParseBitList("", 3, false).ok());
}

TEST(QuantConfigTest, ParsesSchemeNames) {
  EXPECT_EQ(*ParseGranularity("per-channel"), Granularity::kPerChannelSymmetric);
  EXPECT_EQ(*ParseRangeMethod("mse"), RangeMethod::kMse);
  EXPECT_EQ(*ParseBnFold("none"), BnFold::kNone);
  EXPECT_FALSE(ParseGranularity("per-row").ok());
  EXPECT_FALSE(ParseRangeMethod("max").ok());
  EXPECT_FALSE(ParseBnFold("folded").ok());
}

}  // namespace
}  // namespace autoq::qat
