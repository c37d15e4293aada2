// The Evaluator of a service job: hands the search's tasks to the remote
// workers through the TaskQueue and waits for their results. One per job.
//
// Thread-safety: Run is called by one thread at a time (the job's thread);
// results arrive on the threads of the worker RPCs.
#ifndef AUTOQ_SERVER_REMOTE_EVALUATOR_H_
#define AUTOQ_SERVER_REMOTE_EVALUATOR_H_

#include <atomic>
#include <memory>
#include <string>

#include "server/task_queue.h"

namespace autoq::evaluator {
class Evaluator;
}
namespace autoq::search {
class ResultStore;
}

namespace autoq::server {

// `queue` and `results` (the result cache the completions are stored in)
// must outlive the evaluator. A task whose result reached `results` since
// the job's cache lookup (another job computed it) is answered from there,
// not queued (TaskQueue::Enqueue's lookup). When `*stop` becomes true
// (server shutdown), Run stops waiting and reports UNAVAILABLE for the
// unfinished tasks; their queued tasks and leases stay stored for the next
// start. When `*cancelled` becomes true, Run withdraws the job's tasks from
// the queue and reports CANCELLED for the unfinished ones. Either may be
// null.
std::unique_ptr<evaluator::Evaluator> MakeRemoteEvaluator(
    TaskQueue* queue, search::ResultStore* results, std::string job_id,
    const std::atomic<bool>* stop, const std::atomic<bool>* cancelled);

}  // namespace autoq::server

#endif  // AUTOQ_SERVER_REMOTE_EVALUATOR_H_
