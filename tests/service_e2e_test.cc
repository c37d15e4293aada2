// The service end to end on loopback, with real processes: autoq-server,
// autoq-worker and the autoq client. A small job over gRPC with 2 workers
// gives the same front as `autoq run`; a worker killed mid-task loses its
// lease to another worker; a server killed mid-job restarts and finishes
// the job, and every distinct chromosome was computed exactly once.
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <regex>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "search/result_store.h"
#include "tests/testing.h"

namespace autoq {
namespace {

using testing::CommandResult;
using testing::Fixture;
using testing::RunCommand;
using testing::TempDir;

// Small: one generation of 8, a few hundred images per fine-tune, one
// thread per worker so every process computes bit-identical results.
std::string SmallJob(const std::string& model, const std::string& dir) {
  return absl::StrCat(R"({
    "name": "service-e2e",
    "model": {"path": ")", model, R"("},
    "dataset": {"spec": "fashion-mnist", "val_size": 1000, "val_subset": 300,
                "test_subset": 500, "seed": 1},
    "scheme": {"granularity": "per-channel"},
    "search": {"population": 8, "generations": 1, "seed": 11,
               "min_bits": 3, "max_bits": 8,
               "qat": {"epochs": 1, "train_subset": 256}},
    "final_front": {"recipe": {"epochs": 1, "act_quant_delay": 0,
                               "bn_freeze_epoch": -1, "train_subset": 256},
                    "compare_uniform": false},
    "workers": {"threads": 1},
    "output": {"dir": ")", dir, R"("}})");
}

// A background process whose output goes to a log file.
class Process {
 public:
  Process(const std::string& command, const std::string& log) : log_(log) {
    pid_ = fork();
    if (pid_ == 0) {
      const std::string line = absl::StrCat("exec ", command, " >>", log, " 2>&1");
      execl("/bin/sh", "sh", "-c", line.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  ~Process() {
    if (pid_ > 0) Signal(SIGKILL);
  }
  // Sends `sig` and reaps the process; returns its exit status (-1 when
  // killed by a signal).
  int Signal(int sig) {
    if (pid_ <= 0) return -1;
    kill(pid_, sig);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  std::string Log() const { return testing::ReadFile(log_); }

 private:
  pid_t pid_ = -1;
  std::string log_;
};

// Waits up to `seconds` for `done`.
bool WaitFor(const std::function<bool()>& done, int seconds) {
  for (int i = 0; i < seconds * 10; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return done();
}

// Tasks a worker finished computing (accepted, duplicate or refused alike):
// its task lines that carry a result.
int Computed(const std::string& worker_log) {
  static const std::regex line(R"(task \d+ \(job [^)]*\) [^\n]*: val \d)");
  return static_cast<int>(std::distance(
      std::sregex_iterator(worker_log.begin(), worker_log.end(), line),
      std::sregex_iterator()));
}

class ServiceE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = Fixture("builtin_fashion_mnist.pt");
    AUTOQ_REQUIRE_FIXTURE(model_);
    testing::WriteFile(tmp_.File("clients"), "alice alice-token-0123456789\n");
    testing::WriteFile(tmp_.File("workers"), "node worker-token-0123456789\n");
    testing::WriteFile(tmp_.File("client.token"), "alice-token-0123456789\n");
    testing::WriteFile(tmp_.File("worker.token"), "worker-token-0123456789\n");
  }

  std::unique_ptr<Process> StartServer(int port) {
    return std::make_unique<Process>(
        absl::StrCat(AUTOQ_SERVER_BINARY, " --listen 127.0.0.1:", port,
                     " --db ", tmp_.File("server.db"), " --client-tokens ",
                     tmp_.File("clients"), " --worker-tokens ",
                     tmp_.File("workers"),
                     " --lease-seconds 3 --heartbeat-seconds 1"),
        tmp_.File("server.log"));
  }

  std::unique_ptr<Process> StartWorker(const std::string& name) {
    return std::make_unique<Process>(
        absl::StrCat(AUTOQ_WORKER_BINARY, " --server 127.0.0.1:", port_,
                     " --device cpu --threads 1 --name ", name,
                     " --token-file ", tmp_.File("worker.token"),
                     " --cache-dir ", tmp_.File("cache-" + name)),
        tmp_.File(name + ".log"));
  }

  CommandResult Client(const std::string& args) {
    return RunCommand(absl::StrCat(AUTOQ_BINARY, " ", args, " --server 127.0.0.1:",
                                   port_, " --token-file ",
                                   tmp_.File("client.token")));
  }

  std::string model_;
  TempDir tmp_;
  int port_ = 0;
};

TEST_F(ServiceE2eTest, TwoWorkersMatchRunAndSurviveKilledWorkerAndServer) {
  // The reference: the one-process mode.
  const std::string ref_dir = tmp_.File("ref");
  testing::WriteFile(tmp_.File("ref.json"), SmallJob(model_, ref_dir));
  CommandResult ref = RunCommand(
      absl::StrCat(AUTOQ_BINARY, " run ", tmp_.File("ref.json"), " --quiet"));
  ASSERT_EQ(ref.exit_code, 0) << ref.output;

  // The service, with a fresh database: everything is computed by workers.
  auto server = StartServer(0);
  ASSERT_TRUE(WaitFor([&] { return server->Log().find("listening on port") !=
                                   std::string::npos; },
                      60))
      << server->Log();
  std::smatch m;
  const std::string started = server->Log();
  ASSERT_TRUE(std::regex_search(started, m, std::regex(R"(listening on port (\d+))")));
  port_ = std::stoi(m[1]);

  auto w1 = StartWorker("w1");
  testing::WriteFile(tmp_.File("svc.json"), SmallJob(model_, tmp_.File("unused")));
  CommandResult submitted = Client(absl::StrCat("submit ", tmp_.File("svc.json")));
  ASSERT_EQ(submitted.exit_code, 0) << submitted.output;
  ASSERT_TRUE(std::regex_search(submitted.output, m, std::regex(R"((j-[0-9a-f]+))")))
      << submitted.output;
  const std::string job = m[1];

  // Kill w1 while it works; its lease expires and another worker takes the
  // task. w1 is alone until then: after three tasks (the float and
  // sensitivity tasks, one of the first generation's eight) the rest of
  // that batch is waiting, and w1 leases the next one the moment it
  // reports (a task trains for seconds; 300 ms is well inside it).
  ASSERT_TRUE(WaitFor([&] { return Computed(w1->Log()) >= 3; }, 300))
      << w1->Log();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  w1->Signal(SIGKILL);
  auto w2 = StartWorker("w2");
  auto w3 = StartWorker("w3");
  ASSERT_TRUE(WaitFor([&] { return server->Log().find("expired") !=
                                   std::string::npos; },
                      60))
      << server->Log();

  // Kill the server mid-job and start it again on the same port.
  ASSERT_TRUE(WaitFor([&] {
    return Computed(w1->Log()) + Computed(w2->Log()) + Computed(w3->Log()) >= 12;
  }, 300));
  server->Signal(SIGKILL);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  server = StartServer(port_);
  auto listening = [&] {
    const std::string log = server->Log();
    return log.find("listening on port") != log.rfind("listening on port");
  };
  ASSERT_TRUE(WaitFor(listening, 60)) << server->Log();

  CommandResult watched = Client(absl::StrCat("watch ", job));
  ASSERT_EQ(watched.exit_code, 0) << watched.output << "\n" << server->Log();
  EXPECT_NE(watched.output.find("resumed after a server restart"),
            std::string::npos);
  CommandResult downloaded =
      Client(absl::StrCat("download ", job, " -o ", tmp_.File("svc")));
  ASSERT_EQ(downloaded.exit_code, 0) << downloaded.output;

  // The same front, point for point (bits, sizes, accuracies, file names).
  EXPECT_EQ(testing::ReadFile(tmp_.File("svc/front.csv")),
            testing::ReadFile(ref_dir + "/front.csv"));
  EXPECT_TRUE(std::filesystem::exists(tmp_.File("svc/front/front-1/model.pt")));

  // Clean exits on SIGTERM.
  EXPECT_EQ(w2->Signal(SIGTERM), 0);
  EXPECT_EQ(w3->Signal(SIGTERM), 0);
  EXPECT_EQ(server->Signal(SIGTERM), 0) << server->Log();
  EXPECT_NE(server->Log().find("autoq-server: stopped"), std::string::npos);

  // Every distinct chromosome computed once: results stored == tasks the
  // workers computed, killed worker included.
  const std::string logs = w1->Log() + w2->Log() + w3->Log();
  auto store = search::ResultStore::Open(tmp_.File("server.db"));
  ASSERT_TRUE(store.ok()) << store.status();
  const int64_t results = *(*store)->CountResults();
  EXPECT_EQ(Computed(logs), results) << logs;
  EXPECT_EQ(logs.find("[already complete]"), std::string::npos) << logs;
  // Refused by the server (token, outcome); "Connection refused" while the
  // server restarts is the retry path working, not a refusal.
  EXPECT_EQ(logs.find("the server refused"), std::string::npos) << logs;
}

}  // namespace
}  // namespace autoq
