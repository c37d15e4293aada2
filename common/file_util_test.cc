#include "common/file_util.h"

#include <unistd.h>

#include <filesystem>
#include <set>
#include <string>

#include "gtest/gtest.h"

namespace autoq {
namespace {

class FileUtilTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("autoq_file_util_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Names in the folder: a failed or finished write leaves no temp file.
  std::set<std::string> Names() const {
    std::set<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(dir_)) {
      out.insert(e.path().filename().string());
    }
    return out;
  }

  std::filesystem::path dir_;
};

TEST_F(FileUtilTest, WritesAtomicallyAndReadsBack) {
  const std::string path = (dir_ / "f.bin").string();
  const std::string bytes("a\0b\nc", 5);
  ASSERT_TRUE(WriteFileAtomic(path, bytes).ok());
  absl::StatusOr<std::string> read = ReadFile(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, bytes);
  ASSERT_TRUE(WriteFileAtomic(path, "new").ok());
  EXPECT_EQ(*ReadFile(path), "new");
  EXPECT_EQ(Names(), std::set<std::string>{"f.bin"});
}

TEST_F(FileUtilTest, MissingFileIsNotFoundNamingThePath) {
  const std::string path = (dir_ / "absent").string();
  absl::StatusOr<std::string> read = ReadFile(path);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(read.status().message().find(path), std::string::npos);
}

TEST_F(FileUtilTest, FailedWriteLeavesNothingAndKeepsTheOldFile) {
  const std::string path = (dir_ / "keep").string();
  ASSERT_TRUE(WriteFileAtomic(path, "old").ok());
  // A folder in the way of the rename: the write fails, the old file and
  // the folder stay, no temporary file is left.
  const std::string blocked = (dir_ / "sub").string();
  std::filesystem::create_directories(dir_ / "sub" / "x");
  absl::Status st = WriteFileAtomic(blocked, "data");
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find(blocked), std::string::npos);
  EXPECT_EQ(Names(), (std::set<std::string>{"keep", "sub"}));
  EXPECT_EQ(*ReadFile(path), "old");
  // Into a folder that does not exist.
  EXPECT_FALSE(WriteFileAtomic((dir_ / "no" / "f").string(), "x").ok());
}

TEST_F(FileUtilTest, TempNamesAreUnique) {
  const std::string a = TempPathFor("/x/f");
  const std::string b = TempPathFor("/x/f");
  EXPECT_NE(a, b);
  EXPECT_EQ(a.rfind("/x/f.tmp.", 0), 0u);
}

}  // namespace
}  // namespace autoq
