// Bad input to the autoq command line: a clear one-line error and exit
// code 1, never a crash or a stack trace.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "tests/testing.h"

namespace autoq {
namespace {

using testing::CommandResult;
using testing::Fixture;
using testing::RunCommand;
using testing::TempDir;

std::string BigEndian(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16),
          static_cast<char>(v >> 8), static_cast<char>(v)};
}

// Writes a small IDX dataset (n images of 28x28) into `dir`.
void WriteIdx(const std::string& dir, const std::string& prefix, int n,
              uint8_t max_label, uint32_t image_magic = 0x803) {
  std::string images = BigEndian(image_magic) + BigEndian(n) + BigEndian(28) +
                       BigEndian(28) + std::string(n * 28 * 28, '\x40');
  std::string labels = BigEndian(0x801) + BigEndian(n);
  for (int i = 0; i < n; ++i) labels += static_cast<char>(i % (max_label + 1));
  testing::WriteFile(dir + "/" + prefix + "-images-idx3-ubyte", images);
  testing::WriteFile(dir + "/" + prefix + "-labels-idx1-ubyte", labels);
}

void WriteGoodIdx(const std::string& dir) {
  WriteIdx(dir, "train", 64, 9);
  WriteIdx(dir, "t10k", 32, 9);
}

// Expects exit code 1 and a single line naming the problem.
void ExpectCleanError(const std::string& args, const std::string& needle) {
  CommandResult r = RunCommand(std::string(AUTOQ_BINARY) + " " + args);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  std::vector<std::string> lines =
      absl::StrSplit(r.output, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 1u) << r.output;
  EXPECT_NE(lines[0].find("error: "), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find(needle), std::string::npos) << lines[0];
}

std::string EvalArgs(const std::string& data, const std::string& bits) {
  return "eval --quiet --threads 2 --epochs 0 --val-size 16 --model " +
         Fixture("small_dscnn.pt") + " --data " + data + " --bits " + bits;
}

TEST(CliErrorsTest, FileThatIsNotTorchScript) {
  AUTOQ_REQUIRE_FIXTURE(Fixture("not_torchscript.pt"));
  ExpectCleanError("inspect " + Fixture("not_torchscript.pt"),
                   "not a readable TorchScript model");
  ExpectCleanError("inspect " + Fixture("truncated.pt"),
                   "not a readable TorchScript model");
  ExpectCleanError("inspect /nonexistent.pt", "model file not found");
}

TEST(CliErrorsTest, ModelWithoutQuantizableLayers) {
  AUTOQ_REQUIRE_FIXTURE(Fixture("no_layers.pt"));
  ExpectCleanError("inspect " + Fixture("no_layers.pt"),
                   "no quantizable layer");
}

TEST(CliErrorsTest, InputShapeTheModelRejects) {
  AUTOQ_REQUIRE_FIXTURE(Fixture("small_dscnn.pt"));
  ExpectCleanError("inspect " + Fixture("small_dscnn.pt") + " --input 3,5,5",
                   "rejects input shape [3,5,5]");
}

TEST(CliErrorsTest, MissingDatasetFile) {
  AUTOQ_REQUIRE_FIXTURE(Fixture("small_dscnn.pt"));
  TempDir dir;
  ExpectCleanError(EvalArgs("idx:" + dir.path(), "8"), "no such file");
}

TEST(CliErrorsTest, TruncatedDatasetFile) {
  AUTOQ_REQUIRE_FIXTURE(Fixture("small_dscnn.pt"));
  TempDir dir;
  WriteGoodIdx(dir.path());
  std::string path = dir.File("train-images-idx3-ubyte");
  std::string bytes = testing::ReadFile(path);
  testing::WriteFile(path, bytes.substr(0, bytes.size() / 2));
  ExpectCleanError(EvalArgs("idx:" + dir.path(), "8"),
                   "train-images-idx3-ubyte");
}

TEST(CliErrorsTest, WrongIdxMagic) {
  AUTOQ_REQUIRE_FIXTURE(Fixture("small_dscnn.pt"));
  TempDir dir;
  WriteIdx(dir.path(), "train", 64, 9, /*image_magic=*/0x802);
  WriteIdx(dir.path(), "t10k", 32, 9);
  ExpectCleanError(EvalArgs("idx:" + dir.path(), "8"), "magic");
}

TEST(CliErrorsTest, LabelsOutsideTheClassCount) {
  AUTOQ_REQUIRE_FIXTURE(Fixture("small_dscnn.pt"));
  TempDir dir;
  WriteIdx(dir.path(), "train", 64, 12);
  WriteIdx(dir.path(), "t10k", 32, 9);
  ExpectCleanError(EvalArgs("idx:" + dir.path(), "8"), "label");
}

TEST(CliErrorsTest, BitListOfTheWrongLength) {
  AUTOQ_REQUIRE_FIXTURE(Fixture("small_dscnn.pt"));
  TempDir dir;
  WriteGoodIdx(dir.path());
  ExpectCleanError(EvalArgs("idx:" + dir.path(), "8,4,4"),
                   "bit list has 3 entries but the model has 12");
}

TEST(CliErrorsTest, BitsOutsideTwoToEight) {
  AUTOQ_REQUIRE_FIXTURE(Fixture("small_dscnn.pt"));
  TempDir dir;
  WriteGoodIdx(dir.path());
  ExpectCleanError(EvalArgs("idx:" + dir.path(), "8,4,4,4,4,4,4,4,4,4,1,8"),
                   "outside 2..8");
  ExpectCleanError(EvalArgs("idx:" + dir.path(), "9"), "outside 2..8");
}

TEST(CliErrorsTest, BadFlags) {
  ExpectCleanError("eval --bogus 1", "unknown option --bogus");
  ExpectCleanError("inspect x.pt --threads 0", "--threads 0");
  ExpectCleanError("eval --model x.pt --bits 8 --device tpu", "not a device");
}

TEST(CliErrorsTest, SensitivityRefusesBadOptions) {
  ExpectCleanError("sensitivity", "usage: autoq sensitivity");
  ExpectCleanError("sensitivity x.pt --min-bits 5 --max-bits 3",
                   "--min-bits and --max-bits");
  ExpectCleanError("sensitivity x.pt --images -1", "--images must be >= 0");
  ExpectCleanError("sensitivity x.pt --knapsack 5000", "--knapsack");
  ExpectCleanError("sensitivity x.pt --abits 9", "--abits");
  ExpectCleanError("sensitivity /nonexistent.pt", "model file not found");
}

TEST(CliErrorsTest, SensitivityOnAGoodInputSucceeds) {
  AUTOQ_REQUIRE_FIXTURE(Fixture("small_dscnn.pt"));
  TempDir dir;
  WriteGoodIdx(dir.path());
  CommandResult r = RunCommand(
      std::string(AUTOQ_BINARY) + " sensitivity " + Fixture("small_dscnn.pt") +
      " --data idx:" + dir.path() + " --val-size 16 --images 16 --threads 2 " +
      "--knapsack 3 --out " + dir.path() + "/sens");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("dloss@2"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("sensitivity + knapsack"), std::string::npos)
      << r.output;
  EXPECT_TRUE(std::filesystem::exists(dir.path() + "/sens/sensitivity.svg"));
  EXPECT_TRUE(std::filesystem::exists(dir.path() + "/sens/sensitivity.json"));
}

// The same small job succeeds, so the errors above are about the input.
TEST(CliErrorsTest, GoodInputSucceeds) {
  AUTOQ_REQUIRE_FIXTURE(Fixture("small_dscnn.pt"));
  TempDir dir;
  WriteGoodIdx(dir.path());
  CommandResult r = RunCommand(std::string(AUTOQ_BINARY) + " " +
                               EvalArgs("idx:" + dir.path(), "8") + " --json");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("\"size_bytes\":"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace autoq
