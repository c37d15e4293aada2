// `autoq run` end to end on the trained built-in model with a small job:
// the exports and reports exist and reproduce the reported numbers, a rerun
// computes nothing, a run killed with SIGKILL resumes and gives the same
// front as an uninterrupted one, and bad input fails cleanly without losing
// stored results.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "tests/testing.h"

namespace autoq {
namespace {

using testing::CommandResult;
using testing::Fixture;
using testing::RunCommand;
using testing::TempDir;

// A job small enough for a test: 8 individuals, `generations` generations,
// a few hundred images per fine-tune.
std::string SmallJob(const std::string& dir, const std::string& model,
                     int generations, const std::string& database = "") {
  return absl::StrCat(R"({
    "name": "e2e",
    "model": {"path": ")",
                      model, R"("},
    "dataset": {"spec": "fashion-mnist", "val_size": 1000, "val_subset": 400,
                "test_subset": 1000, "seed": 1},
    "scheme": {"granularity": "per-channel"},
    "search": {"population": 8, "generations": )",
                      generations, R"(,
               "seed": 5, "min_bits": 3, "max_bits": 8,
               "qat": {"epochs": 1, "train_subset": 384}},
    "final_front": {"recipe": {"epochs": 1, "act_quant_delay": 0,
                               "bn_freeze_epoch": -1, "train_subset": 384},
                    "compare_uniform": true},
    "workers": {"threads": 2},
    "output": {"dir": ")",
                      dir, R"(", "database": ")",
                      database.empty() ? dir + "/autoq.db" : database,
                      R"("}})");
}

std::string WriteJob(const TempDir& tmp, const std::string& name,
                     const std::string& json) {
  const std::string path = tmp.File(name);
  testing::WriteFile(path, json);
  return path;
}

CommandResult RunJob(const std::string& config) {
  return RunCommand(absl::StrCat(AUTOQ_BINARY, " run ", config));
}

// Computed evaluations of a whole run: the summary line ("evaluations: N
// computed, M cached (cache hit rate ...") comes last; the per-generation
// lines carry running counts of the search alone.
int64_t Computed(const std::string& output) {
  std::regex re("evaluations: (\\d+) computed, (\\d+) cached \\(cache hit");
  int64_t last = -1;
  for (auto it = std::sregex_iterator(output.begin(), output.end(), re);
       it != std::sregex_iterator(); ++it) {
    last = std::stoll((*it)[1]);
  }
  return last;
}

nlohmann::json ReadJson(const std::string& path) {
  return nlohmann::json::parse(testing::ReadFile(path));
}

class RunE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = Fixture("builtin_fashion_mnist.pt");
    AUTOQ_REQUIRE_FIXTURE(model_);
  }
  std::string model_;
  TempDir tmp_;
};

TEST_F(RunE2eTest, RunsExportsAndRerunComputesNothingThenResumesAfterKill) {
  // 1. An uninterrupted run.
  const std::string dir_a = tmp_.File("a");
  const std::string job_a =
      WriteJob(tmp_, "a.json", SmallJob(dir_a, model_, 2));
  CommandResult a = RunJob(job_a);
  ASSERT_EQ(a.exit_code, 0) << a.output;
  EXPECT_NE(a.output.find("== generation 2/2"), std::string::npos) << a.output;
  EXPECT_NE(a.output.find("hypervolume"), std::string::npos);
  EXPECT_GT(Computed(a.output), 0) << a.output;
  for (const char* f : {"front.json", "front.csv", "front.svg"}) {
    EXPECT_TRUE(std::filesystem::exists(dir_a + "/" + f)) << f;
  }
  nlohmann::json front = ReadJson(dir_a + "/front.json");
  ASSERT_FALSE(front["front"].empty()) << front.dump(2);
  ASSERT_EQ(front["uniform"].size(), 6u);  // 3..8 bits
  // The post-training baselines, measured on the same test images: float16
  // at float accuracy, int8 PTQ within a few points of it.
  ASSERT_EQ(front["baselines"].size(), 3u) << front.dump(2);
  const double float_test = front["float"]["test_top1"].get<double>();
  EXPECT_EQ(front["baselines"][0]["label"], "float16");
  EXPECT_NEAR(front["baselines"][0]["test_top1"].get<double>(), float_test,
              0.2);
  for (int i : {1, 2}) {
    EXPECT_GT(front["baselines"][i]["test_top1"].get<double>(),
              float_test - 3.0)
        << front["baselines"][i].dump();
  }
  EXPECT_NE(a.output.find("int8-ptq-per-channel"), std::string::npos)
      << a.output;
  for (const auto& p : front["front"]) {
    const std::string base =
        dir_a + "/" + p["torchscript_file"].get<std::string>();
    EXPECT_TRUE(std::filesystem::exists(base)) << base;
    // The ONNX QDQ model and its encodings sit beside it.
    ASSERT_TRUE(p.contains("onnx_file")) << p.dump(2);
    ASSERT_FALSE(p["onnx_file"].get<std::string>().empty())
        << testing::ReadFile(dir_a + "/" +
                             p.value("onnx_error_file", std::string("?")));
    for (const char* key : {"onnx_file", "encodings_file"}) {
      const std::string f = dir_a + "/" + p[key].get<std::string>();
      EXPECT_GT(std::filesystem::file_size(f), 0u) << f;
    }
    // The packed payload is exactly the reported size.
    const std::string packed =
        dir_a + "/" + p["packed_file"].get<std::string>();
    EXPECT_EQ(static_cast<int64_t>(std::filesystem::file_size(packed)),
              p["size_bytes"].get<int64_t>());
  }
  // The exported TorchScript, loaded alone, reproduces the reported test
  // accuracy (same 1000 test images).
  const auto& p0 = front["front"][0];
  CommandResult eval = RunCommand(absl::StrCat(
      AUTOQ_BINARY, " eval --quiet --json --epochs 0 --bits 8 --model ", dir_a,
      "/", p0["torchscript_file"].get<std::string>(),
      " --data fashion-mnist --val-size 1000 --val-subset 100 "
      "--train-subset 128 --test-subset 1000 --seed 1 --threads 2"));
  if (eval.exit_code == 0) {
    nlohmann::json e = nlohmann::json::parse(eval.output);
    // eval's float numbers are those of the model file as it is.
    EXPECT_NEAR(e["float_test_top1"].get<double>(),
                p0["test_top1"].get<double>(), 0.11)
        << eval.output;
  } else {
    ADD_FAILURE() << eval.output;
  }

  // 2. The same job again: everything from the cache.
  CommandResult again = RunJob(job_a);
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_EQ(Computed(again.output), 0) << again.output;
  EXPECT_NE(again.output.find("cache hit rate 100.0%"), std::string::npos)
      << again.output;
  EXPECT_EQ(ReadJson(dir_a + "/front.json")["front"], front["front"]);

  // 3. The same job in a fresh folder, killed during generation 2, then
  // resumed: same front, and no finished evaluation computed twice.
  const std::string dir_b = tmp_.File("b");
  const std::string job_b =
      WriteJob(tmp_, "b.json", SmallJob(dir_b, model_, 2));
  const std::string log = tmp_.File("b.log");
  CommandResult started = RunCommand(absl::StrCat(
      AUTOQ_BINARY, " run ", job_b, " > ", log, " 2>&1 & echo $!"));
  const pid_t pid = static_cast<pid_t>(std::stol(started.output));
  bool reached = false;
  for (int i = 0; i < 600 && !reached; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    const std::string text = testing::ReadFile(log);
    // Generation 1 is checkpointed; kill once generation 2 is under way.
    reached = text.find("== generation 1/2") != std::string::npos &&
              text.find("[candidate 2/") != std::string::npos &&
              text.rfind("[candidate 2/") > text.find("== generation 1/2");
  }
  ASSERT_TRUE(reached) << testing::ReadFile(log);
  kill(pid, SIGKILL);
  RunCommand(
      absl::StrCat("while kill -0 ", pid, " 2>/dev/null; do sleep 0.1; done"));
  const std::string killed_log = testing::ReadFile(log);
  CommandResult resumed = RunJob(job_b);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resuming the search after generation 1"),
            std::string::npos)
      << resumed.output;
  nlohmann::json front_b = ReadJson(dir_b + "/front.json");
  ASSERT_EQ(front_b["front"].size(), front["front"].size());
  for (size_t i = 0; i < front["front"].size(); ++i) {
    EXPECT_EQ(front_b["front"][i]["wbits"], front["front"][i]["wbits"]);
    EXPECT_EQ(front_b["front"][i]["test_top1"], front["front"][i]["test_top1"]);
  }
  // Evaluations computed before the kill and after it add up to those of
  // the uninterrupted run: nothing finished was recomputed.
  const std::regex line("\\[(candidate|final) \\d+/\\d+\\] (?!cached)");
  auto count = [&](const std::string& s) {
    return std::distance(std::sregex_iterator(s.begin(), s.end(), line),
                         std::sregex_iterator());
  };
  EXPECT_EQ(count(killed_log) + count(resumed.output), Computed(a.output))
      << killed_log << "\n----\n"
      << resumed.output;
}

// Expects exit code 1 and an error line containing `needle`.
void ExpectError(const CommandResult& r, const std::string& needle) {
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("error: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(needle), std::string::npos) << r.output;
}

TEST_F(RunE2eTest, BadInputFailsCleanlyAndKeepsStoredResults) {
  // A good database with finished results.
  const std::string dir = tmp_.File("good");
  const std::string db = dir + "/autoq.db";
  CommandResult good =
      RunJob(WriteJob(tmp_, "good.json", SmallJob(dir, model_, 0)));
  ASSERT_EQ(good.exit_code, 0) << good.output;
  const int64_t computed = Computed(good.output);
  ASSERT_GT(computed, 0);

  auto job = [&](const std::string& name, const std::string& json) {
    return RunJob(WriteJob(tmp_, name, json));
  };
  std::string base = SmallJob(dir, model_, 0);
  auto replace = [&](std::string s, const std::string& from,
                     const std::string& to) {
    size_t at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return at == std::string::npos ? s : s.replace(at, from.size(), to);
  };
  ExpectError(job("unknown.json", replace(base, "\"name\"", "\"nmae\"")),
              "nmae");
  ExpectError(
      job("pop3.json", replace(base, "\"population\": 8", "\"population\": 3")),
      "search.population: 3");
  ExpectError(job("negative.json", replace(base, "\"train_subset\": 384}}",
                                           "\"train_subset\": -384}}")),
              "search.qat.train_subset");
  ExpectError(
      job("bits.json", replace(base, "\"max_bits\": 8", "\"max_bits\": 9")),
      "search.max_bits: 9");
  ExpectError(job("model.json", replace(base, model_, tmp_.File("missing.pt"))),
              "missing.pt");
  ExpectError(job("data.json",
                  replace(base, "\"spec\": \"fashion-mnist\"",
                          "\"spec\": \"idx:" + tmp_.File("nodata") + "\"")),
              "nodata");
  testing::WriteFile(tmp_.File("bad.pt"), "not a model");
  ExpectError(job("badmodel.json", replace(base, model_, tmp_.File("bad.pt"))),
              "bad.pt");
  // A corrupt database: a clear error and the file left as it was.
  const std::string corrupt = tmp_.File("corrupt.db");
  testing::WriteFile(corrupt, std::string(8192, '\x5a'));
  ExpectError(job("corrupt.json", SmallJob(tmp_.File("c"), model_, 0, corrupt)),
              "corrupt.db");
  EXPECT_EQ(testing::ReadFile(corrupt), std::string(8192, '\x5a'));

  // Nothing stored was lost: the good job reruns from the cache alone.
  CommandResult rerun = RunJob(WriteJob(tmp_, "good2.json", base));
  ASSERT_EQ(rerun.exit_code, 0) << rerun.output;
  EXPECT_EQ(Computed(rerun.output), 0) << rerun.output;
}

#ifdef AUTOQ_MAKE_IMAGE_FOLDER
// The README's image-folder example, small: PNG class folders and a
// TorchScript model in, model.onnx files out.
TEST_F(RunE2eTest, ImageFolderToOnnx) {
  const std::string folder = tmp_.File("images");
  CommandResult made = RunCommand(absl::StrCat(
      AUTOQ_MAKE_IMAGE_FOLDER, " --out ", folder, " --train 60 --test 20"));
  ASSERT_EQ(made.exit_code, 0) << made.output;
  const std::string dir = tmp_.File("folder_run");
  const std::string job = WriteJob(tmp_, "folder.json",
                                   absl::StrCat(R"({
    "name": "folder",
    "model": {"path": ")",
                                                model_, R"("},
    "dataset": {"spec": "folder:)",
                                                folder, R"(;size=28;channels=1",
                "val_size": 100, "seed": 1},
    "search": {"population": 8, "generations": 1, "seed": 5, "min_bits": 4,
               "qat": {"epochs": 1, "train_subset": 128}},
    "final_front": {"recipe": {"epochs": 1, "train_subset": 128},
                    "compare_uniform": false},
    "workers": {"threads": 2},
    "output": {"dir": ")",
                                                dir, R"("}})"));
  CommandResult run = RunJob(job);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  // The user's model was not trained by AutoQ on this split: warned.
  EXPECT_NE(run.output.find("carved from the training files"),
            std::string::npos)
      << run.output;
  nlohmann::json front = ReadJson(dir + "/front.json");
  ASSERT_FALSE(front["front"].empty()) << front.dump(2);
  for (const auto& p : front["front"]) {
    const std::string onnx = dir + "/" + p["onnx_file"].get<std::string>();
    EXPECT_GT(std::filesystem::file_size(onnx), 0u) << onnx;
    // Real images of the classes the model knows: far above chance.
    EXPECT_GT(p["test_top1"].get<double>(), 60.0) << p.dump();
  }
}
#endif

}  // namespace
}  // namespace autoq
