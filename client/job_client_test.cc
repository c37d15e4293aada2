// JobClient and the `autoq` service commands against an in-process fake
// JobService: a real gRPC server on 127.0.0.1 with a small scripted
// implementation standing in for autoq-server.
#include "client/job_client.h"

#include <gmock/gmock.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/message_differencer.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/rpc_util.h"
#include "common/sha256.h"
#include "tests/testing.h"

namespace autoq::client {
namespace {

using autoq::testing::ReadFile;
using autoq::testing::RunCommand;
using autoq::testing::TempDir;
using autoq::testing::WriteFile;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kToken[] = "s3cret-token";

std::string Sha256Hex(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  std::string hex;
  for (unsigned int i = 0; i < len; ++i) {
    absl::StrAppend(&hex, absl::Hex(md[i], absl::kZeroPad2));
  }
  return hex;
}

std::string RandomBytes(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng() & 0xff);
  return s;
}

FrontPointInfo Point(const std::string& label, std::vector<int> wbits,
                     int64_t size, double search_val, double test) {
  FrontPointInfo p;
  p.set_label(label);
  for (int b : wbits) {
    p.add_wbits(b);
    p.add_abits(8);
  }
  p.set_size_bytes(size);
  p.set_search_val_top1(search_val);
  p.set_val_top1(search_val);
  p.set_test_top1(test);
  return p;
}

JobStatus Status(const std::string& id, JobState state) {
  JobStatus s;
  s.set_job_id(id);
  s.set_name("tiny");
  s.set_state(state);
  s.set_phase(state == JOB_FINISHED ? "done" : "search");
  s.set_generation(state == JOB_FINISHED ? 2 : 1);
  s.set_generations(2);
  s.set_computed(14);
  s.set_cached(3);
  s.set_submitted_unix_ms(1700000000000);
  s.set_model_bytes(4096);
  return s;
}

// The events of a small job, seq 1..8, ending in `end`.
std::vector<JobEvent> Script(const std::string& id, JobState end) {
  std::vector<JobEvent> events(8);
  *events[0].mutable_accepted() = Status(id, JOB_QUEUED);
  WorkerChange* w = events[1].mutable_worker();
  w->set_worker_id("w-1");
  w->set_name("node7");
  w->add_devices("cuda:0");
  w->set_joined(true);
  EvaluationDone* f = events[2].mutable_evaluation();
  f->set_stage(STAGE_FLOAT);
  f->mutable_point()->set_size_bytes(40000);
  f->mutable_point()->set_val_top1(91.5);
  f->mutable_point()->set_test_top1(90.8);
  EvaluationDone* e = events[3].mutable_evaluation();
  e->set_stage(STAGE_SEARCH);
  *e->mutable_point() = Point("", {8, 4, 4, 8}, 7000, 90.25, -1);
  e->set_worker("node7");
  e->set_device("cuda:0");
  e->set_seconds(3.5);
  e->set_done(1);
  e->set_total(8);
  GenerationDone* g = events[4].mutable_generation();
  g->set_generation(1);
  g->set_generations(2);
  *g->add_front() = Point("", {8, 4, 4, 8}, 7000, 90.25, -1);
  *g->add_front() = Point("", {4, 2, 2, 4}, 3500, 85.5, -1);
  g->set_hypervolume(0.8125);
  g->set_computed(8);
  g->set_cached(0);
  events[5].set_log("final fine-tune: 2 front points + 7 uniform");
  FinalFront* ff = events[6].mutable_final_front();
  *ff->add_front() = Point("front-1", {8, 4, 4, 8}, 7000, 90.25, 90.1);
  *ff->add_uniform() = Point("uniform-8", {8, 8, 8, 8}, 10000, -1, 90.5);
  *ff->add_baselines() =
      Point("int8-ptq-per-channel", {8, 8, 8, 8}, 10000, -1, 89.35);
  ff->set_float_test_top1(90.8);
  ff->set_float_size_bytes(40000);
  ff->set_front_hypervolume(0.8311);
  ff->set_uniform_hypervolume(0.7702);
  ff->add_beating_points("front-1");
  JobStatus ended = Status(id, end);
  if (end == JOB_FAILED) ended.set_error("worker ran out of memory");
  *events[7].mutable_ended() = ended;
  for (size_t i = 0; i < events.size(); ++i) {
    events[i].set_seq(static_cast<int64_t>(i + 1));
    events[i].set_unix_ms(1700000000000 + static_cast<int64_t>(i));
  }
  return events;
}

// How the fake ends its first WatchJob stream.
enum class Drop { kNone, kUnavailable, kCloseEarly, kReplayAll };

const char* DropName(Drop drop) {
  switch (drop) {
    case Drop::kUnavailable:
      return "Unavailable";
    case Drop::kCloseEarly:
      return "ClosedEarly";
    case Drop::kReplayAll:
      return "ReplayedFromTheStart";
    default:
      return "None";
  }
}

void PrintTo(Drop drop, std::ostream* os) { *os << DropName(drop); }

class FakeJobService final : public JobService::Service {
 public:
  // --- Script (set before the calls).
  std::map<std::string, std::vector<JobEvent>> scripts;  // by job id
  Drop drop = Drop::kNone;  // how the first stream of every job ends
  int64_t drop_after_seq = 4;
  // The first streams of a job send events up to drop_after_seq, then stay
  // open and silent until the client's deadline.
  int quiet_streams = 0;
  std::map<std::string, std::string> artifacts;  // name -> bytes
  // Names GetResults lists for a job but never serves.
  std::map<std::string, std::vector<std::string>> extra_listed;
  bool corrupt_sha = false;
  bool oversend = false;
  bool reject_upload = false;
  std::map<std::string, JobState> results_state;  // absent: FINISHED

  // --- Record.
  std::mutex mu;
  std::vector<std::string> authorization;  // per call
  std::vector<std::chrono::system_clock::time_point> deadlines;
  std::vector<std::chrono::system_clock::time_point> call_times;
  std::map<std::string, std::vector<int64_t>> watch_after_seq;  // by job
  std::vector<std::string> uploaded_chunks;
  bool spec_first = false;
  JobSpec spec;
  std::map<std::string, int> downloads;  // by job
  std::vector<std::string> cancelled;

  grpc::Status SubmitJob(grpc::ServerContext* context,
                         grpc::ServerReader<SubmitJobRequest>* reader,
                         SubmitJobResponse* response) override {
    if (grpc::Status s = Record(context); !s.ok()) return s;
    SubmitJobRequest request;
    bool first = true;
    while (reader->Read(&request)) {
      std::lock_guard<std::mutex> lock(mu);
      if (first) {
        spec_first = request.has_spec();
        spec = request.spec();
        first = false;
        if (reject_upload) {
          return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                              "model larger than the limit of 1 MiB");
        }
        continue;
      }
      if (!request.has_model_chunk() && request.has_spec()) {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "two specs");
      }
      uploaded_chunks.push_back(request.model_chunk());
    }
    JobStatus* s = response->mutable_status();
    *s = Status("job-42", JOB_QUEUED);
    s->set_name(spec.name());
    response->add_warnings("population rounded up");
    return grpc::Status::OK;
  }

  grpc::Status GetJob(grpc::ServerContext* context,
                      const GetJobRequest* request,
                      JobStatus* response) override {
    if (grpc::Status s = Record(context); !s.ok()) return s;
    if (request->job_id() != "job-42") {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such job");
    }
    *response = Status("job-42", JOB_RUNNING);
    return grpc::Status::OK;
  }

  grpc::Status ListJobs(grpc::ServerContext* context, const ListJobsRequest*,
                        ListJobsResponse* response) override {
    if (grpc::Status s = Record(context); !s.ok()) return s;
    *response->add_jobs() = Status("job-42", JOB_RUNNING);
    *response->add_jobs() = Status("job-7", JOB_FINISHED);
    return grpc::Status::OK;
  }

  grpc::Status CancelJob(grpc::ServerContext* context,
                         const CancelJobRequest* request,
                         JobStatus* response) override {
    if (grpc::Status s = Record(context); !s.ok()) return s;
    std::lock_guard<std::mutex> lock(mu);
    cancelled.push_back(request->job_id());
    *response = Status(request->job_id(), JOB_CANCELLED);
    return grpc::Status::OK;
  }

  grpc::Status GetResults(grpc::ServerContext* context,
                          const GetJobRequest* request,
                          JobResults* response) override {
    if (grpc::Status s = Record(context); !s.ok()) return s;
    std::lock_guard<std::mutex> lock(mu);
    const JobState state = results_state.count(request->job_id())
                               ? results_state[request->job_id()]
                               : JOB_FINISHED;
    *response->mutable_status() = Status(request->job_id(), state);
    if (state != JOB_FINISHED) return grpc::Status::OK;
    *response->mutable_final_front() =
        Script(request->job_id(), JOB_FINISHED)[6].final_front();
    for (const auto& [name, bytes] : artifacts) {
      ArtifactInfo* a = response->add_artifacts();
      a->set_name(name);
      a->set_size_bytes(static_cast<int64_t>(bytes.size()));
      a->set_sha256(Sha256Hex(bytes));
    }
    for (const std::string& name : extra_listed[request->job_id()]) {
      ArtifactInfo* a = response->add_artifacts();
      a->set_name(name);
      a->set_size_bytes(3);
    }
    return grpc::Status::OK;
  }

  grpc::Status WatchJob(grpc::ServerContext* context,
                        const WatchJobRequest* request,
                        grpc::ServerWriter<JobEvents>* writer) override {
    if (grpc::Status s = Record(context); !s.ok()) return s;
    size_t call;
    std::vector<JobEvent> events;
    {
      std::lock_guard<std::mutex> lock(mu);
      std::vector<int64_t>& calls = watch_after_seq[request->job_id()];
      call = calls.size();
      calls.push_back(request->after_seq());
      events = scripts[request->job_id()];
    }
    // Events go out two per message, as a busy server batches them.
    JobEvents batch;
    auto send = [&](const JobEvent* e) {
      if (e != nullptr) *batch.add_events() = *e;
      if (batch.events_size() == 0 || (e != nullptr && batch.events_size() < 2))
        return true;
      const bool ok = writer->Write(batch);
      batch.Clear();
      return ok;
    };
    if (static_cast<int>(call) < quiet_streams) {
      for (const JobEvent& e : events) {
        if (e.seq() > request->after_seq() && e.seq() <= drop_after_seq) {
          send(&e);
        }
      }
      send(nullptr);
      while (!context->IsCancelled()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      return grpc::Status::OK;
    }
    const bool first = call == 0;
    const int64_t from =
        drop == Drop::kReplayAll && !first ? 0 : request->after_seq();
    for (const JobEvent& e : events) {
      if (e.seq() <= from) continue;
      if (first && drop != Drop::kNone && e.seq() > drop_after_seq) {
        send(nullptr);
        return drop == Drop::kUnavailable
                   ? grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                  "connection reset")
                   : grpc::Status::OK;
      }
      if (!send(&e)) break;
    }
    send(nullptr);
    return grpc::Status::OK;
  }

  grpc::Status DownloadArtifact(
      grpc::ServerContext* context, const DownloadArtifactRequest* request,
      grpc::ServerWriter<DataChunk>* writer) override {
    if (grpc::Status s = Record(context); !s.ok()) return s;
    {
      std::lock_guard<std::mutex> lock(mu);
      ++downloads[request->job_id()];
    }
    auto it = artifacts.find(request->name());
    if (it == artifacts.end()) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such artifact");
    }
    const std::string& bytes = it->second;
    const size_t chunk = autoq::kChunkBytes;
    for (size_t off = 0; off == 0 || off < bytes.size(); off += chunk) {
      DataChunk c;
      c.set_data(bytes.substr(off, chunk));
      if (off == 0) {
        c.set_total_bytes(static_cast<int64_t>(bytes.size()) -
                          (oversend ? 1 : 0));
        c.set_sha256(corrupt_sha ? Sha256Hex(bytes + "x") : Sha256Hex(bytes));
      }
      if (!writer->Write(c)) break;
    }
    return grpc::Status::OK;
  }

 private:
  grpc::Status Record(grpc::ServerContext* context) {
    std::string auth;
    for (const auto& [key, value] : context->client_metadata()) {
      if (key == "authorization") auth.assign(value.data(), value.size());
    }
    std::lock_guard<std::mutex> lock(mu);
    authorization.push_back(auth);
    deadlines.push_back(context->deadline());
    call_times.push_back(std::chrono::system_clock::now());
    if (auth != absl::StrCat("Bearer ", kToken)) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                          "unknown client token");
    }
    return grpc::Status::OK;
  }
};

// A port on 127.0.0.1 that nothing listens on.
int ClosedPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

class JobClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port_);
    builder.RegisterService(&fake_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port_, 0);
    address_ = absl::StrCat("127.0.0.1:", port_);
    WriteFile(dir_.File("token"), absl::StrCat("\n  ", kToken, "  \n"));
  }
  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now());
  }

  ConnectOptions Options(const std::string& address = "") const {
    ConnectOptions o;
    o.server = address.empty() ? address_ : address;
    o.token_file = dir_.File("token");
    o.timeout = std::chrono::seconds(7);
    return o;
  }
  std::unique_ptr<JobClient> Client(const std::string& address = "") const {
    absl::StatusOr<std::unique_ptr<JobClient>> c =
        JobClient::Create(Options(address));
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *std::move(c) : nullptr;
  }
  static WatchOptions FastRetry() {
    WatchOptions w;
    w.initial_backoff = std::chrono::milliseconds(1);
    w.max_backoff = std::chrono::milliseconds(5);
    return w;
  }
  // The autoq binary with the connection flags of this fake; its stderr
  // is dropped with `quiet`.
  std::string Autoq(const std::string& args,
                    const std::string& address = "") const {
    return absl::StrCat(AUTOQ_BINARY, " ", args, " --server ",
                        address.empty() ? address_ : address, " --token-file ",
                        dir_.File("token"));
  }

  TempDir dir_;
  FakeJobService fake_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::string address_;
};

// --- JobClient ------------------------------------------------------------

TEST(ConnectOptionsTest, DefaultsComeFromTheEnvironment) {
  const char* home = std::getenv("HOME");
  const std::string saved_home = home != nullptr ? home : "";
  setenv("AUTOQ_SERVER", "gpu-head:6000", 1);
  setenv("AUTOQ_TOKEN_FILE", "/run/secrets/autoq", 1);
  ConnectOptions o = DefaultConnectOptions();
  EXPECT_EQ(o.server, "gpu-head:6000");
  EXPECT_EQ(o.token_file, "/run/secrets/autoq");
  unsetenv("AUTOQ_SERVER");
  unsetenv("AUTOQ_TOKEN_FILE");
  setenv("HOME", "/home/ml", 1);
  o = DefaultConnectOptions();
  EXPECT_EQ(o.server, "localhost:50051");
  EXPECT_EQ(o.token_file, "/home/ml/.config/autoq/token");
  EXPECT_EQ(o.timeout, std::chrono::seconds(30));
  setenv("HOME", saved_home.c_str(), 1);
}

TEST(CheckArtifactNameTest, AcceptsRelativePathsRejectsEscapes) {
  EXPECT_TRUE(CheckArtifactName("front.json").ok());
  EXPECT_TRUE(CheckArtifactName("front/front-1/model.pt").ok());
  EXPECT_TRUE(CheckArtifactName("a..b/..c").ok());
  for (const char* bad :
       {"", "../x", "/etc/passwd", "a/../../b", "a/..", "..", ".", "./a",
        "a//b", "a/", "a\\..\\b", "C:\\x", "a\nb"}) {
    EXPECT_FALSE(CheckArtifactName(bad).ok()) << "'" << bad << "'";
  }
}

TEST_F(JobClientTest, MissingTokenFileIsAnErrorNamingIt) {
  ConnectOptions o = Options();
  o.token_file = dir_.File("absent");
  absl::StatusOr<std::unique_ptr<JobClient>> c = JobClient::Create(o);
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr(dir_.File("absent")));
}

TEST_F(JobClientTest, SubmitStreamsTheSpecThenTheModelInChunks) {
  const std::string model =
      RandomBytes(2 * autoq::kChunkBytes + 12345, /*seed=*/1);
  WriteFile(dir_.File("m.pt"), model);
  JobSpec spec;
  spec.set_name("tiny");
  spec.mutable_search()->set_population(8);
  std::vector<int64_t> progress;
  auto client = Client();
  absl::StatusOr<SubmitJobResponse> r =
      client->Submit(spec, dir_.File("m.pt"), [&](int64_t sent, int64_t total) {
        EXPECT_EQ(total, static_cast<int64_t>(model.size()));
        progress.push_back(sent);
      });
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status().job_id(), "job-42");
  EXPECT_THAT(r->warnings(), ElementsAre("population rounded up"));
  std::lock_guard<std::mutex> lock(fake_.mu);
  EXPECT_TRUE(fake_.spec_first);
  EXPECT_EQ(fake_.spec.name(), "tiny");
  EXPECT_EQ(fake_.spec.search().population(), 8);
  ASSERT_EQ(fake_.uploaded_chunks.size(), 3u);
  std::string joined;
  for (const std::string& c : fake_.uploaded_chunks) {
    EXPECT_LE(c.size(), autoq::kChunkBytes);
    joined += c;
  }
  EXPECT_EQ(joined, model);
  EXPECT_THAT(progress, ElementsAre(autoq::kChunkBytes, 2 * autoq::kChunkBytes,
                                    static_cast<int64_t>(model.size())));
}

TEST_F(JobClientTest, SubmitReportsTheServersRejection) {
  WriteFile(dir_.File("m.pt"), RandomBytes(3 * autoq::kChunkBytes, 2));
  fake_.reject_upload = true;
  absl::StatusOr<SubmitJobResponse> r =
      Client()->Submit(JobSpec(), dir_.File("m.pt"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("larger than the limit"));
}

TEST_F(JobClientTest, SubmitOfAMissingModelFailsBeforeCalling) {
  absl::StatusOr<SubmitJobResponse> r =
      Client()->Submit(JobSpec(), dir_.File("absent.pt"));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("absent.pt"));
  std::lock_guard<std::mutex> lock(fake_.mu);
  EXPECT_TRUE(fake_.authorization.empty());
}

TEST_F(JobClientTest, EveryCallCarriesTheBearerTokenAndADeadline) {
  auto client = Client();
  ASSERT_TRUE(client->GetJob("job-42").ok());
  ASSERT_TRUE(client->ListJobs().ok());
  ASSERT_TRUE(client->Cancel("job-42").ok());
  ASSERT_TRUE(client->GetResults("job-42").ok());
  fake_.scripts["job-42"] = Script("job-42", JOB_FINISHED);
  WatchOptions w;
  w.stream_window = std::chrono::seconds(90);
  ASSERT_TRUE(client->Watch("job-42", 0, nullptr, w).ok());
  std::lock_guard<std::mutex> lock(fake_.mu);
  ASSERT_EQ(fake_.authorization.size(), 5u);
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(fake_.authorization[i], absl::StrCat("Bearer ", kToken));
    const auto left = fake_.deadlines[i] - fake_.call_times[i];
    const auto limit =
        i < 4 ? std::chrono::seconds(7) : std::chrono::seconds(90);
    // The deadline travels as a timeout, rounded up on the way.
    EXPECT_LE(left, limit + std::chrono::seconds(1)) << "call " << i;
    EXPECT_GT(left, limit - std::chrono::seconds(3)) << "call " << i;
  }
}

TEST_F(JobClientTest, WrongTokenIsUnauthenticatedWithAHint) {
  WriteFile(dir_.File("token"), "wrong\n");
  absl::StatusOr<std::vector<JobStatus>> jobs = Client()->ListJobs();
  ASSERT_FALSE(jobs.ok());
  EXPECT_EQ(jobs.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(jobs.status().message(), HasSubstr(dir_.File("token")));
  EXPECT_THAT(jobs.status().message(), HasSubstr("--token-file"));
}

TEST_F(JobClientTest, ServerErrorsKeepTheirCode) {
  absl::StatusOr<JobStatus> job = Client()->GetJob("job-1");
  ASSERT_FALSE(job.ok());
  EXPECT_EQ(job.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(job.status().message(), HasSubstr("no such job"));
}

TEST_F(JobClientTest, UnreachableServerNamesTheAddress) {
  const std::string address = absl::StrCat("127.0.0.1:", ClosedPort());
  auto client = Client(address);
  absl::StatusOr<std::vector<JobStatus>> jobs = client->ListJobs();
  ASSERT_FALSE(jobs.ok());
  EXPECT_EQ(jobs.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(jobs.status().message(),
              HasSubstr("cannot reach the server at " + address));
  // A watch that never got through fails at once instead of retrying.
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<JobStatus> ended = client->Watch("job-42", 0, nullptr);
  ASSERT_FALSE(ended.ok());
  EXPECT_THAT(ended.status().message(), HasSubstr(address));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST_F(JobClientTest, WatchDeliversEveryEventOnceAndReturnsTheEnd) {
  fake_.scripts["job-42"] = Script("job-42", JOB_FINISHED);
  std::vector<int64_t> seqs;
  absl::StatusOr<JobStatus> ended = Client()->Watch(
      "job-42", 0, [&](const JobEvent& e) { seqs.push_back(e.seq()); });
  ASSERT_TRUE(ended.ok()) << ended.status();
  EXPECT_EQ(ended->state(), JOB_FINISHED);
  EXPECT_THAT(seqs, ElementsAre(1, 2, 3, 4, 5, 6, 7, 8));
}

TEST_F(JobClientTest, WatchStartsAfterTheGivenSeq) {
  fake_.scripts["job-42"] = Script("job-42", JOB_FINISHED);
  std::vector<int64_t> seqs;
  ASSERT_TRUE(Client()
                  ->Watch("job-42", 5,
                          [&](const JobEvent& e) { seqs.push_back(e.seq()); })
                  .ok());
  EXPECT_THAT(seqs, ElementsAre(6, 7, 8));
  EXPECT_THAT(fake_.watch_after_seq["job-42"], ElementsAre(5));
}

class WatchResumeTest : public JobClientTest,
                        public ::testing::WithParamInterface<Drop> {};

TEST_P(WatchResumeTest, ResumesFromTheLastSeqAfterADroppedStream) {
  fake_.scripts["job-42"] = Script("job-42", JOB_FAILED);
  fake_.drop = GetParam();
  std::vector<int64_t> seqs;
  int reconnects = 0;
  WatchOptions w = FastRetry();
  w.on_reconnect = [&](const absl::Status&, std::chrono::milliseconds,
                       int64_t after) {
    EXPECT_EQ(after, 4);
    ++reconnects;
  };
  absl::StatusOr<JobStatus> ended = Client()->Watch(
      "job-42", 0, [&](const JobEvent& e) { seqs.push_back(e.seq()); }, w);
  ASSERT_TRUE(ended.ok()) << ended.status();
  EXPECT_EQ(ended->state(), JOB_FAILED);
  EXPECT_EQ(ended->error(), "worker ran out of memory");
  EXPECT_THAT(seqs, ElementsAre(1, 2, 3, 4, 5, 6, 7, 8));
  EXPECT_EQ(reconnects, 1);
  std::lock_guard<std::mutex> lock(fake_.mu);
  EXPECT_THAT(fake_.watch_after_seq["job-42"], ElementsAre(0, 4));
}

INSTANTIATE_TEST_SUITE_P(Drops, WatchResumeTest,
                         ::testing::Values(Drop::kUnavailable,
                                           Drop::kCloseEarly, Drop::kReplayAll),
                         [](const ::testing::TestParamInfo<Drop>& info)
                             -> std::string { return DropName(info.param); });

TEST_F(JobClientTest, WatchGivesUpWhenTheServerStaysAway) {
  fake_.scripts["job-42"] = Script("job-42", JOB_FINISHED);
  fake_.scripts["job-42"].resize(3);  // the job never ends
  WatchOptions w = FastRetry();
  w.give_up_after = std::chrono::milliseconds(200);
  int events = 0;
  absl::StatusOr<JobStatus> ended = Client()->Watch(
      "job-42", 0, [&](const JobEvent&) { ++events; }, w);
  ASSERT_FALSE(ended.ok());
  EXPECT_THAT(ended.status().message(),
              HasSubstr("gave up watching job job-42"));
  EXPECT_EQ(events, 3);
  std::lock_guard<std::mutex> lock(fake_.mu);
  EXPECT_GT(fake_.watch_after_seq["job-42"].size(), 2u);
  EXPECT_EQ(fake_.watch_after_seq["job-42"].back(), 3);
}

TEST_F(JobClientTest, WatchKeepsGoingThroughQuietWindows) {
  fake_.scripts["job-42"] = Script("job-42", JOB_FINISHED);
  fake_.quiet_streams = 2;  // events 1-4, then two silent windows
  WatchOptions w = FastRetry();
  w.stream_window = std::chrono::milliseconds(300);
  w.give_up_after = std::chrono::milliseconds(100);
  std::vector<int64_t> seqs;
  absl::StatusOr<JobStatus> ended = Client()->Watch(
      "job-42", 0, [&](const JobEvent& e) { seqs.push_back(e.seq()); }, w);
  ASSERT_TRUE(ended.ok()) << ended.status();
  EXPECT_THAT(seqs, ElementsAre(1, 2, 3, 4, 5, 6, 7, 8));
  std::lock_guard<std::mutex> lock(fake_.mu);
  EXPECT_THAT(fake_.watch_after_seq["job-42"], ElementsAre(0, 4, 4));
}

TEST_F(JobClientTest, WatchStopsOnErrorsARetryCannotFix) {
  WriteFile(dir_.File("token"), "wrong\n");
  absl::StatusOr<JobStatus> ended =
      Client()->Watch("job-42", 0, nullptr, FastRetry());
  ASSERT_FALSE(ended.ok());
  EXPECT_EQ(ended.status().code(), absl::StatusCode::kUnauthenticated);
  std::lock_guard<std::mutex> lock(fake_.mu);
  EXPECT_EQ(fake_.authorization.size(), 1u);
}

TEST_F(JobClientTest, DownloadWritesVerifiedFilesKeepingTheirPaths) {
  const std::string model = RandomBytes(autoq::kChunkBytes + 999, 3);
  fake_.artifacts["front.json"] = "{\"front\": []}\n";
  fake_.artifacts["front/front-1/model.pt"] = model;
  auto client = Client();
  const std::string out = dir_.File("out");
  absl::StatusOr<std::string> a =
      client->DownloadInto("job-42", "front/front-1/model.pt", out,
                           static_cast<int64_t>(model.size()));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(*a, out + "/front/front-1/model.pt");
  EXPECT_EQ(ReadFile(*a), model);
  absl::StatusOr<int64_t> b =
      client->Download("job-42", "front.json", dir_.File("f.json"));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(*b, 14);
  EXPECT_EQ(ReadFile(dir_.File("f.json")), "{\"front\": []}\n");
  // Only the finished files are there.
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::recursive_directory_iterator(out)) {
    if (e.is_regular_file()) files.push_back(e.path().string());
  }
  EXPECT_THAT(files, ElementsAre(out + "/front/front-1/model.pt"));
}

TEST_F(JobClientTest, DownloadNeverWritesNamesThatEscapeTheFolder) {
  fake_.artifacts["../x"] = "evil";
  fake_.artifacts["/etc/passwd"] = "evil";
  fake_.artifacts["a/../../b"] = "evil";
  const std::string out = dir_.File("inner/out");
  auto client = Client();
  for (const char* name : {"../x", "/etc/passwd", "a/../../b"}) {
    absl::StatusOr<std::string> r = client->DownloadInto("job-42", name, out);
    ASSERT_FALSE(r.ok()) << name;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(r.status().message(), HasSubstr(name));
  }
  EXPECT_FALSE(std::filesystem::exists(dir_.File("inner")));
  EXPECT_FALSE(std::filesystem::exists(dir_.File("x")));
  EXPECT_FALSE(std::filesystem::exists(dir_.File("b")));
  EXPECT_TRUE(fake_.downloads.empty());
}

TEST_F(JobClientTest, DownloadWithAWrongSha256LeavesNothingBehind) {
  fake_.artifacts["front/front-1/model.pt"] =
      RandomBytes(autoq::kChunkBytes + 10, 4);
  fake_.corrupt_sha = true;
  const std::string out = dir_.File("out");
  absl::StatusOr<std::string> r =
      Client()->DownloadInto("job-42", "front/front-1/model.pt", out);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(r.status().message(), HasSubstr("sha256 mismatch"));
  EXPECT_FALSE(std::filesystem::exists(out));
  // An existing file of that name is kept as it was.
  WriteFile(dir_.File("keep.pt"), "old");
  ASSERT_FALSE(
      Client()
          ->Download("job-42", "front/front-1/model.pt", dir_.File("keep.pt"))
          .ok());
  EXPECT_EQ(ReadFile(dir_.File("keep.pt")), "old");
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir_.path()),
                          std::filesystem::directory_iterator()),
            2);  // token, keep.pt
}

TEST_F(JobClientTest, DownloadRejectsSizesOtherThanAnnounced) {
  fake_.artifacts["w.bin"] = RandomBytes(5000, 5);
  auto client = Client();
  // The listing said another size.
  absl::StatusOr<int64_t> r =
      client->Download("job-42", "w.bin", dir_.File("w.bin"), 4000);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("announced 5000 bytes"));
  // More bytes than the first chunk announced.
  fake_.oversend = true;
  r = client->Download("job-42", "w.bin", dir_.File("w.bin"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_FALSE(std::filesystem::exists(dir_.File("w.bin")));
}

// --- The autoq commands -----------------------------------------------------
// An autoq process spends a second or more loading LibTorch before main, so
// the commands of a test run side by side.

using autoq::testing::CommandResult;

std::vector<CommandResult> RunAll(const std::vector<std::string>& commands) {
  std::vector<FILE*> pipes;
  for (const std::string& c : commands) {
    pipes.push_back(popen((c + " 2>&1").c_str(), "r"));
  }
  std::vector<CommandResult> results(commands.size());
  for (size_t i = 0; i < pipes.size(); ++i) {
    if (pipes[i] == nullptr) continue;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), pipes[i])) > 0) {
      results[i].output.append(buf, n);
    }
    const int status = pclose(pipes[i]);
    results[i].exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  return results;
}

// `command` with its stderr dropped.
std::string Quiet(const std::string& command) {
  return absl::StrCat("{ ", command, " 2>/dev/null; }");
}

int Lines(const std::string& s) {
  return static_cast<int>(std::count(s.begin(), s.end(), '\n'));
}

int Count(const std::string& haystack, const std::string& needle) {
  int n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos;
       at = haystack.find(needle, at + needle.size())) {
    ++n;
  }
  return n;
}

TEST_F(JobClientTest, CommandsWithoutAServerFailInOneLineNamingIt) {
  const std::string address = absl::StrCat("127.0.0.1:", ClosedPort());
  WriteFile(dir_.File("job.json"),
            "{\"name\": \"tiny\", \"model\": {\"path\": \"m.pt\"}}");
  WriteFile(dir_.File("m.pt"), "model bytes");
  const std::vector<std::string> args = {
      absl::StrCat("submit ", dir_.File("job.json"), " --model ",
                   dir_.File("m.pt")),
      "watch job-42",
      "list",
      "cancel job-42",
      "results job-42",
      absl::StrCat("download job-42 -o ", dir_.File("dl"))};
  std::vector<std::string> commands;
  for (const std::string& a : args) commands.push_back(Autoq(a, address));
  const std::vector<CommandResult> results = RunAll(commands);
  for (size_t i = 0; i < args.size(); ++i) {
    const CommandResult& r = results[i];
    EXPECT_EQ(r.exit_code, 1) << args[i] << ": " << r.output;
    EXPECT_EQ(Lines(r.output), 1) << args[i] << ": " << r.output;
    EXPECT_THAT(r.output, HasSubstr("cannot reach the server at " + address))
        << args[i];
  }
  EXPECT_FALSE(std::filesystem::exists(dir_.File("dl")));
}

TEST_F(JobClientTest, BadArgumentsFailInOneLine) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {Autoq("list --bogus"), "unknown option --bogus"},
      {Autoq("watch"), "missing JOB"},
      {Autoq("list --timeout abc"), "--timeout"},
      {Autoq("download job-42 ../x"), "would escape the output folder"},
      {absl::StrCat(AUTOQ_BINARY, " list --token-file ", dir_.File("absent")),
       dir_.File("absent")},
  };
  std::vector<std::string> commands;
  for (const auto& c : cases) commands.push_back(c.first);
  const std::vector<CommandResult> results = RunAll(commands);
  for (size_t i = 0; i < cases.size(); ++i) {
    const CommandResult& r = results[i];
    EXPECT_EQ(r.exit_code, 1) << cases[i].first << ": " << r.output;
    EXPECT_EQ(Lines(r.output), 1) << cases[i].first << ": " << r.output;
    EXPECT_THAT(r.output, HasSubstr(cases[i].second)) << cases[i].first;
  }
  std::lock_guard<std::mutex> lock(fake_.mu);
  EXPECT_TRUE(fake_.authorization.empty());
}

TEST_F(JobClientTest, SubmitCommandChecksTheConfigThenUploads) {
  WriteFile(dir_.File("job.json"),
            "{\"name\": \"tiny\", \"model\": {\"path\": \"m.pt\"}, "
            "\"search\": {\"population\": 8, \"generations\": 2}}");
  WriteFile(dir_.File("bad.json"),
            "{\"name\": \"tiny\", \"model\": {\"path\": \"m.pt\"}, "
            "\"search\": {\"population\": 3}}");
  // The built-in model, never trained: say how to get it.
  WriteFile(dir_.File("builtin.json"),
            absl::StrCat("{\"model\": {\"path\": \"", dir_.File("none.pt"),
                         "\", \"builtin\": \"fashion-mnist\"}}"));
  const std::string model = RandomBytes(100000, 6);
  WriteFile(dir_.File("model.pt"), model);
  const std::string flag_model =
      absl::StrCat(" --model ", dir_.File("model.pt"));
  const std::vector<CommandResult> r = RunAll({
      Quiet(Autoq(absl::StrCat("submit ", dir_.File("job.json"), flag_model))),
      Autoq(absl::StrCat("submit ", dir_.File("bad.json"), flag_model)),
      Autoq(absl::StrCat("submit ", dir_.File("builtin.json"))),
  });
  EXPECT_EQ(r[0].exit_code, 0) << r[0].output;
  EXPECT_EQ(r[0].output, "job-42\n");
  EXPECT_EQ(r[1].exit_code, 1);
  EXPECT_THAT(r[1].output, HasSubstr("bad.json: search.population"));
  EXPECT_EQ(r[2].exit_code, 1);
  EXPECT_EQ(Lines(r[2].output), 1) << r[2].output;
  EXPECT_THAT(r[2].output, HasSubstr("autoq train-baseline"));
  std::lock_guard<std::mutex> lock(fake_.mu);
  EXPECT_EQ(fake_.authorization.size(), 1u);  // only the valid job
  EXPECT_EQ(fake_.spec.name(), "tiny");
  EXPECT_EQ(fake_.spec.search().generations(), 2);
  std::string joined;
  for (const std::string& c : fake_.uploaded_chunks) joined += c;
  EXPECT_EQ(joined, model);
}

TEST_F(JobClientTest, WatchCommandPrintsTheFrontResumesAndExitsByState) {
  for (const auto& [id, end] : {std::pair{"job-ok", JOB_FINISHED},
                                {"job-failed", JOB_FAILED},
                                {"job-cancelled", JOB_CANCELLED},
                                {"job-json", JOB_FINISHED}}) {
    fake_.scripts[id] = Script(id, end);
  }
  // Every job's first stream drops after its fourth event.
  fake_.drop = Drop::kUnavailable;
  const std::vector<CommandResult> r = RunAll({
      Quiet(Autoq("watch job-ok")),
      Autoq("watch job-failed"),
      Autoq("watch job-cancelled"),
      Quiet(Autoq("watch job-json --json")),
  });
  const std::string& out = r[0].output;
  EXPECT_EQ(r[0].exit_code, 0) << out;
  EXPECT_THAT(out, HasSubstr("job job-ok (tiny) accepted"));
  EXPECT_THAT(out, HasSubstr("worker node7 joined (cuda:0)"));
  EXPECT_THAT(out, HasSubstr("[search 1/8] cuda:0@node7"));
  EXPECT_THAT(out, HasSubstr("== generation 1/2: 2 points on the front, "
                             "hypervolume 0.8125; evaluations: 8 computed"));
  EXPECT_THAT(out, HasSubstr("8,4,4,8"));
  EXPECT_THAT(out, HasSubstr("4,2,2,4"));
  EXPECT_THAT(out, HasSubstr("final fine-tune: 2 front points"));
  EXPECT_THAT(out, HasSubstr("front 0.8311, uniform 0.7702"));
  EXPECT_THAT(out, HasSubstr("job job-ok FINISHED"));
  // Each event once, although the stream dropped after the fourth.
  EXPECT_EQ(Count(out, "accepted"), 1);
  EXPECT_EQ(Count(out, "[search 1/8]"), 1);

  EXPECT_EQ(r[1].exit_code, 1);
  EXPECT_THAT(r[1].output, HasSubstr("error: job job-failed failed: worker "
                                     "ran out of memory"));
  EXPECT_THAT(r[1].output, HasSubstr("reconnecting"));
  EXPECT_EQ(r[2].exit_code, 1);
  EXPECT_THAT(r[2].output, HasSubstr("job job-cancelled was cancelled"));

  EXPECT_EQ(r[3].exit_code, 0) << r[3].output;
  std::vector<std::string> lines =
      absl::StrSplit(r[3].output, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 8u) << r[3].output;
  for (size_t i = 0; i < lines.size(); ++i) {
    JobEvent event;
    ASSERT_TRUE(
        google::protobuf::util::JsonStringToMessage(lines[i], &event).ok())
        << lines[i];
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(
        event, fake_.scripts["job-json"][i]))
        << lines[i];
  }
  std::lock_guard<std::mutex> lock(fake_.mu);
  EXPECT_THAT(fake_.watch_after_seq["job-ok"], ElementsAre(0, 4));
}

TEST_F(JobClientTest, ListCancelAndResultsCommands) {
  fake_.artifacts["front.json"] = "{}";
  fake_.artifacts["front/front-1/model.pt"] = RandomBytes(3000, 7);
  fake_.results_state["job-running"] = JOB_RUNNING;
  const std::vector<CommandResult> r = RunAll({
      Autoq("list"),
      Autoq("list --json"),
      Autoq("cancel job-42"),
      Autoq("results job-42"),
      Autoq("results job-running"),
  });
  EXPECT_EQ(r[0].exit_code, 0) << r[0].output;
  EXPECT_THAT(r[0].output, HasSubstr("ID"));
  EXPECT_THAT(r[0].output, HasSubstr("job-42  tiny"));
  EXPECT_THAT(r[0].output, HasSubstr("RUNNING"));
  EXPECT_THAT(r[0].output, HasSubstr("1/2"));
  EXPECT_THAT(r[0].output, HasSubstr("14/3"));

  EXPECT_EQ(r[1].exit_code, 0) << r[1].output;
  ListJobsResponse listed;
  ASSERT_TRUE(
      google::protobuf::util::JsonStringToMessage(r[1].output, &listed).ok())
      << r[1].output;
  EXPECT_EQ(listed.jobs_size(), 2);

  EXPECT_EQ(r[2].exit_code, 0) << r[2].output;
  EXPECT_THAT(r[2].output, HasSubstr("job job-42: CANCELLED"));

  const std::string& results = r[3].output;
  EXPECT_EQ(r[3].exit_code, 0) << results;
  EXPECT_THAT(results, HasSubstr("front-1"));
  EXPECT_THAT(results, HasSubstr("uniform-8"));
  EXPECT_THAT(results, HasSubstr("90.10"));
  // The post-training baseline is a row of its own, named as such.
  EXPECT_THAT(results, HasSubstr("int8-ptq-per-channel"));
  EXPECT_THAT(results, HasSubstr("89.35"));
  EXPECT_THAT(results, HasSubstr("post-training, no fine-tune"));
  EXPECT_THAT(results, HasSubstr("front 0.8311, uniform 0.7702"));
  EXPECT_THAT(results, HasSubstr("front/front-1/model.pt"));
  EXPECT_THAT(results, HasSubstr("artifacts: 2 files"));

  EXPECT_EQ(r[4].exit_code, 1);
  EXPECT_EQ(Lines(r[4].output), 1) << r[4].output;
  EXPECT_THAT(r[4].output, HasSubstr("job job-running has not finished yet"));
  std::lock_guard<std::mutex> lock(fake_.mu);
  EXPECT_THAT(fake_.cancelled, ElementsAre("job-42"));
}

TEST_F(JobClientTest, DownloadCommandFetchesArtifactsAndRefusesEscapes) {
  const std::string model = RandomBytes(autoq::kChunkBytes + 5, 8);
  fake_.artifacts["front.json"] = "{}";
  fake_.artifacts["front/front-1/model.pt"] = model;
  fake_.extra_listed["job-evil"] = {"../../evil.sh"};
  const std::string all = dir_.File("all");
  const std::string one = dir_.File("one");
  const std::string none = dir_.File("none");
  const std::string evil = dir_.File("evil/out");
  const std::vector<CommandResult> r = RunAll({
      Autoq(absl::StrCat("download job-42 -o ", all)),
      Autoq(absl::StrCat("download job-42 front.json --out ", one)),
      Autoq(absl::StrCat("download job-42 nope.pt -o ", none)),
      Autoq(absl::StrCat("download job-evil -o ", evil)),
  });
  EXPECT_EQ(r[0].exit_code, 0) << r[0].output;
  EXPECT_THAT(r[0].output, HasSubstr(all + "/front/front-1/model.pt"));
  EXPECT_EQ(ReadFile(all + "/front/front-1/model.pt"), model);
  EXPECT_EQ(ReadFile(all + "/front.json"), "{}");

  EXPECT_EQ(r[1].exit_code, 0) << r[1].output;
  EXPECT_EQ(ReadFile(one + "/front.json"), "{}");
  EXPECT_FALSE(std::filesystem::exists(one + "/front"));

  EXPECT_EQ(r[2].exit_code, 1);
  EXPECT_THAT(r[2].output, HasSubstr("has no artifact 'nope.pt'"));
  EXPECT_FALSE(std::filesystem::exists(none));

  EXPECT_EQ(r[3].exit_code, 1);
  EXPECT_EQ(Lines(r[3].output), 1) << r[3].output;
  EXPECT_THAT(r[3].output, HasSubstr("would escape the output folder"));
  EXPECT_FALSE(std::filesystem::exists(dir_.File("evil")));
  EXPECT_FALSE(std::filesystem::exists(dir_.File("evil.sh")));
  std::lock_guard<std::mutex> lock(fake_.mu);
  EXPECT_EQ(fake_.downloads.count("job-evil"), 0u);
}

}  // namespace
}  // namespace autoq::client
