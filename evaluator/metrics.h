// Classification metrics for the evaluator: top-1 / top-5 accuracy and
// per-class top-1, accumulated batch by batch.
#ifndef AUTOQ_EVALUATOR_METRICS_H_
#define AUTOQ_EVALUATOR_METRICS_H_

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace autoq::evaluator {

// Accuracy over `count` samples, all in percent (0..100). A plain value.
struct ClassificationMetrics {
  int64_t count = 0;
  double top1 = 0;
  // Top-k with k = min(5, num_classes).
  double top5 = 0;
  // Indexed by class; 0 for a class without samples (never NaN).
  std::vector<double> per_class_top1;
  std::vector<int64_t> per_class_count;
};

// Accumulates predictions over batches.
//
// A sample counts as top-k correct when its true class ranks among the k
// highest logits, ties broken towards the lower class index (as argmax does),
// so top-1 <= top-5 always and the result does not depend on topk's
// unspecified tie order. A NaN logit for the true class counts as wrong.
//
// Thread-safety: not thread-safe; use one accumulator per thread and Merge().
class MetricsAccumulator {
 public:
  explicit MetricsAccumulator(int64_t num_classes);

  // Adds a batch: `logits` B x num_classes (any float dtype, any device),
  // `labels` B integers in [0, num_classes) (same or CPU device). A malformed
  // batch is skipped and its error kept in status(); nothing throws.
  void Add(const at::Tensor& logits, const at::Tensor& labels);

  // Adds the counts of `other`, which must have the same num_classes.
  void Merge(const MetricsAccumulator& other);

  // The metrics over every batch added so far.
  ClassificationMetrics Result() const;

  // OK, or the first error met by Add() / Merge().
  const absl::Status& status() const { return status_; }

  int64_t num_classes() const { return num_classes_; }

 private:
  int64_t num_classes_;
  int64_t count_ = 0;
  int64_t top1_correct_ = 0;
  int64_t top5_correct_ = 0;
  std::vector<int64_t> class_count_;
  std::vector<int64_t> class_correct_;
  absl::Status status_;
};

// A short human-readable table: one summary line, then one line per class
// with its count and top-1, named by `class_names[i]` when given (else by its
// index). Thread-safe (pure function).
std::string FormatMetrics(const ClassificationMetrics& metrics,
                          const std::vector<std::string>& class_names = {});

}  // namespace autoq::evaluator

#endif  // AUTOQ_EVALUATOR_METRICS_H_
