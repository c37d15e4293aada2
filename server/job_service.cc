// JobService: the client API. See server/services.h.
#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/rpc_util.h"
#include "common/sha256.h"
#include "server/services.h"

namespace autoq::server {
namespace {

// Answers a unary call: `fill` returns the status to finish with.
template <typename Fill>
grpc::ServerUnaryReactor* Unary(grpc::CallbackServerContext* ctx, Fill fill) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(ToGrpc(fill()));
  return reactor;
}

// SubmitJob: the spec, then the model in chunks; validated on the pool.
class SubmitReactor : public grpc::ServerReadReactor<SubmitJobRequest> {
 public:
  SubmitReactor(JobManager* jobs, WorkPool pool, int64_t max_model_bytes,
                std::string owner, SubmitJobResponse* response)
      : jobs_(jobs),
        pool_(std::move(pool)),
        max_model_bytes_(max_model_bytes),
        owner_(std::move(owner)),
        response_(response) {
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client finished sending
      if (!have_spec_) {
        return Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                   "SubmitJob: no job spec was sent"));
      }
      pool_([this] {
        std::vector<std::string> warnings;
        absl::StatusOr<JobStatus> status =
            jobs_->Submit(owner_, spec_, model_, &warnings);
        model_.clear();
        if (status.ok()) {
          *response_->mutable_status() = *status;
          for (const std::string& w : warnings) response_->add_warnings(w);
        }
        Finish(ToGrpc(status.status()));
      });
      return;
    }
    if (request_.has_spec()) {
      if (have_spec_) {
        return Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                   "SubmitJob: the spec was sent twice"));
      }
      have_spec_ = true;
      spec_ = std::move(*request_.mutable_spec());
    } else {
      if (!have_spec_) {
        return Finish(grpc::Status(
            grpc::StatusCode::INVALID_ARGUMENT,
            "SubmitJob: the first message must be the job spec"));
      }
      const std::string& chunk = request_.model_chunk();
      if (static_cast<int64_t>(model_.size() + chunk.size()) >
          max_model_bytes_) {
        // Stop reading: an oversized upload is never held in full.
        return Finish(grpc::Status(
            grpc::StatusCode::INVALID_ARGUMENT,
            absl::StrCat("the model is larger than this server accepts (",
                         max_model_bytes_, " bytes; see --max-model-mb)")));
      }
      model_ += chunk;
    }
    StartRead(&request_);
  }

  void OnDone() override { delete this; }

 private:
  JobManager* jobs_;
  WorkPool pool_;
  int64_t max_model_bytes_;
  std::string owner_;
  SubmitJobResponse* response_;
  SubmitJobRequest request_;
  JobSpec spec_;
  bool have_spec_ = false;
  std::string model_;
};

// WatchJob: replays the feed after `after_seq`, then follows it; one write
// in flight; ends after the job's last event.
//
// Writes are started on the work pool only. StartWrite sends on the
// socket inline: on the publisher's thread (the job's serialized progress
// path) every completion would wait for one send per watcher, and in
// OnWriteDone, on gRPC's few callback threads, the sends of many watchers
// queue every LeaseTask behind them (bench/service_load_bench measures it).
class WatchReactor : public grpc::ServerWriteReactor<JobEvent> {
 private:
  // Lets a queued pump reach the reactor only while it lives.
  struct Link {
    WatchReactor* reactor = nullptr;
    std::mutex mu;
    std::atomic<bool> pump_queued{false};  // at most one pump queued
  };

 public:
  WatchReactor(std::shared_ptr<EventFeed> feed, int64_t after_seq,
               WorkPool pool)
      : feed_(std::move(feed)),
        cursor_(after_seq),
        pool_(std::move(pool)),
        link_(std::make_shared<Link>()) {
    link_->reactor = this;
    listener_ = feed_->Subscribe(
        [link = link_, pool = pool_] { QueuePump(link, pool); });
    QueuePump(link_, pool_);
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    if (!ok) {  // the client went away
      finished_ = true;
      Finish(grpc::Status::CANCELLED);
      return;
    }
    cursor_ = event_.seq();
    QueuePump(link_, pool_);
  }

  void OnCancel() override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!finished_ && !writing_) {
      finished_ = true;
      Finish(grpc::Status::CANCELLED);
    }
    cancelled_ = true;
  }

  void OnDone() override {
    feed_->Unsubscribe(listener_);
    {
      std::lock_guard<std::mutex> lock(link_->mu);
      link_->reactor = nullptr;
    }
    delete this;
  }

 private:
  // The flag is cleared before the pump runs, so an event published during
  // a pump queues another: no wake-up is lost.
  static void QueuePump(const std::shared_ptr<Link>& link,
                        const WorkPool& pool) {
    if (link->pump_queued.exchange(true)) return;
    pool([link] {
      link->pump_queued = false;
      std::lock_guard<std::mutex> lock(link->mu);
      if (link->reactor != nullptr) link->reactor->Pump();
    });
  }

  void Pump() {
    std::lock_guard<std::mutex> lock(mu_);
    if (writing_ || finished_) return;
    if (cancelled_) {
      finished_ = true;
      Finish(grpc::Status::CANCELLED);
      return;
    }
    if (feed_->Next(cursor_, &event_)) {
      writing_ = true;
      StartWrite(&event_);
      return;
    }
    if (feed_->Exhausted(cursor_)) {
      finished_ = true;
      Finish(grpc::Status::OK);
    }
  }

  std::shared_ptr<EventFeed> feed_;
  std::mutex mu_;
  int64_t cursor_;          // guarded by mu_: last seq written
  JobEvent event_;          // guarded by mu_: the write in flight
  bool writing_ = false;    // guarded by mu_
  bool finished_ = false;   // guarded by mu_
  bool cancelled_ = false;  // guarded by mu_
  WorkPool pool_;
  std::shared_ptr<Link> link_;
  int64_t listener_ = 0;
};

class JobServiceImpl : public JobService::CallbackService {
 public:
  JobServiceImpl(JobManager* jobs, const TokenAuth* auth, WorkPool pool,
                 ServiceLimits limits)
      : jobs_(jobs), auth_(auth), pool_(std::move(pool)), limits_(limits) {}

  grpc::ServerReadReactor<SubmitJobRequest>* SubmitJob(
      grpc::CallbackServerContext* ctx,
      SubmitJobResponse* response) override {
    absl::StatusOr<Principal> who = Authenticate(ctx, *auth_, Role::kClient);
    if (!who.ok()) return new Rejected<SubmitJobRequest>(who.status());
    return new SubmitReactor(jobs_, pool_, limits_.max_model_bytes, who->name,
                             response);
  }

  grpc::ServerUnaryReactor* GetJob(grpc::CallbackServerContext* ctx,
                                   const GetJobRequest* request,
                                   JobStatus* response) override {
    return Unary(ctx, [&]() -> absl::Status {
      absl::StatusOr<Principal> who = Authenticate(ctx, *auth_, Role::kClient);
      if (!who.ok()) return who.status();
      absl::StatusOr<JobStatus> s = jobs_->Get(who->name, request->job_id());
      if (!s.ok()) return s.status();
      *response = *std::move(s);
      return absl::OkStatus();
    });
  }

  grpc::ServerUnaryReactor* ListJobs(grpc::CallbackServerContext* ctx,
                                     const ListJobsRequest* request,
                                     ListJobsResponse* response) override {
    return Unary(ctx, [&]() -> absl::Status {
      absl::StatusOr<Principal> who = Authenticate(ctx, *auth_, Role::kClient);
      if (!who.ok()) return who.status();
      absl::StatusOr<std::vector<JobStatus>> list = jobs_->List(who->name);
      if (!list.ok()) return list.status();
      for (JobStatus& s : *list) *response->add_jobs() = std::move(s);
      return absl::OkStatus();
    });
  }

  grpc::ServerWriteReactor<JobEvent>* WatchJob(
      grpc::CallbackServerContext* ctx,
      const WatchJobRequest* request) override {
    absl::StatusOr<Principal> who = Authenticate(ctx, *auth_, Role::kClient);
    if (!who.ok()) return new RejectedWriter<JobEvent>(who.status());
    absl::StatusOr<std::shared_ptr<EventFeed>> feed =
        jobs_->Feed(who->name, request->job_id());
    if (!feed.ok()) return new RejectedWriter<JobEvent>(feed.status());
    return new WatchReactor(*std::move(feed), request->after_seq(), pool_);
  }

  grpc::ServerUnaryReactor* CancelJob(grpc::CallbackServerContext* ctx,
                                      const CancelJobRequest* request,
                                      JobStatus* response) override {
    return Unary(ctx, [&]() -> absl::Status {
      absl::StatusOr<Principal> who = Authenticate(ctx, *auth_, Role::kClient);
      if (!who.ok()) return who.status();
      absl::StatusOr<JobStatus> s = jobs_->Cancel(who->name, request->job_id());
      if (!s.ok()) return s.status();
      *response = *std::move(s);
      return absl::OkStatus();
    });
  }

  grpc::ServerUnaryReactor* GetResults(grpc::CallbackServerContext* ctx,
                                       const GetJobRequest* request,
                                       JobResults* response) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    absl::StatusOr<Principal> who = Authenticate(ctx, *auth_, Role::kClient);
    if (!who.ok()) {
      reactor->Finish(ToGrpc(who.status()));
      return reactor;
    }
    // Hashing the exports reads them: off gRPC's threads.
    pool_([this, reactor, owner = who->name, id = request->job_id(),
           response] {
      absl::StatusOr<JobResults> r = jobs_->Results(owner, id);
      if (r.ok()) *response = *std::move(r);
      reactor->Finish(ToGrpc(r.status()));
    });
    return reactor;
  }

  grpc::ServerWriteReactor<DataChunk>* DownloadArtifact(
      grpc::CallbackServerContext* ctx,
      const DownloadArtifactRequest* request) override {
    absl::StatusOr<Principal> who = Authenticate(ctx, *auth_, Role::kClient);
    if (!who.ok()) return new RejectedWriter<DataChunk>(who.status());
    return StreamBytes(pool_, [jobs = jobs_, owner = who->name,
                               id = request->job_id(),
                               name = request->name()] {
      return jobs->Artifact(owner, id, name);
    });
  }

 private:
  template <typename T>
  class Rejected : public grpc::ServerReadReactor<T> {
   public:
    explicit Rejected(const absl::Status& status) {
      this->Finish(ToGrpc(status));
    }
    void OnDone() override { delete this; }
  };
  template <typename T>
  class RejectedWriter : public grpc::ServerWriteReactor<T> {
   public:
    explicit RejectedWriter(const absl::Status& status) {
      this->Finish(ToGrpc(status));
    }
    void OnDone() override { delete this; }
  };

  JobManager* jobs_;
  const TokenAuth* auth_;
  WorkPool pool_;
  ServiceLimits limits_;
};

// Streams bytes produced on the pool, chunk by chunk.
class BytesReactor : public grpc::ServerWriteReactor<DataChunk> {
 public:
  BytesReactor(WorkPool pool, std::function<absl::StatusOr<std::string>()> load)
      : pool_(std::move(pool)) {
    pool_([this, load = std::move(load)] {
      absl::StatusOr<std::string> bytes = load();
      std::lock_guard<std::mutex> lock(mu_);
      if (cancelled_) return Finish(grpc::Status::CANCELLED);
      if (!bytes.ok()) return Finish(ToGrpc(bytes.status()));
      bytes_ = *std::move(bytes);
      chunk_.set_total_bytes(static_cast<int64_t>(bytes_.size()));
      chunk_.set_sha256(autoq::Sha256Hex(bytes_));
      WriteNextLocked();
    });
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!ok) return Finish(grpc::Status::CANCELLED);
    chunk_.Clear();
    WriteNextLocked();
  }

  void OnCancel() override {
    std::lock_guard<std::mutex> lock(mu_);
    cancelled_ = true;
  }

  void OnDone() override { delete this; }

 private:
  // The first chunk is written even for empty content: it carries the
  // size and hash.
  void WriteNextLocked() {
    if (started_ && offset_ >= bytes_.size()) return Finish(grpc::Status::OK);
    started_ = true;
    const size_t n = std::min(kChunkBytes, bytes_.size() - offset_);
    chunk_.set_data(bytes_.substr(offset_, n));
    offset_ += n;
    StartWrite(&chunk_);
  }

  WorkPool pool_;
  std::mutex mu_;
  std::string bytes_;
  size_t offset_ = 0;
  bool started_ = false;
  DataChunk chunk_;
  bool cancelled_ = false;
};

}  // namespace

absl::StatusOr<Principal> Authenticate(grpc::CallbackServerContext* ctx,
                                       const TokenAuth& auth, Role role) {
  const auto& metadata = ctx->client_metadata();
  auto it = metadata.find("authorization");
  absl::string_view value;
  if (it != metadata.end()) value = {it->second.data(), it->second.size()};
  return auth.Authenticate(value, role);
}

grpc::ServerWriteReactor<DataChunk>* StreamBytes(
    WorkPool pool, std::function<absl::StatusOr<std::string>()> load) {
  return new BytesReactor(std::move(pool), std::move(load));
}

std::unique_ptr<JobService::CallbackService> MakeJobService(
    JobManager* jobs, const TokenAuth* auth, WorkPool pool,
    ServiceLimits limits) {
  return std::make_unique<JobServiceImpl>(jobs, auth, std::move(pool), limits);
}

}  // namespace autoq::server
