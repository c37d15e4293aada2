// An Evaluator that runs tasks on worker threads of this process, one per
// device ("cpu", "cuda:0", ...). The one-machine mode of `autoq run`.
//
// Thread-safety: Run is called by one thread at a time; the pool's threads
// live only for the duration of a Run call.
#ifndef AUTOQ_SEARCH_LOCAL_POOL_H_
#define AUTOQ_SEARCH_LOCAL_POOL_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <c10/core/Device.h>

#include "absl/status/statusor.h"
#include "search/evaluation.h"
#include "search/task_runner.h"

namespace autoq::search {

class LocalWorkerPool : public Evaluator {
 public:
  // Fails on a device string that does not parse or is not available.
  static absl::StatusOr<std::unique_ptr<LocalWorkerPool>> Create(
      std::shared_ptr<const JobData> job,
      const std::vector<std::string>& devices);

  void Run(const std::vector<EvalTask>& tasks, const Callback& done) override;

  size_t num_workers() const { return devices_.size(); }

 private:
  LocalWorkerPool(std::shared_ptr<const JobData> job,
                  std::vector<c10::Device> devices);

  std::shared_ptr<const JobData> job_;
  std::vector<c10::Device> devices_;
};

// Parses "cpu" / "cuda:N" and checks the device exists here.
absl::StatusOr<c10::Device> ParseWorkerDevice(const std::string& text);

}  // namespace autoq::search

#endif  // AUTOQ_SEARCH_LOCAL_POOL_H_
