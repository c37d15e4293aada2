// The chaos soak of the service (tests/soak/soak.cc): what its orchestrator
// and its worker processes share.
//
// A worker process (autoq_soak --worker ...) is a no-op autoq-worker: it
// registers, leases tasks, answers each with a synthetic result and
// completes it, and writes one line per event to its own log, so the
// orchestrator can tell afterwards which leases a fault interrupted. Each
// line is one write() on a file opened with O_APPEND: a SIGKILL loses no
// line that was written, and never leaves half a line.
//
// Log lines, each starting with MonoMs() at the time of writing:
//   T start PID
//   T register WORKER_ID
//   T lease TASK_ID KEY JOB_ID STAGE T_REQUEST   (T_REQUEST: LeaseTask sent)
//   T done TASK_ID                 completion accepted, not a duplicate
//   T dup TASK_ID                  completion accepted as a duplicate
//   T rejected TASK_ID CODE MSG    CompleteTask refused (e.g. lease expired)
//   T rpcfail TASK_ID CODE MSG     CompleteTask failed in transit (server
//                                  down): retried, so another outcome follows
//                                  unless the worker dies or gives up
//   T abandoned TASK_ID            gave up retrying CompleteTask
//   T exit                         stopped on SIGTERM
#ifndef AUTOQ_TESTS_SOAK_SOAK_H_
#define AUTOQ_TESTS_SOAK_SOAK_H_

#include <cstdint>

namespace autoq::soak {

// Milliseconds of CLOCK_MONOTONIC: one clock for every process of the
// machine, so worker log lines and the orchestrator's fault records can be
// put in one order.
int64_t MonoMs();

// The worker process: argv[0] is the program, argv[1] "--worker", then
// --target HOST:PORT --token-file FILE --log FILE --name NAME
// [--slow-ms N]. Returns the exit status.
int WorkerMain(int argc, char** argv);

}  // namespace autoq::soak

#endif  // AUTOQ_TESTS_SOAK_SOAK_H_
