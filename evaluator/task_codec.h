// Tasks and records in their wire and storage form (proto/autoq.proto):
// the stage of a Task, and an EvalRecord as the autoq.EvalResult that the
// result cache stores and a worker's completion carries.
//
// Thread-safety: plain functions.
#ifndef AUTOQ_EVALUATOR_TASK_CODEC_H_
#define AUTOQ_EVALUATOR_TASK_CODEC_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "evaluator/task.h"
#include "proto/autoq.pb.h"
#include "qat/quant_config.h"

namespace autoq::evaluator {

autoq::TaskStage ToProtoStage(Stage stage);
// InvalidArgument for STAGE_UNSPECIFIED or a value this build does not know.
absl::StatusOr<Stage> FromProtoStage(int stage);

// The value stored in the cache for a record (an autoq.EvalResult), and back.
std::string EncodeRecord(const EvalRecord& record,
                         const std::vector<qat::LayerBits>& bits);
absl::StatusOr<EvalRecord> DecodeRecord(absl::string_view value);

}  // namespace autoq::evaluator

#endif  // AUTOQ_EVALUATOR_TASK_CODEC_H_
