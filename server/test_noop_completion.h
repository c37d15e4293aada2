// Test helper: what a no-op worker answers for a leased task, for tests and
// benches that drive the service without training (server tests, the
// chaos soak, the service load bench). Deterministic in the task's bits,
// so the search still has a trade-off (fewer bits: smaller, less
// accurate); a sensitivity task gets a table, a final task its exports.
#ifndef AUTOQ_SERVER_TEST_NOOP_COMPLETION_H_
#define AUTOQ_SERVER_TEST_NOOP_COMPLETION_H_

#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "evaluator/task.h"
#include "proto/autoq.pb.h"

namespace autoq::server::test_util {

inline CompleteTaskRequest NoopCompletion(const std::string& worker_id,
                                          const LeaseTaskResponse& lease) {
  const Task& task = lease.task();
  CompleteTaskRequest request;
  request.set_worker_id(worker_id);
  request.set_lease_id(lease.lease_id());
  request.set_task_id(task.task_id());
  EvalResult* r = request.mutable_result();
  double top1 = 90.0;
  int64_t size = 0;
  for (int w : task.wbits()) {
    top1 -= 0.3 * (8 - w) * (8 - w);
    size += int64_t{512} * w;  // 4096 weights per layer at w bits
  }
  r->set_best_val_top1(top1);
  r->set_best_epoch(0);
  r->set_final_val_top1(top1);
  const bool tested =
      task.stage() == STAGE_FINAL || task.stage() == STAGE_FLOAT;
  r->set_test_top1(tested ? top1 - 0.5 : -1);
  EpochRecord* e = r->add_curve();
  e->set_epoch(0);
  e->set_val_top1(top1);
  e->set_acts_quantized(true);
  r->set_size_bytes(task.stage() == STAGE_FLOAT ? 4096 * 4 * 12 : size);
  r->set_device("noop");
  *r->mutable_wbits() = task.wbits();
  *r->mutable_abits() = task.abits();
  if (task.stage() == STAGE_SENSITIVITY) {
    SensitivityResult* s = r->mutable_sensitivity();
    s->set_min_bits(2);
    s->set_max_bits(8);
    s->set_reference_loss(0.3);
    s->set_reference_top1(90);
    s->set_images(1);
    for (int i = 0; i < task.wbits_size(); ++i) {
      SensitivityLayer* l = s->add_layers();
      l->set_name(absl::StrCat("layer", i));
      for (int b = 2; b <= 8; ++b) {
        l->add_loss(0.3 + 0.003 * (8 - b) * (8 - b));
        l->add_top1(90 - 0.3 * (8 - b) * (8 - b));
      }
    }
  }
  if (task.stage() == STAGE_FINAL) {
    for (const char* name : evaluator::kFinalArtifacts) {
      NamedBytes* a = request.add_artifacts();
      a->set_name(name);
      a->set_data(absl::StrCat("no-op export ", name, " of ", task.key()));
    }
  }
  return request;
}

}  // namespace autoq::server::test_util

#endif  // AUTOQ_SERVER_TEST_NOOP_COMPLETION_H_
