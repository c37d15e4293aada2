#include "evaluator/metrics.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <exception>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "qat/torch_errors.h"

namespace autoq::evaluator {
namespace {

double Percent(int64_t part, int64_t whole) {
  return whole > 0
             ? 100.0 * static_cast<double>(part) / static_cast<double>(whole)
             : 0.0;
}

}  // namespace

MetricsAccumulator::MetricsAccumulator(int64_t num_classes)
    : num_classes_(std::max<int64_t>(num_classes, 0)),
      class_count_(static_cast<size_t>(num_classes_), 0),
      class_correct_(static_cast<size_t>(num_classes_), 0) {
  if (num_classes <= 0) {
    status_ = absl::InvalidArgumentError(absl::StrCat(
        "MetricsAccumulator: num_classes must be > 0, got ", num_classes));
  }
}

void MetricsAccumulator::Add(const at::Tensor& logits,
                             const at::Tensor& labels) {
  if (num_classes_ <= 0) return;
  auto fail = [this](std::string msg) {
    if (status_.ok()) status_ = absl::InvalidArgumentError(std::move(msg));
  };
  if (!logits.defined() || !labels.defined()) {
    return fail("MetricsAccumulator::Add: undefined tensor");
  }
  if (logits.dim() != 2 || logits.size(1) != num_classes_ ||
      !at::isFloatingType(logits.scalar_type())) {
    return fail(absl::StrCat(
        "MetricsAccumulator::Add: logits must be float B x ", num_classes_,
        ", got ", c10::toString(logits.scalar_type()), " ",
        absl::StrJoin(logits.sizes(), "x")));
  }
  if (labels.dim() != 1 || labels.size(0) != logits.size(0) ||
      at::isFloatingType(labels.scalar_type()) ||
      labels.scalar_type() == at::kBool) {
    return fail(absl::StrCat(
        "MetricsAccumulator::Add: labels must be integer of length ",
        logits.size(0), ", got ", c10::toString(labels.scalar_type()), " ",
        absl::StrJoin(labels.sizes(), "x")));
  }
  const int64_t batch = logits.size(0);
  if (batch == 0) return;
  try {
    const at::Tensor y_cpu = labels.to(at::kCPU, at::kLong).contiguous();
    const int64_t* y = y_cpu.data_ptr<int64_t>();
    for (int64_t i = 0; i < batch; ++i) {
      if (y[i] < 0 || y[i] >= num_classes_) {
        return fail(absl::StrCat("MetricsAccumulator::Add: label ", i, " is ",
                                 y[i], ", outside [0, ", num_classes_, ")"));
      }
    }
    // rank = #classes beating the true one, counting equal logits at lower
    // indices as beating it (argmax's first-index tie rule).
    const at::Tensor y_dev = y_cpu.to(logits.device()).unsqueeze(1);
    const at::Tensor true_logit = logits.gather(1, y_dev);
    const at::Tensor cls =
        at::arange(num_classes_, logits.options().dtype(at::kLong))
            .unsqueeze(0);
    const at::Tensor beats =
        logits.gt(true_logit)
            .logical_or(logits.eq(true_logit).logical_and(cls.lt(y_dev)));
    at::Tensor rank = beats.sum(1);
    // NaN compares false everywhere, which would make it rank 0.
    rank.masked_fill_(true_logit.squeeze(1).isnan(), num_classes_);
    const at::Tensor rank_cpu = rank.to(at::kCPU, at::kLong).contiguous();
    const int64_t* r = rank_cpu.data_ptr<int64_t>();
    const int64_t k = std::min<int64_t>(5, num_classes_);
    for (int64_t i = 0; i < batch; ++i) {
      const auto c = static_cast<size_t>(y[i]);
      ++class_count_[c];
      if (r[i] < 1) {
        ++top1_correct_;
        ++class_correct_[c];
      }
      if (r[i] < k) ++top5_correct_;
    }
    count_ += batch;
  } catch (const std::exception& e) {
    fail(
        absl::StrCat("MetricsAccumulator::Add: ", qat::SummarizeTorchError(e)));
  }
}

void MetricsAccumulator::Merge(const MetricsAccumulator& other) {
  if (other.num_classes_ != num_classes_) {
    if (status_.ok()) {
      status_ = absl::InvalidArgumentError(
          absl::StrCat("MetricsAccumulator::Merge: ", other.num_classes_,
                       " classes into ", num_classes_));
    }
    return;
  }
  if (status_.ok() && !other.status_.ok()) status_ = other.status_;
  count_ += other.count_;
  top1_correct_ += other.top1_correct_;
  top5_correct_ += other.top5_correct_;
  for (size_t c = 0; c < class_count_.size(); ++c) {
    class_count_[c] += other.class_count_[c];
    class_correct_[c] += other.class_correct_[c];
  }
}

ClassificationMetrics MetricsAccumulator::Result() const {
  ClassificationMetrics m;
  m.count = count_;
  m.top1 = Percent(top1_correct_, count_);
  m.top5 = Percent(top5_correct_, count_);
  m.per_class_count = class_count_;
  m.per_class_top1.reserve(class_count_.size());
  for (size_t c = 0; c < class_count_.size(); ++c) {
    m.per_class_top1.push_back(Percent(class_correct_[c], class_count_[c]));
  }
  return m;
}

std::string FormatMetrics(const ClassificationMetrics& metrics,
                          const std::vector<std::string>& class_names) {
  std::string out = absl::StrFormat("samples %d  top-1 %.2f%%  top-5 %.2f%%\n",
                                    metrics.count, metrics.top1, metrics.top5);
  const size_t n = metrics.per_class_top1.size();
  if (n == 0) return out;
  std::vector<std::string> names(n);
  size_t width = 5;  // "class"
  for (size_t c = 0; c < n; ++c) {
    names[c] = c < class_names.size() && !class_names[c].empty()
                   ? class_names[c]
                   : absl::StrCat(c);
    width = std::max(width, names[c].size());
  }
  const int w = static_cast<int>(width);
  absl::StrAppendFormat(&out, "%-*s %8s %8s\n", w, "class", "count", "top-1");
  for (size_t c = 0; c < n; ++c) {
    const int64_t count =
        c < metrics.per_class_count.size() ? metrics.per_class_count[c] : 0;
    absl::StrAppendFormat(&out, "%-*s %8d %7.2f%%\n", w, names[c], count,
                          metrics.per_class_top1[c]);
  }
  return out;
}

}  // namespace autoq::evaluator
