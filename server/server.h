// autoq-server assembled: the stores, the task queue, the job manager, the
// two gRPC services, a work pool and a Boost.Asio timer that expires leases
// and silent workers. Used by the autoq-server binary and, on loopback
// with generated tokens, by `autoq run`.
//
// Thread-safety: Start, then Shutdown/Wait from any one thread.
#ifndef AUTOQ_SERVER_SERVER_H_
#define AUTOQ_SERVER_SERVER_H_

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/auth.h"
#include "server/model_check.h"

namespace autoq::server {

struct ServerOptions {
  // Address to listen on; port 0 picks a free one (see AutoqServer::port).
  std::string listen = "0.0.0.0:50051";
  // The SQLite file of all durable state (created if absent).
  std::string database = "autoq-server.db";
  // TLS: both PEM files, or neither (plain TCP).
  std::string tls_cert_file, tls_key_file;
  // Limits, clamped once in Start: model upload (default 512 MiB), any one
  // message (default 256 MiB; CompleteTask carries exports), queued or
  // running jobs per client (default 4).
  int64_t max_model_bytes = int64_t{512} << 20;
  int max_message_bytes = 256 << 20;
  int max_jobs_per_client = 4;
  // A lease not heartbeated this long expires (default 60 s, 2..86400);
  // workers are told to heartbeat every heartbeat_seconds (default 10 s,
  // at most a third of the lease).
  int lease_seconds = 60;
  int heartbeat_seconds = 10;
  // After a restart, workers known before it keep their leases this long
  // (or a whole lease if longer) while they reconnect. Default 30 s,
  // 0..86400.
  int restart_grace_seconds = 30;
  int work_threads = 4;     // blocking work (uploads, exports), 1..64
  // Uploaded models are loaded and analyzed in a child process with limits
  // (server/model_check.h); autoq-server runs itself as the analyzer. Left
  // empty, models are loaded in this process.
  ModelCheckOptions model_check;
  // A job that finds the database's disk full retries this often (see
  // JobManagerOptions::disk_full_retry_ms; default 5000).
  int disk_full_retry_ms = 5000;
  std::FILE* log = stderr;  // null: silent
};

// Counters of the thread that makes the service's small writes durable
// (see server/store_writer.h), for benchmarks and operators.
struct ServerStats {
  int64_t write_groups = 0;        // transactions committed
  int64_t writes = 0;              // writes in them
  int64_t largest_group = 0;       // writes in the largest transaction
  double writer_busy_seconds = 0;  // time the writer thread was busy
};

class AutoqServer {
 public:
  // Opens the database (refusing files that are not AutoQ's), restores the
  // queue and restarts unfinished jobs, then starts serving. Besides the
  // job and worker APIs it serves the standard gRPC health service
  // (grpc.health.v1.Health, no token needed, for Kubernetes probes and load
  // balancers): SERVING once the jobs are restored, NOT_SERVING from the
  // start of Shutdown. Turns off Abseil's mutex deadlock detection for
  // the process (see server.cc).
  static absl::StatusOr<std::unique_ptr<AutoqServer>> Start(
      ServerOptions options, TokenAuth auth);
  ~AutoqServer();  // Shutdown()

  // The port actually bound.
  int port() const;

  // Stops taking work and shuts down cleanly: no new jobs or leases,
  // in-flight RPCs (completions being stored) finish, job threads stop
  // where they wait; everything stored stays for the next start. Idempotent.
  void Shutdown();

  // Blocks until Shutdown has run.
  void Wait();

  // Counters so far; any thread.
  ServerStats stats() const;

  struct Impl;

 private:
  explicit AutoqServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace autoq::server

#endif  // AUTOQ_SERVER_SERVER_H_
