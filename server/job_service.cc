// JobService: the client API. See server/services.h.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/rpc_util.h"
#include "common/sha256.h"
#include "server/services.h"
#include "server/submit_stream.h"
#include "server/unary.h"

namespace autoq::server {
namespace {

// SubmitJob: the spec, then the model in chunks; validated on the pool.
class SubmitReactor : public grpc::ServerReadReactor<SubmitJobRequest> {
 public:
  SubmitReactor(JobManager* jobs, WorkPool pool, int64_t max_model_bytes,
                std::string owner, SubmitJobResponse* response)
      : jobs_(jobs),
        pool_(std::move(pool)),
        stream_(max_model_bytes),
        owner_(std::move(owner)),
        response_(response) {
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client finished sending
      if (absl::Status st = stream_.Finish(); !st.ok()) {
        return Finish(ToGrpc(st));
      }
      pool_([this] {
        std::vector<std::string> warnings;
        absl::StatusOr<JobStatus> status = jobs_->Submit(
            owner_, stream_.spec(), stream_.model(), &warnings);
        stream_.model().clear();
        if (status.ok()) {
          *response_->mutable_status() = *status;
          for (const std::string& w : warnings) response_->add_warnings(w);
        }
        Finish(ToGrpc(status.status()));
      });
      return;
    }
    // An error stops reading: an oversized upload is never held in full.
    if (absl::Status st = stream_.Add(&request_); !st.ok()) {
      return Finish(ToGrpc(st));
    }
    StartRead(&request_);
  }

  void OnDone() override { delete this; }

 private:
  JobManager* jobs_;
  WorkPool pool_;
  SubmitStream stream_;
  std::string owner_;
  SubmitJobResponse* response_;
  SubmitJobRequest request_;
};

// The state a watch reactor shares with what pokes it (its feed's
// listener, the pool, the flusher): lets a queued pump reach the reactor
// only while it lives.
struct WatchLink;

// Sends watch streams their new events in rounds: a stream that was just
// written waits for the next round (`period`) and then gets every event
// that came meanwhile in one message. Under load that is one send and one
// wake-up of the client per stream and round instead of per event; an idle
// stream waits at most one round.
class WatchFlusher {
 public:
  WatchFlusher(WorkPool pool, std::chrono::milliseconds period);
  ~WatchFlusher();  // stops the thread; pending rounds are dropped

  // Pumps `link` in the next round (once, however often it is woken).
  void Wake(const std::shared_ptr<WatchLink>& link);

  // Runs the reactor's pump on the pool (at most one queued at a time).
  static void QueuePump(const std::shared_ptr<WatchLink>& link,
                        const WorkPool& pool);

  const WorkPool& pool() const { return pool_; }

 private:
  void Loop();

  WorkPool pool_;
  const std::chrono::milliseconds period_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::shared_ptr<WatchLink>> next_round_;  // guarded by mu_
  bool stopping_ = false;                               // guarded by mu_
  std::thread thread_;
};

// WatchJob: replays the feed after `after_seq`, then follows it, in
// batches of events (JobEvents); one write in flight; ends after the job's
// last event.
//
// Writes are started on the work pool only. StartWrite sends on the socket
// inline: on the publisher's thread (the job's serialized progress path)
// every completion would wait for one send per watcher, and in
// OnWriteDone, on gRPC's few callback threads, the sends of many watchers
// would queue every LeaseTask behind them (bench/service_load_bench
// measures it). A stream that is a whole batch behind (a replay) writes
// the next batch at once; otherwise it waits for the flusher's next round.
class WatchReactor : public grpc::ServerWriteReactor<JobEvents> {
 public:
  WatchReactor(std::shared_ptr<EventFeed> feed, int64_t after_seq,
               WatchFlusher* flusher);

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;
  void Pump();

 private:
  // Events per message: bounds a replay's messages (events are small).
  static constexpr size_t kMaxBatch = 512;

  void PumpLocked();

  std::shared_ptr<EventFeed> feed_;
  WatchFlusher* flusher_;
  std::mutex mu_;
  int64_t cursor_;          // guarded by mu_: last seq written
  JobEvents batch_;         // guarded by mu_: in flight
  int64_t batch_last_ = 0;  // guarded by mu_: its last seq
  bool writing_ = false;    // guarded by mu_
  bool finished_ = false;   // guarded by mu_
  bool cancelled_ = false;  // guarded by mu_
  std::shared_ptr<WatchLink> link_;
  int64_t listener_ = 0;
};

struct WatchLink {
  WatchReactor* reactor = nullptr;  // guarded by mu; null once done
  std::mutex mu;
  std::atomic<bool> pump_queued{false};  // at most one pump queued
  std::atomic<bool> in_round{false};     // in the flusher's next round
  // A write is in flight: its OnWriteDone goes on, so a new event needs
  // no wake-up (under load most pokes find a write in flight).
  std::atomic<bool> writing{false};
};

WatchFlusher::WatchFlusher(WorkPool pool, std::chrono::milliseconds period)
    : pool_(std::move(pool)), period_(period), thread_([this] { Loop(); }) {}

WatchFlusher::~WatchFlusher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void WatchFlusher::Wake(const std::shared_ptr<WatchLink>& link) {
  if (link->in_round.exchange(true)) return;
  bool first;
  {
    std::lock_guard<std::mutex> lock(mu_);
    first = next_round_.empty();
    next_round_.push_back(link);
  }
  if (first) cv_.notify_one();
}

void WatchFlusher::QueuePump(const std::shared_ptr<WatchLink>& link,
                             const WorkPool& pool) {
  // The flag is cleared before the pump runs, so an event published during
  // a pump queues another: no wake-up is lost.
  if (link->pump_queued.exchange(true)) return;
  pool([link] {
    link->pump_queued = false;
    std::lock_guard<std::mutex> lock(link->mu);
    if (link->reactor != nullptr) link->reactor->Pump();
  });
}

void WatchFlusher::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stopping_ || !next_round_.empty(); });
    if (stopping_) return;
    // The round's length gathers events; then every stream woken meanwhile
    // is pumped.
    if (cv_.wait_for(lock, period_, [&] { return stopping_; })) return;
    std::vector<std::shared_ptr<WatchLink>> round;
    round.swap(next_round_);
    lock.unlock();
    for (const std::shared_ptr<WatchLink>& link : round) {
      link->in_round = false;
      QueuePump(link, pool_);
    }
    lock.lock();
  }
}

WatchReactor::WatchReactor(std::shared_ptr<EventFeed> feed, int64_t after_seq,
                           WatchFlusher* flusher)
    : feed_(std::move(feed)),
      flusher_(flusher),
      cursor_(after_seq),
      link_(std::make_shared<WatchLink>()) {
  link_->reactor = this;
  listener_ = feed_->Subscribe([link = link_, flusher] {
    if (!link->writing.load()) flusher->Wake(link);
  });
  // The history now, not a round later.
  WatchFlusher::QueuePump(link_, flusher_->pool());
}

void WatchReactor::OnWriteDone(bool ok) {
  std::lock_guard<std::mutex> lock(mu_);
  writing_ = false;
  link_->writing = false;
  if (!ok) {  // the client went away
    finished_ = true;
    Finish(grpc::Status::CANCELLED);
    return;
  }
  cursor_ = batch_last_;
  batch_.Clear();
  // Read after `writing` is cleared: an event published before that found
  // the write in flight and woke nobody, so it is seen here.
  const int64_t last = feed_->last_seq();
  if (last - cursor_ >= static_cast<int64_t>(kMaxBatch)) {
    return WatchFlusher::QueuePump(link_, flusher_->pool());
  }
  if (cursor_ < last) return flusher_->Wake(link_);
  // Caught up: the listener wakes the stream; or the feed ended.
  PumpLocked();
}

void WatchReactor::OnCancel() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!finished_ && !writing_) {
    finished_ = true;
    Finish(grpc::Status::CANCELLED);
  }
  cancelled_ = true;
}

void WatchReactor::OnDone() {
  feed_->Unsubscribe(listener_);
  {
    std::lock_guard<std::mutex> lock(link_->mu);
    link_->reactor = nullptr;
  }
  delete this;
}

void WatchReactor::Pump() {
  std::lock_guard<std::mutex> lock(mu_);
  PumpLocked();
}

void WatchReactor::PumpLocked() {
  if (writing_ || finished_) return;
  if (cancelled_) {
    finished_ = true;
    Finish(grpc::Status::CANCELLED);
    return;
  }
  const std::vector<std::shared_ptr<const JobEvent>> events =
      feed_->Since(cursor_, kMaxBatch);
  if (!events.empty()) {
    batch_.Clear();
    for (const std::shared_ptr<const JobEvent>& e : events) {
      *batch_.add_events() = *e;
    }
    batch_last_ = events.back()->seq();
    writing_ = true;
    link_->writing = true;
    StartWrite(&batch_);
    return;
  }
  if (feed_->Exhausted(cursor_)) {
    finished_ = true;
    Finish(grpc::Status::OK);
  }
}

class JobServiceImpl : public JobService::CallbackService {
 public:
  JobServiceImpl(JobManager* jobs, const TokenAuth* auth, WorkPool pool,
                 ServiceLimits limits)
      : jobs_(jobs),
        auth_(auth),
        pool_(std::move(pool)),
        limits_(limits),
        flusher_(pool_, std::chrono::milliseconds(kWatchRoundMs)) {}

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
    return Unary(
        ctx, *auth_, Role::kClient, [&](const Principal& who, Reply reply) {
          absl::StatusOr<JobStatus> s = jobs_->Get(who.name, request->job_id());
          if (s.ok()) *response = *std::move(s);
          reply(s.status());
        });
  }

  grpc::ServerUnaryReactor* ListJobs(grpc::CallbackServerContext* ctx,
                                     const ListJobsRequest* request,
                                     ListJobsResponse* response) override {
    return Unary(
        ctx, *auth_, Role::kClient, [&](const Principal& who, Reply reply) {
          absl::StatusOr<std::vector<JobStatus>> list = jobs_->List(who.name);
          if (list.ok()) {
            for (JobStatus& s : *list) *response->add_jobs() = std::move(s);
          }
          reply(list.status());
        });
  }

  grpc::ServerWriteReactor<JobEvents>* WatchJob(
      grpc::CallbackServerContext* ctx,
      const WatchJobRequest* request) override {
    absl::StatusOr<Principal> who = Authenticate(ctx, *auth_, Role::kClient);
    if (!who.ok()) return new RejectedWriter<JobEvents>(who.status());
    absl::StatusOr<std::shared_ptr<EventFeed>> feed =
        jobs_->Feed(who->name, request->job_id());
    if (!feed.ok()) return new RejectedWriter<JobEvents>(feed.status());
    return new WatchReactor(*std::move(feed), request->after_seq(), &flusher_);
  }

  grpc::ServerUnaryReactor* CancelJob(grpc::CallbackServerContext* ctx,
                                      const CancelJobRequest* request,
                                      JobStatus* response) override {
    return Unary(ctx, *auth_, Role::kClient,
                 [&](const Principal& who, Reply reply) {
                   // Stores the job's state and waits for the queue's deletes:
                   // off gRPC's threads.
                   pool_([this, owner = who.name, id = request->job_id(),
                          response, reply] {
                     absl::StatusOr<JobStatus> s = jobs_->Cancel(owner, id);
                     if (s.ok()) *response = *std::move(s);
                     reply(s.status());
                   });
                 });
  }

  grpc::ServerUnaryReactor* GetResults(grpc::CallbackServerContext* ctx,
                                       const GetJobRequest* request,
                                       JobResults* response) override {
    return Unary(ctx, *auth_, Role::kClient,
                 [&](const Principal& who, Reply reply) {
                   // Hashing the exports reads them: off gRPC's threads.
                   pool_([this, owner = who.name, id = request->job_id(),
                          response, reply] {
                     absl::StatusOr<JobResults> r = jobs_->Results(owner, id);
                     if (r.ok()) *response = *std::move(r);
                     reply(r.status());
                   });
                 });
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

  // A round of the watch flusher: what an event may wait before it is
  // sent to a watcher that is up to date.
  static constexpr int kWatchRoundMs = 50;

  JobManager* jobs_;
  const TokenAuth* auth_;
  WorkPool pool_;
  ServiceLimits limits_;
  WatchFlusher flusher_;
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
