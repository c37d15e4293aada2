// JobClient: the client side of autoq.JobService (proto/autoq.proto), used
// by the `autoq` service commands (submit, watch, list, cancel, results,
// download) and by tests. One method per RPC; every call carries the bearer
// token and a deadline, and failures come back as absl::Status with the gRPC
// code kept and a message a user can act on ("cannot reach the server at
// HOST:PORT", "the server rejected the token from FILE").
//
// Thread-safety: a JobClient holds no mutable state; its methods may be
// called from any thread, also concurrently (the gRPC stub is thread-safe).
// Callbacks run on the calling thread.
#ifndef AUTOQ_CLIENT_JOB_CLIENT_H_
#define AUTOQ_CLIENT_JOB_CLIENT_H_

#include <grpcpp/channel.h>
#include <grpcpp/support/status.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/artifact_name.h"
#include "proto/autoq.grpc.pb.h"
#include "proto/autoq.pb.h"

namespace autoq::client {

inline constexpr char kDefaultServer[] = "localhost:50051";

struct ConnectOptions {
  std::string server = kDefaultServer;  // HOST:PORT
  std::string token_file;               // read once by Create
  std::string tls_ca_file;              // empty: plain TCP
  // Deadline of each unary call. Transfers (Submit, Download) get this plus
  // one second per MiB, so a slow link still gets through a large model.
  std::chrono::milliseconds timeout{30000};
};

// Defaults from the environment: $AUTOQ_SERVER (else localhost:50051),
// $AUTOQ_TOKEN_FILE (else ~/.config/autoq/token), 30 s.
ConnectOptions DefaultConnectOptions();

// OK when `name` (an artifact name from the server or the user) is a plain
// relative path that stays inside the folder it is written into
// (common/artifact_name.h, where it is fuzzed).
using ::autoq::CheckArtifactName;

struct WatchOptions {
  // Deadline of one WatchJob stream. When it passes the watch reconnects
  // from the last event it got, so a long job never hits it.
  std::chrono::milliseconds stream_window{std::chrono::minutes(5)};
  // Wait before reconnecting after a dropped stream: starts here, doubles
  // on every attempt that gets no event, up to max_backoff.
  std::chrono::milliseconds initial_backoff{250};
  std::chrono::milliseconds max_backoff{10000};
  // Gives up when the server stays unreachable (no event, no stream open
  // for a whole window) this long across reconnects.
  std::chrono::milliseconds give_up_after{std::chrono::minutes(15)};
  // Told about each reconnect before its wait (why, how long); may be null.
  std::function<void(const absl::Status& why, std::chrono::milliseconds wait,
                     int64_t after_seq)>
      on_reconnect;
};

class JobClient {
 public:
  // Reads the token file and opens the channel (lazily: an absent server
  // shows up on the first call).
  static absl::StatusOr<std::unique_ptr<JobClient>> Create(
      const ConnectOptions& options);

  // Over an existing channel with a known token (tests, in-process use).
  // options.token_file is only used in error messages.
  JobClient(std::shared_ptr<grpc::Channel> channel, std::string token,
            ConnectOptions options);

  const std::string& server() const { return options_.server; }

  // Uploads a job: `spec` first, then the file at `model_path` in chunks of
  // autoq::kChunkBytes. `progress` (may be null) gets bytes sent so far and
  // the file size after each chunk.
  using UploadProgress = std::function<void(int64_t sent, int64_t total)>;
  absl::StatusOr<SubmitJobResponse> Submit(
      const JobSpec& spec, const std::string& model_path,
      const UploadProgress& progress = nullptr) const;

  absl::StatusOr<JobStatus> GetJob(const std::string& job_id) const;
  absl::StatusOr<std::vector<JobStatus>> ListJobs() const;
  absl::StatusOr<JobStatus> Cancel(const std::string& job_id) const;
  absl::StatusOr<JobResults> GetResults(const std::string& job_id) const;

  // Calls `on_event` for every event of the job with seq > after_seq, in
  // order and each once, until the job's `ended` event, and returns the
  // status in it. A stream that drops (server restart, network) is reopened
  // from the last seq received, with backoff (see WatchOptions). Fails at
  // once when the server cannot be reached on the first attempt, and on
  // errors a retry cannot fix (UNAUTHENTICATED, NOT_FOUND, ...).
  using EventCallback = std::function<void(const JobEvent&)>;
  absl::StatusOr<JobStatus> Watch(const std::string& job_id, int64_t after_seq,
                                  const EventCallback& on_event,
                                  const WatchOptions& options = {}) const;

  // Streams artifact `name` of the job into `dest_path`: written to a
  // temporary file beside it, checked against the size and sha256 the
  // server announced (and `expected_bytes` when >= 0), then renamed onto
  // `dest_path`. On any failure nothing is left behind. Returns the size.
  absl::StatusOr<int64_t> Download(const std::string& job_id,
                                   const std::string& name,
                                   const std::string& dest_path,
                                   int64_t expected_bytes = -1) const;

  // Download into out_dir/name, keeping the name's folders (created as
  // needed) after CheckArtifactName(name). Returns the file's path.
  absl::StatusOr<std::string> DownloadInto(const std::string& job_id,
                                           const std::string& name,
                                           const std::string& out_dir,
                                           int64_t expected_bytes = -1) const;

 private:
  // The gRPC status as an absl::Status, same code, with a message that says
  // what to do for the common failures.
  absl::Status Explain(const grpc::Status& status) const;
  std::chrono::milliseconds TransferTimeout(int64_t bytes) const;

  std::unique_ptr<JobService::Stub> stub_;
  std::string token_;
  ConnectOptions options_;
};

}  // namespace autoq::client

#endif  // AUTOQ_CLIENT_JOB_CLIENT_H_
