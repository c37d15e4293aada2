// Shared helpers of AutoQ's tests: where generated fixtures live, running
// the autoq binary, temporary directories. Header-only so every test target
// can use it without another library.
#ifndef AUTOQ_TESTS_TESTING_H_
#define AUTOQ_TESTS_TESTING_H_

#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

namespace autoq::testing {

// Directory of generated fixtures (set by CTest; see tests/CMakeLists.txt).
inline std::string FixtureDir() {
  const char* dir = std::getenv("AUTOQ_FIXTURES");
  return dir != nullptr ? dir : "build/fixtures";
}

inline std::string Fixture(const std::string& name) {
  return FixtureDir() + "/" + name;
}

// Skips the current test when a fixture is missing (run through CTest, which
// generates them first, to get them).
#define AUTOQ_REQUIRE_FIXTURE(path)                                  \
  do {                                                               \
    if (!std::filesystem::exists(path)) {                            \
      GTEST_SKIP() << "fixture " << (path) << " missing: run ctest"; \
    }                                                                \
  } while (0)

// A fresh directory under /tmp, removed with the object.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "autoq-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A small tmpfs mounted on a fresh directory, for storage faults (a full
// disk, a read-only filesystem) with the kernel's real errors. Mounting
// needs root (CAP_SYS_ADMIN); where it is refused, mounted() is false and
// why() says why, and the test uses an injected fault or skips.
class SmallFilesystem {
 public:
  explicit SmallFilesystem(size_t bytes) {
    const std::string options = "size=" + std::to_string(bytes);
    if (mount("tmpfs", dir_.path().c_str(), "tmpfs", 0, options.c_str()) ==
        0) {
      mounted_ = true;
    } else {
      why_ = std::string("cannot mount a tmpfs: ") + std::strerror(errno);
    }
  }
  ~SmallFilesystem() {
    if (mounted_) umount2(dir_.path().c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  const std::string& why() const { return why_; }
  std::string File(const std::string& name) const { return dir_.File(name); }

  // Fills the rest of the space with a file; true when the disk is full.
  bool Fill() {
    std::FILE* f = std::fopen(File("filler").c_str(), "wb");
    if (f == nullptr) return false;
    std::string block(4096, 'x');
    while (std::fwrite(block.data(), 1, block.size(), f) == block.size()) {
    }
    const bool full = errno == ENOSPC;
    std::fclose(f);
    return full;
  }
  // Frees what Fill() took.
  void Free() { std::remove(File("filler").c_str()); }

  bool RemountReadOnly() {
    return mount("tmpfs", dir_.path().c_str(), "tmpfs",
                 MS_REMOUNT | MS_RDONLY, nullptr) == 0;
  }

 private:
  TempDir dir_;
  bool mounted_ = false;
  std::string why_;
};

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs a shell command line, capturing its output.
inline CommandResult RunCommand(const std::string& command) {
  CommandResult r;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) r.output.append(buf.data(), n);
  int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

inline void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace autoq::testing

#endif  // AUTOQ_TESTS_TESTING_H_
