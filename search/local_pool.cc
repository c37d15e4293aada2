#include "search/local_pool.h"

#include <atomic>
#include <thread>

#include <torch/cuda.h>

#include "absl/strings/str_cat.h"
#include "qat/torch_errors.h"

namespace autoq::search {

absl::StatusOr<c10::Device> ParseWorkerDevice(const std::string& text) {
  try {
    c10::Device device(text);
    if (device.is_cuda()) {
      const int64_t count = static_cast<int64_t>(torch::cuda::device_count());
      if (count == 0) {
        return absl::FailedPreconditionError(absl::StrCat(
            "device ", text, ": this LibTorch has no CUDA device (build "
            "against a CUDA LibTorch on a GPU node, or use cpu)"));
      }
      if (device.index() >= count) {
        return absl::InvalidArgumentError(absl::StrCat(
            "device ", text, ": only ", count, " CUDA devices present"));
      }
    } else if (!device.is_cpu()) {
      return absl::InvalidArgumentError(
          absl::StrCat("device ", text, ": expected cpu or cuda:N"));
    }
    return device;
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        "device '", text, "': ", qat::SummarizeTorchError(e)));
  }
}

absl::StatusOr<std::unique_ptr<LocalWorkerPool>> LocalWorkerPool::Create(
    std::shared_ptr<const JobData> job, const std::vector<std::string>& devices) {
  std::vector<c10::Device> parsed;
  for (const std::string& d : devices) {
    absl::StatusOr<c10::Device> device = ParseWorkerDevice(d);
    if (!device.ok()) return device.status();
    parsed.push_back(*device);
  }
  if (parsed.empty()) parsed.emplace_back(c10::kCPU);
  return std::unique_ptr<LocalWorkerPool>(
      new LocalWorkerPool(std::move(job), std::move(parsed)));
}

LocalWorkerPool::LocalWorkerPool(std::shared_ptr<const JobData> job,
                                 std::vector<c10::Device> devices)
    : job_(std::move(job)), devices_(std::move(devices)) {}

void LocalWorkerPool::Run(const std::vector<EvalTask>& tasks,
                          const Callback& done) {
  std::atomic<size_t> next{0};
  auto work = [&](c10::Device device) {
    qat::ProgressOptions quiet;
    quiet.out = nullptr;  // the caller reports per task
    for (size_t t = next++; t < tasks.size(); t = next++) {
      done(t, RunTask(*job_, tasks[t], device, quiet));
    }
  };
  const size_t n = std::min(devices_.size(), tasks.size());
  if (n <= 1) {
    if (n == 1) work(devices_[0]);
    return;
  }
  std::vector<std::thread> threads;
  for (size_t w = 1; w < n; ++w) threads.emplace_back(work, devices_[w]);
  work(devices_[0]);
  for (std::thread& t : threads) t.join();
}

}  // namespace autoq::search
