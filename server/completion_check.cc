#include "server/completion_check.h"

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "evaluator/task.h"
#include "evaluator/task_codec.h"

namespace autoq::server {
namespace {

absl::Status NotFinite(const char* field) {
  return absl::InvalidArgumentError(
      absl::StrCat("the result's ", field, " is not a finite number"));
}

}  // namespace

absl::Status CheckArtifactNames(const CompleteTaskRequest& request) {
  for (const NamedBytes& a : request.artifacts()) {
    if (!evaluator::IsFinalArtifact(a.name())) {
      return absl::InvalidArgumentError(
          absl::StrCat("artifact name \"", a.name(), "\" is not one of ",
                       absl::StrJoin(evaluator::kFinalArtifacts, ", "), ", ",
                       absl::StrJoin(evaluator::kOptionalArtifacts, ", ")));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckResult(const CompleteTaskRequest& request, int stage,
                         const std::vector<int>& wbits) {
  return CheckResult(request, stage, wbits,
                     request.result().SerializeAsString());
}

absl::Status CheckResult(const CompleteTaskRequest& request, int stage,
                         const std::vector<int>& wbits,
                         absl::string_view encoded) {
  const EvalResult& r = request.result();
  if (stage != STAGE_FLOAT &&
      (r.wbits().size() != static_cast<int>(wbits.size()) ||
       !std::equal(wbits.begin(), wbits.end(), r.wbits().begin()))) {
    return absl::InvalidArgumentError(
        "the result's bit-widths are not the task's");
  }
  if (stage == STAGE_FINAL) {
    for (const char* name : evaluator::kFinalArtifacts) {
      const bool present = std::any_of(
          request.artifacts().begin(), request.artifacts().end(),
          [name](const NamedBytes& a) { return a.name() == name; });
      if (!present) {
        return absl::InvalidArgumentError(
            absl::StrCat("a final task must deliver ",
                         absl::StrJoin(evaluator::kFinalArtifacts, ", "),
                         "; ", name, " is missing"));
      }
    }
  }
  // NaN or infinite scores would make the search's comparisons meaningless
  // (NaN is neither better nor worse than anything).
  struct Field {
    const char* name;
    double value;
  };
  for (const Field& f :
       {Field{"best_val_top1", r.best_val_top1()},
        Field{"final_val_top1", r.final_val_top1()},
        Field{"test_top1", r.test_top1()},
        Field{"wall_seconds", r.wall_seconds()}}) {
    if (!std::isfinite(f.value)) return NotFinite(f.name);
  }
  for (const EpochRecord& e : r.curve()) {
    if (!std::isfinite(e.val_top1()) || !std::isfinite(e.train_loss()) ||
        !std::isfinite(e.train_top1()) || !std::isfinite(e.lr())) {
      return NotFinite("curve");
    }
  }
  if (r.size_bytes() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("the result's size_bytes is negative (", r.size_bytes(),
                     ")"));
  }
  if (r.has_sensitivity()) {
    const SensitivityResult& s = r.sensitivity();
    if (!std::isfinite(s.reference_loss()) ||
        !std::isfinite(s.reference_top1())) {
      return NotFinite("sensitivity reference");
    }
    for (const SensitivityLayer& l : s.layers()) {
      for (double v : l.loss()) {
        if (!std::isfinite(v)) return NotFinite("sensitivity loss");
      }
      for (double v : l.top1()) {
        if (!std::isfinite(v)) return NotFinite("sensitivity top-1");
      }
    }
  }
  // What the job will read back: it must decode.
  absl::StatusOr<evaluator::EvalRecord> decoded =
      evaluator::DecodeRecord(encoded);
  if (!decoded.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the result does not decode: ",
                     decoded.status().message()));
  }
  return absl::OkStatus();
}

}  // namespace autoq::server
