#include "search/evaluation.h"

#include <chrono>
#include <map>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "common/sha256.h"
#include "evaluator/task_codec.h"
#include "proto/autoq.pb.h"
#include "search/chromosome.h"

namespace autoq::search {
namespace {

// Bumped when the meaning of a stored result or its exports changes, so
// older cached values are not reused for it.
// 2: a fine-tune seeds its activation ranges from one calibration batch.
constexpr int kKeyVersion = 2;

}  // namespace

CachedEvaluation::CachedEvaluation(ResultStore* store,
                                   evaluator::Evaluator* evaluator,
                                   KeyContext keys)
    : store_(store), evaluator_(evaluator), keys_(std::move(keys)) {}

std::string CachedEvaluation::Key(
    evaluator::Stage stage, const std::vector<qat::LayerBits>& bits) const {
  if (stage == evaluator::Stage::kFloat ||
      stage == evaluator::Stage::kFloat16) {
    // The float scores depend on the model and the data alone: no recipe,
    // no bits; every job on the same model and split shares them.
    return Sha256Hex(absl::StrCat(
        "autoq-result-v", kKeyVersion, "\nmodel=", keys_.model_digest,
        "\ndata=", keys_.data, "\nstage=", StageName(stage)));
  }
  std::string bit_text;
  for (const qat::LayerBits& b : bits) {
    absl::StrAppend(&bit_text, "w", b.wbits, "a", b.abits, ";");
  }
  const std::string& recipe =
      stage == evaluator::Stage::kSearch         ? keys_.search_stage
      : stage == evaluator::Stage::kSensitivity  ? keys_.sensitivity_stage
      : stage == evaluator::Stage::kPtqPerTensor ? keys_.ptq_stage
      : stage == evaluator::Stage::kPtqPerChannel ? keys_.ptq_stage
                                                  : keys_.final_stage;
  return Sha256Hex(absl::StrCat(
      "autoq-result-v", kKeyVersion, "\nmodel=", keys_.model_digest,
      "\ndata=", keys_.data, "\nstage=", StageName(stage), "\nrecipe=",
      recipe, "\nbits=", bit_text));
}

absl::StatusOr<std::optional<std::string>> CachedEvaluation::Artifact(
    const std::string& key, const std::string& name) const {
  return store_->GetArtifact(key, name);
}

absl::StatusOr<std::vector<evaluator::EvalRecord>> CachedEvaluation::Evaluate(
    evaluator::Stage stage,
    const std::vector<std::vector<qat::LayerBits>>& bits,
    const EvalProgress& progress) {
  std::vector<Entry> batch;
  batch.reserve(bits.size());
  for (const auto& b : bits) batch.push_back(Entry{stage, b});
  return Evaluate(batch, progress);
}

absl::StatusOr<std::vector<evaluator::EvalRecord>> CachedEvaluation::Evaluate(
    const std::vector<Entry>& batch, const EvalProgress& progress) {
  std::vector<evaluator::EvalRecord> out(batch.size());
  std::vector<std::string> keys(batch.size());
  std::map<std::string, size_t> first_of;  // key -> its first entry
  std::vector<size_t> repeats;             // entries equal to an earlier one
  std::vector<evaluator::EvalTask> tasks;
  std::vector<size_t> task_entry;
  size_t finished = 0;
  for (size_t i = 0; i < batch.size(); ++i) {
    const evaluator::Stage stage = batch[i].stage;
    keys[i] = Key(stage, batch[i].bits);
    if (!first_of.emplace(keys[i], i).second) {
      repeats.push_back(i);
      ++stats_.repeated;
      continue;
    }
    absl::StatusOr<std::optional<std::string>> hit = store_->Get(keys[i]);
    if (!hit.ok()) return hit.status();
    bool usable = hit->has_value();
    if (usable && stage == evaluator::Stage::kFinal) {
      // A final result is only whole with its exports.
      absl::StatusOr<std::vector<std::string>> names =
          store_->ListArtifacts(keys[i]);
      if (!names.ok()) return names.status();
      usable = !names->empty();
    }
    if (!usable) {
      tasks.push_back(evaluator::EvalTask{keys[i], stage, batch[i].bits});
      task_entry.push_back(i);
      continue;
    }
    absl::StatusOr<evaluator::EvalRecord> record =
        evaluator::DecodeRecord(**hit);
    if (!record.ok()) return record.status();
    out[i] = *std::move(record);
    ++stats_.cached;
    ++finished;
    if (progress) progress(i, out[i], true, finished, batch.size());
  }

  std::mutex mu;
  absl::Status first_error;
  const auto start = std::chrono::steady_clock::now();
  if (!tasks.empty()) {
    evaluator_->Run(tasks, [&](size_t t, absl::StatusOr<evaluator::EvalRecord> result) {
      absl::Status st = result.status();
      // One transaction: a stored final result implies its artifacts, and
      // a failed write (a full disk) leaves neither.
      if (st.ok() && !result->stored) {
        ResultStore::ArtifactViews artifacts(result->artifacts.begin(),
                                             result->artifacts.end());
        ResultSummary summary;
        summary.val_top1 = result->qat.best_val_top1;
        summary.size_bytes = result->qat.size_bytes;
        summary.wall_seconds = result->qat.wall_seconds;
        summary.device = result->device;
        st = store_->PutWithArtifacts(
            tasks[t].key, evaluator::EncodeRecord(*result, tasks[t].bits),
            summary, artifacts);
      }
      std::lock_guard<std::mutex> lock(mu);
      if (!st.ok()) {
        if (first_error.ok()) first_error = st;
        return;
      }
      ++stats_.computed;
      result->artifacts.clear();  // stored; keep the batch light
      const size_t i = task_entry[t];
      out[i] = *std::move(result);
      ++finished;
      if (progress) progress(i, out[i], false, finished, batch.size());
    });
  }
  stats_.evaluator_seconds +=
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  if (!first_error.ok()) return first_error;
  for (size_t i : repeats) {
    out[i] = out[first_of[keys[i]]];
    ++finished;
    if (progress) progress(i, out[i], true, finished, batch.size());
  }
  return out;
}

}  // namespace autoq::search
