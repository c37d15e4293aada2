#include "server/server.h"

#include <algorithm>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/file_util.h"
#include "common/rpc_util.h"
#include "search/result_store.h"
#include "server/job_manager.h"
#include "server/server_store.h"
#include "server/services.h"
#include "server/store_writer.h"
#include "server/task_queue.h"

namespace autoq::server {
namespace {


}  // namespace

struct AutoqServer::Impl {
  ServerOptions options;
  TokenAuth auth;
  std::unique_ptr<search::ResultStore> results;
  std::unique_ptr<ServerStore> store;
  std::unique_ptr<TaskQueue> queue;
  // After the queue: destroyed before it, once its last writes are done
  // (Shutdown resets it after the last RPC has been answered).
  std::unique_ptr<StoreWriter> writer;  // swapped out under mu
  StoreWriter::Stats last_writer_stats;  // guarded by mu, once writer is gone
  std::unique_ptr<JobManager> jobs;
  std::unique_ptr<boost::asio::thread_pool> pool;
  std::unique_ptr<JobService::CallbackService> job_service;
  std::unique_ptr<WorkerServiceImpl> worker_service;
  std::unique_ptr<grpc::Server> server;
  int port = 0;

  boost::asio::io_context io;
  std::unique_ptr<boost::asio::steady_timer> timer;
  std::thread io_thread;

  std::mutex mu;
  std::condition_variable cv;
  bool shut_down = false;  // guarded by mu: Shutdown began
  bool stopped = false;    // guarded by mu: Shutdown finished

  void Tick() {
    timer->expires_after(std::chrono::seconds(1));
    timer->async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;  // cancelled: shutting down
      worker_service->Expire(UnixMillis());
      Tick();
    });
  }
};

AutoqServer::AutoqServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

AutoqServer::~AutoqServer() { Shutdown(); }

absl::StatusOr<std::unique_ptr<AutoqServer>> AutoqServer::Start(
    ServerOptions options, TokenAuth auth) {
  // Debian builds Abseil without NDEBUG, so every absl::Mutex lock (gRPC
  // takes several per RPC) would also update a process-wide lock graph
  // under a global lock: a few percent of the service's CPU, and contention
  // between its threads. Lock-order bugs are the tests' business.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  options.max_model_bytes = std::clamp<int64_t>(options.max_model_bytes, 1024,
                                                (int64_t{1} << 31) - 1);
  options.max_message_bytes =
      std::clamp(options.max_message_bytes, 1 << 20, 1 << 30);
  options.max_jobs_per_client = std::clamp(options.max_jobs_per_client, 1, 10000);
  options.lease_seconds = std::clamp(options.lease_seconds, 2, 86400);
  options.heartbeat_seconds = std::clamp(options.heartbeat_seconds, 1,
                                         std::max(1, options.lease_seconds / 3));
  options.work_threads = std::clamp(options.work_threads, 1, 64);
  options.restart_grace_seconds =
      std::clamp(options.restart_grace_seconds, 0, 86400);
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return absl::InvalidArgumentError(
        "TLS needs both a certificate and a key file");
  }
  if (auth.size() == 0) {
    return absl::InvalidArgumentError("no client or worker token is known");
  }

  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->auth = std::move(auth);
  const std::filesystem::path db(options.database);
  if (db.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(db.parent_path(), ec);
  }
  absl::StatusOr<std::unique_ptr<search::ResultStore>> results =
      search::ResultStore::Open(options.database);
  if (!results.ok()) return results.status();
  impl->results = *std::move(results);
  absl::StatusOr<std::unique_ptr<ServerStore>> store =
      ServerStore::Open(options.database);
  if (!store.ok()) return store.status();
  impl->store = *std::move(store);
  absl::Status writable = impl->store->CheckWritable();
  if (!writable.ok()) return writable;
  TaskQueueOptions qopt;
  qopt.lease_ms = int64_t{1000} * options.lease_seconds;
  qopt.restart_grace_ms = int64_t{1000} * options.restart_grace_seconds;
  impl->writer = std::make_unique<StoreWriter>(impl->store.get());
  absl::StatusOr<std::unique_ptr<TaskQueue>> queue = TaskQueue::Open(
      impl->store.get(), qopt, UnixMillis(), impl->writer.get());
  if (!queue.ok()) return queue.status();
  impl->queue = *std::move(queue);

  JobManagerOptions jopt;
  jopt.max_model_bytes = options.max_model_bytes;
  jopt.max_active_jobs_per_client = options.max_jobs_per_client;
  jopt.model_check = options.model_check;
  jopt.disk_full_retry_ms = options.disk_full_retry_ms;
  jopt.log = options.log;
  impl->jobs = std::make_unique<JobManager>(
      impl->store.get(), impl->results.get(), impl->queue.get(), jopt);

  impl->pool = std::make_unique<boost::asio::thread_pool>(options.work_threads);
  Impl* raw = impl.get();
  WorkPool pool = [raw](std::function<void()> work) {
    boost::asio::post(*raw->pool, std::move(work));
  };
  ServiceLimits limits;
  limits.max_model_bytes = options.max_model_bytes;
  limits.lease_seconds = options.lease_seconds;
  limits.heartbeat_seconds = options.heartbeat_seconds;
  limits.restart_grace_seconds = options.restart_grace_seconds;
  impl->job_service =
      MakeJobService(impl->jobs.get(), &impl->auth, pool, limits);
  impl->worker_service = std::make_unique<WorkerServiceImpl>(
      impl->store.get(), impl->results.get(), impl->queue.get(),
      impl->writer.get(), impl->jobs.get(), &impl->auth, pool, limits,
      options.log);

  std::shared_ptr<grpc::ServerCredentials> credentials;
  if (options.tls_cert_file.empty()) {
    credentials = grpc::InsecureServerCredentials();
  } else {
    absl::StatusOr<std::string> cert = ReadFile(options.tls_cert_file);
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadFile(options.tls_key_file);
    if (!key.ok()) return key.status();
    grpc::SslServerCredentialsOptions ssl;
    ssl.pem_key_cert_pairs.push_back({*key, *cert});
    credentials = grpc::SslServerCredentials(ssl);
  }
  // Process-wide in gRPC: read when a server is built.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen, credentials, &impl->port);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  builder.RegisterService(impl->job_service.get());
  builder.RegisterService(impl->worker_service.get());
  impl->server = builder.BuildAndStart();
  if (impl->server == nullptr || impl->port == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.listen));
  }

  // Ready for clients once the jobs are back, not merely listening.
  grpc::HealthCheckServiceInterface* health =
      impl->server->GetHealthCheckService();
  if (health != nullptr) health->SetServingStatus(false);

  // Jobs restart only once the workers can reach us.
  absl::Status recovered = impl->jobs->Recover();
  if (!recovered.ok()) return recovered;
  if (health != nullptr) health->SetServingStatus(true);

  impl->timer = std::make_unique<boost::asio::steady_timer>(impl->io);
  impl->Tick();
  impl->io_thread = std::thread([raw] { raw->io.run(); });
  if (options.log != nullptr) {
    std::fprintf(options.log,
                 "autoq-server: listening on port %d (%s), database %s\n",
                 impl->port, options.tls_cert_file.empty() ? "plain" : "TLS",
                 options.database.c_str());
    std::fflush(options.log);
  }
  return std::unique_ptr<AutoqServer>(new AutoqServer(std::move(impl)));
}

int AutoqServer::port() const { return impl_->port; }

void AutoqServer::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->shut_down) return;
    impl_->shut_down = true;
  }
  Impl& s = *impl_;
  // Load balancers and Kubernetes stop sending work first.
  if (grpc::HealthCheckServiceInterface* health =
          s.server->GetHealthCheckService()) {
    health->SetServingStatus(false);
  }
  s.worker_service->StopLeasing();
  s.jobs->Shutdown();
  // In-flight calls (a completion being stored) get a few seconds.
  s.server->Shutdown(std::chrono::system_clock::now() +
                     std::chrono::seconds(5));
  boost::asio::post(s.io, [&s] { s.timer->cancel(); });
  s.io.stop();
  if (s.io_thread.joinable()) s.io_thread.join();
  s.pool->join();
  s.jobs.reset();  // joins the job threads
  s.server->Wait();
  std::unique_ptr<StoreWriter> writer;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    writer = std::move(s.writer);
    s.last_writer_stats = writer->stats();
  }
  writer.reset();  // writes what is left
  if (s.options.log != nullptr) {
    std::fprintf(s.options.log, "autoq-server: stopped\n");
    std::fflush(s.options.log);
  }
  std::lock_guard<std::mutex> lock(s.mu);
  s.stopped = true;
  s.cv.notify_all();
}

ServerStats AutoqServer::stats() const {
  ServerStats out;
  std::lock_guard<std::mutex> lock(impl_->mu);
  const StoreWriter::Stats w = impl_->writer != nullptr
                                   ? impl_->writer->stats()
                                   : impl_->last_writer_stats;
  out.write_groups = w.groups;
  out.writes = w.writes;
  out.largest_group = w.largest;
  out.writer_busy_seconds = w.busy_seconds;
  return out;
}

void AutoqServer::Wait() {
  std::unique_lock<std::mutex> lock(impl_->mu);
  impl_->cv.wait(lock, [&] { return impl_->stopped; });
}

}  // namespace autoq::server
