// The gRPC services of autoq-server (callback API: one reactor per RPC,
// reactions never block; work that may take long — validating an upload,
// reading artifacts — runs on the server's work pool, and the worker API's
// store writes go to the StoreWriter, whose completion answers the RPC once
// the write is committed). Every RPC first checks its bearer token
// (server/auth.h); errors are converted to grpc::Status in one place
// (ToGrpc); unary calls are answered through one helper (server/unary.h).
//
// Thread-safety: the services are called by gRPC's threads; everything they
// share is thread-safe.
#ifndef AUTOQ_SERVER_SERVICES_H_
#define AUTOQ_SERVER_SERVICES_H_

#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>

#include "proto/autoq.grpc.pb.h"
#include "server/auth.h"
#include "server/job_manager.h"
#include "server/server_store.h"
#include "server/store_writer.h"
#include "server/task_queue.h"

namespace autoq::search {
class ResultStore;
}

namespace autoq::server {

// Runs blocking work off gRPC's threads.
using WorkPool = std::function<void(std::function<void()>)>;

struct ServiceLimits {
  int64_t max_model_bytes = int64_t{512} << 20;
  int lease_seconds = 60;
  int heartbeat_seconds = 10;
  int restart_grace_seconds = 30;  // see ServerOptions
  // A worker's wait when no task is queued (at most 50 ms while a job
  // runs: its next batch comes soon).
  int retry_after_ms = 500;
};

std::unique_ptr<JobService::CallbackService> MakeJobService(
    JobManager* jobs, const TokenAuth* auth, WorkPool pool,
    ServiceLimits limits);

// The worker side: registry of live workers, leases, completions. Expire()
// is called periodically by the server's timer. Worker rows are written
// through `writer` (the queue's), and the RPCs that change the store are
// answered by the writer's completions: a worker hears of a change only
// once it is committed.
class WorkerServiceImpl : public WorkerService::CallbackService {
 public:
  WorkerServiceImpl(ServerStore* store, search::ResultStore* results,
                    TaskQueue* queue, StoreWriter* writer, JobManager* jobs,
                    const TokenAuth* auth, WorkPool pool, ServiceLimits limits,
                    std::FILE* log);
  ~WorkerServiceImpl() override;

  // Requeues expired leases and forgets workers silent for a lease period
  // and 2 s (their leases expire first).
  void Expire(int64_t now_ms);
  // Stops handing out tasks (shutdown): LeaseTask answers "no task".
  void StopLeasing();

  grpc::ServerUnaryReactor* RegisterWorker(
      grpc::CallbackServerContext* ctx, const RegisterWorkerRequest* request,
      RegisterWorkerResponse* response) override;
  grpc::ServerUnaryReactor* LeaseTask(grpc::CallbackServerContext* ctx,
                                      const LeaseTaskRequest* request,
                                      LeaseTaskResponse* response) override;
  grpc::ServerUnaryReactor* Heartbeat(grpc::CallbackServerContext* ctx,
                                      const HeartbeatRequest* request,
                                      HeartbeatResponse* response) override;
  grpc::ServerUnaryReactor* CompleteTask(
      grpc::CallbackServerContext* ctx, const CompleteTaskRequest* request,
      CompleteTaskResponse* response) override;
  grpc::ServerWriteReactor<DataChunk>* FetchModel(
      grpc::CallbackServerContext* ctx,
      const FetchModelRequest* request) override;
  grpc::ServerUnaryReactor* UnregisterWorker(
      grpc::CallbackServerContext* ctx, const UnregisterWorkerRequest* request,
      UnregisterWorkerResponse* response) override;

  struct State;  // defined in worker_service.cc

 private:
  std::unique_ptr<State> state_;
};

// The principal of a call, or UNAUTHENTICATED.
absl::StatusOr<Principal> Authenticate(grpc::CallbackServerContext* ctx,
                                       const TokenAuth& auth, Role role);

// A write reactor that streams `bytes` in kChunkBytes chunks (the first
// carries the total size and SHA-256), one write in flight. `load` runs on
// the work pool and produces the bytes or an error.
grpc::ServerWriteReactor<DataChunk>* StreamBytes(
    WorkPool pool, std::function<absl::StatusOr<std::string>()> load);

}  // namespace autoq::server

#endif  // AUTOQ_SERVER_SERVICES_H_
