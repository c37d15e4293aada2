// Shared fakes for the search's unit tests: a model analysis without a
// model and an evaluator whose "accuracy" is a closed-form function of the
// bits, so the search logic is tested in milliseconds.
#ifndef AUTOQ_SEARCH_TEST_FAKES_H_
#define AUTOQ_SEARCH_TEST_FAKES_H_

#include <cmath>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "qat/cost_model.h"
#include "qat/model_info.h"
#include "search/evaluation.h"
#include "search/search_driver.h"

namespace autoq::search::testing {

// `n` conv layers of growing size, all genes.
inline qat::ModelAnalysis FakeAnalysis(int n) {
  qat::ModelAnalysis a;
  for (int i = 0; i < n; ++i) {
    qat::LayerInfo l;
    l.graph_index = i;
    l.gene = i;
    l.module_path = absl::StrCat("layer", i);
    l.weight_path = l.module_path + ".weight";
    const int64_t out = 16 * (i + 1);
    l.weight_shape = {out, 16, 3, 3};
    l.num_weights = out * 16 * 9;
    l.macs = l.num_weights * 100;
    a.layers.push_back(l);
    a.num_parameters += l.num_weights;
  }
  a.float_size_bytes = 4 * a.num_parameters;
  a.num_classes = 10;
  return a;
}

// A search context for a model of float top-1 90 % (the fakes' scale) and
// the size of `analysis`, with no log.
inline SearchContext QuietContext(const std::string& job_key,
                                  const qat::ModelAnalysis& analysis) {
  SearchContext ctx;
  ctx.job_key = job_key;
  ctx.float_val_top1 = 90.0;
  ctx.float_size_bytes = analysis.float_size_bytes;
  ctx.log = nullptr;
  return ctx;
}

// Accuracy 90 minus a loss that grows as bits shrink, layer 0 (the first)
// most sensitive; the float model scores 90 (val) and 89.5 (test); final
// points have fake exports. Counts every task it runs; can be told to fail.
// Runs each task of a batch on its own thread, as remote workers would
// report them.
class FakeEvaluator : public evaluator::Evaluator {
 public:
  explicit FakeEvaluator(const qat::ModelAnalysis* analysis)
      : analysis_(analysis) {}

  void Run(const std::vector<evaluator::EvalTask>& tasks,
           const Callback& done) override {
    std::vector<std::thread> threads;
    for (size_t t = 0; t < tasks.size(); ++t) {
      threads.emplace_back([&, t] { done(t, Score(tasks[t])); });
    }
    for (std::thread& th : threads) th.join();
  }

  absl::StatusOr<evaluator::EvalRecord> Score(const evaluator::EvalTask& task) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++runs_;
      ++runs_by_key_[task.key];
      ++runs_by_stage_[task.stage];
      if (fail_all_) return fail_status_;
    }
    double loss = 0;
    for (size_t i = 0; i < task.bits.size(); ++i) {
      const double sensitivity = 4.0 / (1.0 + i);
      loss += sensitivity * std::pow(2.0, 2 - task.bits[i].wbits) * 4;
    }
    evaluator::EvalRecord r;
    r.device = "fake";
    r.qat.wall_seconds = 0.001;
    if (task.stage == evaluator::Stage::kFloat ||
        task.stage == evaluator::Stage::kFloat16) {
      const bool half = task.stage == evaluator::Stage::kFloat16;
      r.qat.best_val_top1 = half ? 89.9 : 90.0;
      r.qat.test_top1 = half ? 89.4 : 89.5;
      r.qat.size_bytes = analysis_->float_size_bytes / (half ? 2 : 1);
      return r;
    }
    if (task.stage == evaluator::Stage::kSensitivity) {
      // The same per-layer sensitivities as the scores below, as a loss in
      // nats (1 pp of top-1 ~ 0.01).
      qat::SensitivityTable t;
      t.reference_loss = 0.3;
      t.reference_top1 = 90.0;
      t.images = 100;
      for (int i = 0; i < analysis_->num_genes(); ++i) {
        t.layers.push_back(absl::StrCat("layer", i));
        t.loss.emplace_back();
        t.top1.emplace_back();
        for (int b = t.min_bits; b <= t.max_bits; ++b) {
          const double pp = 4.0 / (1.0 + i) * std::pow(2.0, 2 - b) * 4;
          t.loss.back().push_back(t.reference_loss +
                                  (b == t.max_bits ? 0 : 0.01 * pp));
          t.top1.back().push_back(90.0 - (b == t.max_bits ? 0 : pp));
        }
      }
      r.qat.best_val_top1 = 90.0;
      r.qat.test_top1 = -1;
      r.sensitivity = std::move(t);
      return r;
    }
    const bool ptq = task.stage == evaluator::Stage::kPtqPerTensor ||
                     task.stage == evaluator::Stage::kPtqPerChannel;
    // No fine-tune: post-training quantization loses twice as much.
    r.qat.best_val_top1 = std::max(10.0, 90.0 - (ptq ? 2 : 1) * loss);
    r.qat.test_top1 = task.stage == evaluator::Stage::kFinal || ptq
                          ? r.qat.best_val_top1 - 0.5
                          : -1;
    qat::ModelCost cost = qat::ComputeCost(*analysis_, task.bits,
                                           qat::Granularity::kPerTensorAffine);
    r.qat.size_bytes = cost.size_bytes;
    r.qat.bops = cost.bops;
    if (task.stage == evaluator::Stage::kFinal) {
      r.artifacts.emplace_back(evaluator::kTorchScriptArtifact, "ts");
      r.artifacts.emplace_back(evaluator::kPackedArtifact, "w");
      r.artifacts.emplace_back(evaluator::kManifestArtifact, "{}");
    }
    return r;
  }

  int runs() {
    std::lock_guard<std::mutex> lock(mu_);
    return runs_;
  }
  int runs(evaluator::Stage stage) {
    std::lock_guard<std::mutex> lock(mu_);
    return runs_by_stage_[stage];
  }
  int max_runs_of_one_key() {
    std::lock_guard<std::mutex> lock(mu_);
    int m = 0;
    for (const auto& [k, v] : runs_by_key_) m = std::max(m, v);
    return m;
  }
  // From now on every task fails with `status` (while `f`); may be called
  // while tasks run.
  void set_fail_all(bool f, absl::Status status =
                                absl::ResourceExhaustedError("fake failure")) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_all_ = f;
    fail_status_ = std::move(status);
  }

 private:
  const qat::ModelAnalysis* analysis_;
  std::mutex mu_;
  int runs_ = 0;
  std::map<std::string, int> runs_by_key_;
  std::map<evaluator::Stage, int> runs_by_stage_;
  bool fail_all_ = false;
  absl::Status fail_status_;
};

}  // namespace autoq::search::testing

#endif  // AUTOQ_SEARCH_TEST_FAKES_H_
