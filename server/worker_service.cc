// WorkerService: the worker API. See server/services.h.
#include <algorithm>
#include <atomic>
#include <functional>
#include <iterator>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/rpc_util.h"
#include "evaluator/task.h"
#include "search/result_store.h"
#include "search/sqlite_statement.h"
#include "common/status_macros.h"
#include "server/completion_check.h"
#include "server/services.h"
#include "server/store_writer.h"
#include "server/unary.h"

namespace autoq::server {
namespace {

// The retry period while a job runs; see AnswerLease.
constexpr int kBusyRetryAfterMs = 50;

std::string NewWorkerId() {
  std::random_device rd;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id = "w-";
  for (int i = 0; i < 12; ++i) id += kHex[rd() & 15];
  return id;
}

}  // namespace

struct WorkerServiceImpl::State {
  ServerStore* store;
  search::ResultStore* results;
  TaskQueue* queue;
  StoreWriter* writer;
  JobManager* jobs;
  const TokenAuth* auth;
  WorkPool pool;
  ServiceLimits limits;
  std::FILE* log;
  std::atomic<bool> leasing{true};

  struct Live {
    std::string name;
    std::vector<std::string> devices;
    int64_t last_seen_ms = 0;
  };
  struct JobInfo {
    JobSpec spec;
    std::string model_sha256;
  };
  std::mutex mu;
  std::map<std::string, Live> workers;  // guarded by mu
  std::map<std::string, std::shared_ptr<const JobInfo>> job_info;  // by mu

  void Log(const std::string& line) {
    if (log == nullptr) return;
    std::fprintf(log, "%s\n", line.c_str());
    std::fflush(log);
  }

  // Marks the worker alive; NOT_FOUND for an id this server does not know.
  absl::Status Touch(const std::string& worker_id) {
    std::lock_guard<std::mutex> lock(mu);
    auto it = workers.find(worker_id);
    if (it == workers.end()) {
      return absl::NotFoundError(
          absl::StrCat("unknown worker ", worker_id, ": register again"));
    }
    it->second.last_seen_ms = UnixMillis();
    return absl::OkStatus();
  }

  // The spec and model of a job; read from the store once per job.
  absl::StatusOr<std::shared_ptr<const JobInfo>> Info(
      const std::string& job_id) {
    {
      std::lock_guard<std::mutex> lock(mu);
      auto it = job_info.find(job_id);
      if (it != job_info.end()) return it->second;
    }
    absl::StatusOr<std::optional<JobRow>> row = store->GetJob(job_id);
    if (!row.ok()) return row.status();
    if (!row->has_value()) {
      return absl::InternalError(absl::StrCat("task of unknown job ", job_id));
    }
    auto info = std::make_shared<JobInfo>();
    if (!info->spec.ParseFromString((*row)->spec)) {
      return absl::DataLossError(
          absl::StrCat("the stored spec of ", job_id, " does not parse"));
    }
    info->model_sha256 = (*row)->model_sha256;
    std::lock_guard<std::mutex> lock(mu);
    job_info[job_id] = info;
    return std::shared_ptr<const JobInfo>(info);
  }

  void Broadcast(const std::string& worker_id, const Live& live, bool joined) {
    WorkerChange change;
    change.set_worker_id(worker_id);
    change.set_name(live.name);
    for (const std::string& d : live.devices) change.add_devices(d);
    change.set_joined(joined);
    jobs->BroadcastWorker(change);
  }

  // The worker is gone from `workers`: its leases go back to the queue and
  // its row is deleted; `done` (may be empty) once that is written.
  void Left(const std::string& worker_id, const Live& live, const char* why,
            std::function<void()> done) {
    queue->ReleaseWorkerAsync(worker_id, nullptr);
    writer->Submit(
        {nullptr,
         [worker_id](ServerStore::Batch& b) {
           return b.DeleteWorker(worker_id);
         },
         [this, worker_id, live, why, done = std::move(done)](absl::Status st) {
           if (!st.ok()) {
             Log(absl::StrCat("cannot forget ", worker_id, ": ", st.message()));
           }
           Broadcast(worker_id, live, /*joined=*/false);
           Log(absl::StrCat("worker ", worker_id, " (", live.name,
                            ") left: ", why));
           if (done) done();
         }});
  }

  // Answers LeaseTask with `lease`, on the writer's thread.
  void AnswerLease(const std::string& worker_id,
                   absl::StatusOr<std::optional<Lease>> lease,
                   LeaseTaskResponse* response, Reply reply) {
    if (!lease.ok()) return reply(lease.status());
    if (!lease->has_value()) {
      // A running job's next batch comes soon (its search between two
      // generations): workers idle for a whole retry period would leave
      // that much of every generation's start unused.
      if (jobs->Running() > 0) {
        response->set_retry_after_ms(
            std::min(limits.retry_after_ms, kBusyRetryAfterMs));
      }
      return reply(absl::OkStatus());
    }
    const Lease& l = **lease;
    absl::StatusOr<std::shared_ptr<const JobInfo>> info = Info(l.task.job_id);
    if (!info.ok()) {
      // Unservable: give the task back rather than lose it.
      queue->FailAsync(
          worker_id, l.lease_id, l.task.task_id,
          std::string(info.status().message()),
          [reply, why = info.status()](absl::Status) { reply(why); });
      return;
    }
    Task* task = response->mutable_task();
    task->set_task_id(absl::StrCat(l.task.task_id));
    task->set_job_id(l.task.job_id);
    task->set_key(l.task.key);
    task->set_stage(static_cast<TaskStage>(l.task.stage));
    for (int b : l.task.wbits) task->add_wbits(b);
    for (int b : l.task.abits) task->add_abits(b);
    task->set_model_sha256((*info)->model_sha256);
    *task->mutable_spec() = (*info)->spec;
    response->set_lease_id(l.lease_id);
    response->set_deadline_unix_ms(l.deadline_ms);
    reply(absl::OkStatus());
  }

  // CompleteTask. `request` and `response` live until `reply` is called.
  void Complete(const CompleteTaskRequest* request,
                CompleteTaskResponse* response, Reply reply) {
    int64_t task_id = 0;
    if (!absl::SimpleAtoi(request->task_id(), &task_id)) {
      return reply(absl::InvalidArgumentError(
          absl::StrCat("bad task id \"", request->task_id(), "\"")));
    }
    (void)Touch(request->worker_id());  // a completion is a sign of life
    if (request->outcome_case() == CompleteTaskRequest::kError) {
      Log(absl::StrCat("task ", task_id, " failed on ", request->worker_id(),
                       ": ", request->error()));
      return queue->FailAsync(request->worker_id(), request->lease_id(),
                              task_id, request->error(), reply);
    }
    if (request->outcome_case() != CompleteTaskRequest::kResult) {
      return reply(absl::InvalidArgumentError(
          "CompleteTask needs a result or an error"));
    }
    if (absl::Status names = CheckArtifactNames(*request); !names.ok()) {
      return reply(names);
    }
    auto encoded = std::make_shared<const std::string>(
        request->result().SerializeAsString());
    // On the writer's thread, before the task's row goes: storing exports
    // may take a while, and there it never contends with the queue's
    // writes for the database's write lock.
    search::ResultStore* results = this->results;
    auto persist = [request, results,
                    encoded](const TaskRow& task) -> absl::Status {
      RETURN_IF_ERROR(CheckResult(*request, task.stage, task.wbits, *encoded));
      const EvalResult& result = request->result();
      // One transaction: a stored final result implies its artifacts, and
      // a failed write (a full disk) leaves neither.
      search::ResultStore::ArtifactViews artifacts;
      for (const NamedBytes& a : request->artifacts()) {
        artifacts.emplace_back(a.name(), a.data());
      }
      search::ResultSummary summary;
      summary.val_top1 = result.best_val_top1();
      summary.size_bytes = result.size_bytes();
      summary.wall_seconds = result.wall_seconds();
      summary.device = result.device();
      return results->PutWithArtifacts(task.key, *encoded, summary, artifacts);
    };
    queue->CompleteAsync(
        request->worker_id(), request->lease_id(), task_id, *encoded,
        std::move(persist),
        [response, reply](absl::StatusOr<TaskQueue::CompleteOutcome> outcome) {
          if (outcome.ok()) {
            response->set_duplicate(*outcome ==
                                    TaskQueue::CompleteOutcome::kDuplicate);
          }
          if (search::IsDiskFull(outcome.status())) {
            // UNAVAILABLE, not RESOURCE_EXHAUSTED: a worker keeps its
            // result and exports and sends them again later; it drops
            // exports only when a message is too large.
            reply(absl::UnavailableError(absl::StrCat(
                "the server cannot store results now: ",
                outcome.status().message())));
            return;
          }
          reply(outcome.status());
        });
  }
};

WorkerServiceImpl::WorkerServiceImpl(ServerStore* store,
                                     search::ResultStore* results,
                                     TaskQueue* queue, StoreWriter* writer,
                                     JobManager* jobs, const TokenAuth* auth,
                                     WorkPool pool, ServiceLimits limits,
                                     std::FILE* log)
    : state_(new State{store,
                       results,
                       queue,
                       writer,
                       jobs,
                       auth,
                       std::move(pool),
                       limits,
                       log,
                       {true},
                       {},
                       {},
                       {}}) {
  // Workers registered before a restart get the restart grace (or a lease
  // period) to come back, as their leases do.
  absl::StatusOr<std::vector<WorkerRow>> rows = store->ListWorkers();
  if (rows.ok()) {
    const int64_t now =
        UnixMillis() +
        int64_t{1000} *
            std::max(0, limits.restart_grace_seconds - limits.lease_seconds);
    for (const WorkerRow& w : *rows) {
      state_->workers[w.worker_id] = State::Live{w.name, w.devices, now};
    }
  }
}

WorkerServiceImpl::~WorkerServiceImpl() = default;

void WorkerServiceImpl::StopLeasing() { state_->leasing = false; }

void WorkerServiceImpl::Expire(int64_t now_ms) {
  const std::vector<int64_t> expired = state_->queue->ExpireLeases(now_ms);
  if (!expired.empty()) {
    state_->Log(absl::StrCat(expired.size(),
                             " lease(s) expired: task(s) queued again"));
  }
  std::vector<std::pair<std::string, State::Live>> gone;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    // A lease's deadline is set just after its worker was last seen, so a
    // worker silent for exactly a lease period could be dropped (its
    // leases released quietly) a tick before its leases expire. The extra
    // seconds let the leases expire first, with their log line.
    const int64_t limit =
        now_ms - int64_t{1000} * (state_->limits.lease_seconds + 2);
    for (auto it = state_->workers.begin(); it != state_->workers.end();) {
      if (it->second.last_seen_ms < limit) {
        gone.emplace_back(it->first, it->second);
        it = state_->workers.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (const auto& [id, live] : gone) {
    state_->Left(id, live, "no heartbeat for a lease period", nullptr);
  }
}

grpc::ServerUnaryReactor* WorkerServiceImpl::RegisterWorker(
    grpc::CallbackServerContext* ctx, const RegisterWorkerRequest* request,
    RegisterWorkerResponse* response) {
  State* state = state_.get();
  return Unary(
      ctx, *state->auth, Role::kWorker, [&](const Principal& who, Reply reply) {
        if (request->devices().empty()) {
          return reply(
              absl::InvalidArgumentError("a worker must name its devices"));
        }
        WorkerRow row;
        row.worker_id = NewWorkerId();
        row.name = request->name().empty() ? who.name : request->name();
        row.devices.assign(request->devices().begin(),
                           request->devices().end());
        row.registered_ms = UnixMillis();
        state->writer->Submit(
            {nullptr, [row](ServerStore::Batch& b) { return b.PutWorker(row); },
             [state, row, response, reply](absl::Status st) {
               if (!st.ok()) return reply(st);
               const State::Live live{row.name, row.devices, row.registered_ms};
               {
                 std::lock_guard<std::mutex> lock(state->mu);
                 state->workers[row.worker_id] = live;
               }
               response->set_worker_id(row.worker_id);
               response->set_lease_seconds(state->limits.lease_seconds);
               response->set_heartbeat_seconds(state->limits.heartbeat_seconds);
               state->Broadcast(row.worker_id, live, /*joined=*/true);
               state->Log(absl::StrCat("worker ", row.worker_id, " (", row.name,
                                       ", ", absl::StrJoin(row.devices, ","),
                                       ") joined"));
               reply(absl::OkStatus());
             }});
      });
}

grpc::ServerUnaryReactor* WorkerServiceImpl::LeaseTask(
    grpc::CallbackServerContext* ctx, const LeaseTaskRequest* request,
    LeaseTaskResponse* response) {
  State* state = state_.get();
  return Unary(ctx, *state->auth, Role::kWorker,
               [&](const Principal&, Reply reply) {
                 absl::Status alive = state->Touch(request->worker_id());
                 if (!alive.ok()) return reply(alive);
                 response->set_retry_after_ms(state->limits.retry_after_ms);
                 if (!state->leasing) return reply(absl::OkStatus());
                 state->queue->LeaseNextAsync(
                     request->worker_id(), UnixMillis(),
                     [state, request, response,
                      reply](absl::StatusOr<std::optional<Lease>> lease) {
                       state->AnswerLease(request->worker_id(),
                                          std::move(lease), response, reply);
                     });
               });
}

grpc::ServerUnaryReactor* WorkerServiceImpl::Heartbeat(
    grpc::CallbackServerContext* ctx, const HeartbeatRequest* request,
    HeartbeatResponse* response) {
  State* state = state_.get();
  return Unary(ctx, *state->auth, Role::kWorker,
               [&](const Principal&, Reply reply) {
                 absl::Status alive = state->Touch(request->worker_id());
                 if (!alive.ok()) return reply(alive);
                 std::vector<std::string> leases(request->lease_ids().begin(),
                                                 request->lease_ids().end());
                 state->queue->HeartbeatAsync(
                     request->worker_id(), leases, UnixMillis(),
                     [response, reply](absl::StatusOr<int64_t> deadline,
                                       std::vector<std::string> lost) {
                       if (!deadline.ok()) return reply(deadline.status());
                       response->set_deadline_unix_ms(*deadline);
                       for (const std::string& l : lost)
                         response->add_lost_lease_ids(l);
                       reply(absl::OkStatus());
                     });
               });
}

grpc::ServerUnaryReactor* WorkerServiceImpl::CompleteTask(
    grpc::CallbackServerContext* ctx, const CompleteTaskRequest* request,
    CompleteTaskResponse* response) {
  State* state = state_.get();
  return Unary(ctx, *state->auth, Role::kWorker,
               [&](const Principal&, Reply reply) {
                 state->Complete(request, response, reply);
               });
}

grpc::ServerWriteReactor<DataChunk>* WorkerServiceImpl::FetchModel(
    grpc::CallbackServerContext* ctx, const FetchModelRequest* request) {
  absl::StatusOr<Principal> who =
      Authenticate(ctx, *state_->auth, Role::kWorker);
  ServerStore* store = state_->store;
  const std::string sha = request->sha256();
  return StreamBytes(
      state_->pool,
      [who = std::move(who), store, sha]() -> absl::StatusOr<std::string> {
        if (!who.ok()) return who.status();
        absl::StatusOr<std::optional<std::string>> model = store->GetModel(sha);
        if (!model.ok()) return model.status();
        if (!model->has_value()) {
          return absl::NotFoundError(
              absl::StrCat("no model with SHA-256 ", sha));
        }
        return **std::move(model);
      });
}

grpc::ServerUnaryReactor* WorkerServiceImpl::UnregisterWorker(
    grpc::CallbackServerContext* ctx, const UnregisterWorkerRequest* request,
    UnregisterWorkerResponse* response) {
  State* state = state_.get();
  return Unary(ctx, *state->auth, Role::kWorker,
               [&](const Principal&, Reply reply) {
                 State::Live live;
                 {
                   std::lock_guard<std::mutex> lock(state->mu);
                   auto it = state->workers.find(request->worker_id());
                   if (it == state->workers.end())
                     return reply(absl::OkStatus());
                   live = it->second;
                   state->workers.erase(it);
                 }
                 state->Left(request->worker_id(), live, "unregistered",
                             [reply] { reply(absl::OkStatus()); });
               });
}

}  // namespace autoq::server
