#include "client/job_client.h"

#include <grpcpp/client_context.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/file_util.h"
#include "common/rpc_util.h"
#include "common/sha256.h"
#include "common/status_macros.h"

namespace autoq::client {
namespace {

using std::chrono::milliseconds;

// A download of unknown size gets this much more than the unary timeout.
constexpr milliseconds kUnknownSizeTransfer = std::chrono::minutes(10);

// Codes after which reopening the watch stream can help: a stream closed
// without the job's end (OK), or any transient failure.
bool Retryable(grpc::StatusCode code) {
  return code == grpc::StatusCode::OK || IsTransient(code);
}

}  // namespace

ConnectOptions DefaultConnectOptions() {
  ConnectOptions o;
  if (const char* s = std::getenv("AUTOQ_SERVER"); s != nullptr && *s) {
    o.server = s;
  }
  if (const char* t = std::getenv("AUTOQ_TOKEN_FILE"); t != nullptr && *t) {
    o.token_file = t;
  } else if (const char* home = std::getenv("HOME"); home != nullptr) {
    o.token_file = absl::StrCat(home, "/.config/autoq/token");
  } else {
    o.token_file = ".config/autoq/token";
  }
  return o;
}

absl::StatusOr<std::unique_ptr<JobClient>> JobClient::Create(
    const ConnectOptions& options) {
  if (options.timeout <= milliseconds(0)) {
    return absl::InvalidArgumentError("the timeout must be positive");
  }
  absl::StatusOr<std::string> token = autoq::ReadTokenFile(options.token_file);
  if (!token.ok()) {
    return absl::Status(
        token.status().code(),
        absl::StrCat(token.status().message(),
                     " (give a client token with --token-file or "
                     "$AUTOQ_TOKEN_FILE)"));
  }
  autoq::ChannelOptions channel_options;
  channel_options.target = options.server;
  channel_options.tls_ca_file = options.tls_ca_file;
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      autoq::MakeChannel(channel_options);
  if (!channel.ok()) return channel.status();
  return std::make_unique<JobClient>(*std::move(channel), *std::move(token),
                                     options);
}

JobClient::JobClient(std::shared_ptr<grpc::Channel> channel, std::string token,
                     ConnectOptions options)
    : stub_(JobService::NewStub(channel)),
      token_(std::move(token)),
      options_(std::move(options)) {}

absl::Status JobClient::Explain(const grpc::Status& status) const {
  const std::string& msg = status.error_message();
  switch (status.error_code()) {
    case grpc::StatusCode::OK:
      return absl::OkStatus();
    case grpc::StatusCode::UNAVAILABLE:
      return absl::UnavailableError(absl::StrCat(
          "cannot reach the server at ", options_.server, " (", msg, ")"));
    case grpc::StatusCode::UNAUTHENTICATED:
      return absl::UnauthenticatedError(
          absl::StrCat("the server at ", options_.server, " rejected the token",
                       options_.token_file.empty()
                           ? ""
                           : absl::StrCat(" from ", options_.token_file),
                       " (", msg,
                       "); give a valid client token with --token-file or "
                       "$AUTOQ_TOKEN_FILE"));
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return absl::DeadlineExceededError(absl::StrCat(
          "the server at ", options_.server, " did not answer in time (", msg,
          "); a longer --timeout may help"));
    default:
      return autoq::ToAbsl(status);
  }
}

milliseconds JobClient::TransferTimeout(int64_t bytes) const {
  if (bytes < 0) return options_.timeout + kUnknownSizeTransfer;
  return options_.timeout +
         milliseconds(1000 *
                      (bytes / static_cast<int64_t>(autoq::kChunkBytes)));
}

absl::StatusOr<SubmitJobResponse> JobClient::Submit(
    const JobSpec& spec, const std::string& model_path,
    const UploadProgress& progress) const {
  std::error_code ec;
  const auto size = std::filesystem::file_size(model_path, ec);
  std::ifstream in(model_path, std::ios::binary);
  if (ec || !in) {
    return absl::NotFoundError(
        absl::StrCat("model file ", model_path, ": cannot open"));
  }
  const int64_t total = static_cast<int64_t>(size);

  grpc::ClientContext context;
  autoq::PrepareContext(&context, token_, TransferTimeout(total));
  SubmitJobResponse response;
  std::unique_ptr<grpc::ClientWriter<SubmitJobRequest>> writer =
      stub_->SubmitJob(&context, &response);
  SubmitJobRequest request;
  *request.mutable_spec() = spec;
  bool open = writer->Write(request);
  std::string buffer(autoq::kChunkBytes, '\0');
  int64_t sent = 0;
  while (open) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const std::streamsize n = in.gcount();
    if (n <= 0) break;
    request.set_model_chunk(buffer.data(), static_cast<size_t>(n));
    open = writer->Write(request);
    if (open) {
      sent += n;
      if (progress) progress(sent, total);
    }
  }
  if (in.bad()) {
    context.TryCancel();
    writer->Finish();
    return absl::DataLossError(
        absl::StrCat("model file ", model_path, ": read error"));
  }
  // A failed Write means the server already ended the call; Finish says why.
  if (open) writer->WritesDone();
  const grpc::Status status = writer->Finish();
  if (!status.ok()) return Explain(status);
  if (!open || sent != total) {
    return absl::InternalError(absl::StrCat("the upload of ", model_path,
                                            " ended after ", sent, " of ",
                                            total, " bytes"));
  }
  return response;
}

absl::StatusOr<JobStatus> JobClient::GetJob(const std::string& job_id) const {
  grpc::ClientContext context;
  autoq::PrepareContext(&context, token_, options_.timeout);
  GetJobRequest request;
  request.set_job_id(job_id);
  JobStatus response;
  const grpc::Status status = stub_->GetJob(&context, request, &response);
  if (!status.ok()) return Explain(status);
  return response;
}

absl::StatusOr<std::vector<JobStatus>> JobClient::ListJobs() const {
  grpc::ClientContext context;
  autoq::PrepareContext(&context, token_, options_.timeout);
  ListJobsResponse response;
  const grpc::Status status =
      stub_->ListJobs(&context, ListJobsRequest(), &response);
  if (!status.ok()) return Explain(status);
  return std::vector<JobStatus>(response.jobs().begin(), response.jobs().end());
}

absl::StatusOr<JobStatus> JobClient::Cancel(const std::string& job_id) const {
  grpc::ClientContext context;
  autoq::PrepareContext(&context, token_, options_.timeout);
  CancelJobRequest request;
  request.set_job_id(job_id);
  JobStatus response;
  const grpc::Status status = stub_->CancelJob(&context, request, &response);
  if (!status.ok()) return Explain(status);
  return response;
}

absl::StatusOr<JobResults> JobClient::GetResults(
    const std::string& job_id) const {
  grpc::ClientContext context;
  autoq::PrepareContext(&context, token_, options_.timeout);
  GetJobRequest request;
  request.set_job_id(job_id);
  JobResults response;
  const grpc::Status status = stub_->GetResults(&context, request, &response);
  if (!status.ok()) return Explain(status);
  return response;
}

absl::StatusOr<JobStatus> JobClient::Watch(const std::string& job_id,
                                           int64_t after_seq,
                                           const EventCallback& on_event,
                                           const WatchOptions& options) const {
  int64_t last = after_seq;
  bool contacted = false;  // some stream has delivered an event
  milliseconds backoff = options.initial_backoff;
  auto last_progress = std::chrono::steady_clock::now();
  for (;;) {
    grpc::ClientContext context;
    autoq::PrepareContext(&context, token_, options.stream_window);
    WatchJobRequest request;
    request.set_job_id(job_id);
    request.set_after_seq(last);
    std::unique_ptr<grpc::ClientReader<JobEvents>> reader =
        stub_->WatchJob(&context, request);
    JobEvents batch;
    bool got = false;
    std::optional<JobStatus> ended;
    while (!ended.has_value() && reader->Read(&batch)) {
      for (const JobEvent& event : batch.events()) {
        got = true;
        // A server may replay from an earlier point; deliver each seq once.
        if (event.seq() <= last) continue;
        last = event.seq();
        if (on_event) on_event(event);
        if (event.has_ended()) {
          ended = event.ended();
          break;
        }
      }
    }
    if (ended.has_value()) {
      // The job is over; do not wait for the server to close the stream.
      context.TryCancel();
      reader->Finish();
      return *ended;
    }
    const grpc::Status status = reader->Finish();
    if (!Retryable(status.error_code()) ||
        (!contacted && !got &&
         status.error_code() == grpc::StatusCode::UNAVAILABLE)) {
      return Explain(status);
    }
    const absl::Status why =
        status.ok() ? absl::UnavailableError(
                          "the server closed the stream before the job ended")
                    : Explain(status);
    const auto now = std::chrono::steady_clock::now();
    // The stream stayed open for its whole window: the server is there, the
    // job is just quiet (a long final fine-tune). Reopen at once.
    const bool window_ended =
        status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
    milliseconds wait = backoff;
    if (got || window_ended) {
      contacted = contacted || got;
      last_progress = now;
      backoff = options.initial_backoff;
      wait = window_ended ? milliseconds(0) : options.initial_backoff;
    } else {
      if (now - last_progress >= options.give_up_after) {
        return absl::Status(
            why.code(), absl::StrCat("gave up watching job ", job_id, " after ",
                                     options.give_up_after.count() / 1000,
                                     " s without an event: ", why.message()));
      }
      backoff = std::min(backoff * 2, options.max_backoff);
    }
    if (options.on_reconnect) options.on_reconnect(why, wait, last);
    if (wait > milliseconds(0)) std::this_thread::sleep_for(wait);
  }
}

absl::StatusOr<int64_t> JobClient::Download(const std::string& job_id,
                                            const std::string& name,
                                            const std::string& dest_path,
                                            int64_t expected_bytes) const {
  const std::string tmp = TempPathFor(dest_path);
  std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
  if (!out) {
    return absl::PermissionDeniedError(absl::StrCat(tmp, ": cannot create"));
  }
  // Every early return below removes the partial file.
  auto fail = [&](absl::Status status) {
    out.close();
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    return status;
  };
  auto corrupt = [&](absl::string_view why) {
    return fail(absl::DataLossError(
        absl::StrCat("artifact ", name, " of job ", job_id, ": ", why)));
  };

  grpc::ClientContext context;
  autoq::PrepareContext(&context, token_, TransferTimeout(expected_bytes));
  DownloadArtifactRequest request;
  request.set_job_id(job_id);
  request.set_name(name);
  std::unique_ptr<grpc::ClientReader<DataChunk>> reader =
      stub_->DownloadArtifact(&context, request);
  DataChunk chunk;
  bool first = true;
  int64_t total = -1;
  int64_t received = 0;
  std::string want_sha;
  Sha256 sha;
  while (reader->Read(&chunk)) {
    if (first) {
      first = false;
      total = chunk.total_bytes();
      want_sha = absl::AsciiStrToLower(chunk.sha256());
      absl::Status bad;
      if (want_sha.empty()) {
        bad = absl::DataLossError("the server sent no sha256");
      } else if (total < 0 ||
                 (expected_bytes >= 0 && total != expected_bytes)) {
        bad = absl::DataLossError(absl::StrCat("the server announced ", total,
                                               " bytes, expected ",
                                               expected_bytes));
      }
      if (!bad.ok()) {
        context.TryCancel();
        reader->Finish();
        return corrupt(bad.message());
      }
    }
    received += static_cast<int64_t>(chunk.data().size());
    if (received > total) {
      context.TryCancel();
      reader->Finish();
      return corrupt(absl::StrCat("more than the announced ", total, " bytes"));
    }
    sha.Update(chunk.data());
    out.write(chunk.data().data(),
              static_cast<std::streamsize>(chunk.data().size()));
    if (!out) {
      context.TryCancel();
      reader->Finish();
      return fail(absl::DataLossError(absl::StrCat(tmp, ": write failed")));
    }
  }
  const grpc::Status status = reader->Finish();
  if (!status.ok()) return fail(Explain(status));
  if (first) return corrupt("the server sent no data");
  if (received != total) {
    return corrupt(
        absl::StrCat("got ", received, " of ", total, " announced bytes"));
  }
  const std::string got_sha = sha.HexDigest();
  if (got_sha != want_sha) {
    return corrupt(absl::StrCat("sha256 mismatch: got ", got_sha,
                                ", announced ", want_sha));
  }
  out.close();
  if (!out)
    return fail(absl::DataLossError(absl::StrCat(tmp, ": write failed")));
  RETURN_IF_ERROR(RenameIntoPlace(tmp, dest_path));
  return received;
}

absl::StatusOr<std::string> JobClient::DownloadInto(
    const std::string& job_id, const std::string& name,
    const std::string& out_dir, int64_t expected_bytes) const {
  if (absl::Status st = CheckArtifactName(name); !st.ok()) return st;
  const std::filesystem::path dest = std::filesystem::path(out_dir) / name;
  // The folders this download creates, deepest first, so that a failed
  // download leaves nothing behind.
  std::vector<std::filesystem::path> created;
  std::error_code ec;
  for (std::filesystem::path dir = dest.parent_path();
       !dir.empty() && !std::filesystem::exists(dir, ec);
       dir = dir.parent_path()) {
    created.push_back(dir);
  }
  if (!created.empty())
    std::filesystem::create_directories(dest.parent_path(), ec);
  absl::StatusOr<int64_t> size =
      ec ? absl::PermissionDeniedError(absl::StrCat(dest.parent_path().string(),
                                                    ": cannot create (",
                                                    ec.message(), ")"))
         : Download(job_id, name, dest.string(), expected_bytes);
  if (!size.ok()) {
    for (const std::filesystem::path& dir : created) {
      std::filesystem::remove(dir, ec);  // only removes empty folders
    }
    return size.status();
  }
  return dest.string();
}

}  // namespace autoq::client
