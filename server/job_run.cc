#include "server/job_run.h"

#include <algorithm>
#include <cstdio>
#include <mutex>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "evaluator/job_config.h"
#include "evaluator/task.h"
#include "evaluator/task_codec.h"
#include "search/job_pipeline.h"
#include "search/result_store.h"
#include "server/remote_evaluator.h"

namespace autoq::server {
namespace {

absl::StatusOr<evaluator::JobConfig> ConfigOf(const JobSpec& spec) {
  absl::StatusOr<evaluator::JobConfig> config =
      evaluator::JobConfigFromSpec(spec);
  if (!config.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("job spec: ", config.status().message()));
  }
  return config;
}

// The server never reads the dataset (it lives on the workers' nodes), so
// the input shape comes from the spec or from the dataset kind.
absl::StatusOr<std::vector<int64_t>> InputShape(
    const evaluator::JobConfig& config) {
  if (!config.input_shape.empty()) return config.input_shape;
  const std::string& d = config.data_spec;
  auto kind_is = [&](absl::string_view k) {
    return d == k || absl::StartsWith(d, absl::StrCat(k, ":"));
  };
  if (kind_is("fashion-mnist") || kind_is("mnist")) {
    return std::vector<int64_t>{1, 28, 28};
  }
  if (kind_is("cifar10")) return std::vector<int64_t>{3, 32, 32};
  return absl::InvalidArgumentError(
      "model.input_shape is required for this dataset kind (the server "
      "does not read the dataset; e.g. \"3,224,224\")");
}

absl::StatusOr<qat::ModelAnalysis> LoadAndAnalyze(
    const evaluator::JobConfig& config, const std::string& bytes,
    const std::string& sha256, const ModelCheckOptions& model_check) {
  ASSIGN_OR_RETURN(std::vector<int64_t> shape, InputShape(config));
  ASSIGN_OR_RETURN(qat::ModelAnalysis analysis,
                   AnalyzeModelApart(bytes, sha256, shape, model_check));
  if (analysis.num_genes() == 0) {
    return absl::InvalidArgumentError(
        "the model has no quantizable conv or linear layer");
  }
  return analysis;
}

FrontPointInfo PointInfo(const search::FrontPoint& p) {
  FrontPointInfo info;
  info.set_label(p.label);
  info.set_uniform(p.uniform);
  for (int b : p.wbits) info.add_wbits(b);
  for (int b : p.abits) info.add_abits(b);
  info.set_size_bytes(p.size_bytes);
  info.set_bops(p.bops);
  info.set_search_val_top1(p.search_val_top1);
  info.set_val_top1(p.val_top1);
  info.set_test_top1(p.test_top1);
  info.set_result_key(p.result_key);
  for (const std::string* f :
       {&p.torchscript_file, &p.packed_file, &p.manifest_file, &p.onnx_file,
        &p.encodings_file, &p.onnx_error_file}) {
    if (!f->empty()) info.add_artifacts(*f);
  }
  return info;
}

class EventObserver : public search::PipelineObserver {
 public:
  explicit EventObserver(const JobRunContext& ctx) : ctx_(ctx) {}

  void OnPhase(absl::string_view phase) override {
    if (ctx_.on_phase) ctx_.on_phase(std::string(phase));
  }

  void OnEvaluation(evaluator::Stage stage,
                    const std::vector<qat::LayerBits>& bits,
                    const evaluator::EvalRecord& r, bool cached, size_t done,
                    size_t total) override {
    JobEvent e;
    EvaluationDone* ev = e.mutable_evaluation();
    ev->set_stage(evaluator::ToProtoStage(stage));
    FrontPointInfo* p = ev->mutable_point();
    for (const qat::LayerBits& b : bits) {
      p->add_wbits(b.wbits);
      p->add_abits(b.abits);
    }
    p->set_size_bytes(r.qat.size_bytes);
    p->set_bops(r.qat.bops);
    p->set_search_val_top1(-1);
    p->set_val_top1(r.qat.best_val_top1);
    p->set_test_top1(r.qat.test_top1);
    ev->set_cached(cached);
    ev->set_device(r.device);
    ev->set_seconds(cached ? 0 : r.qat.wall_seconds);
    ev->set_done(static_cast<int64_t>(done));
    ev->set_total(static_cast<int64_t>(total));
    if (cached) {
      ++cached_;
    } else {
      ++computed_;
    }
    ctx_.publish(std::move(e));
    if (ctx_.on_progress) ctx_.on_progress(generation_, computed_, cached_);
  }

  void OnGeneration(const search::GenerationInfo& info) override {
    generation_ = info.generation;
    JobEvent e;
    GenerationDone* g = e.mutable_generation();
    g->set_generation(info.generation);
    g->set_generations(info.generations);
    g->set_hypervolume(info.hypervolume);
    g->set_computed(computed_);
    g->set_cached(cached_);
    for (const search::GenerationPoint& gp : info.front) {
      FrontPointInfo* p = g->add_front();
      for (int b : gp.wbits) p->add_wbits(b);
      for (int b : gp.abits) p->add_abits(b);
      p->set_size_bytes(gp.size_bytes);
      p->set_bops(gp.bops);
      p->set_search_val_top1(gp.val_top1);
      p->set_val_top1(gp.val_top1);
      p->set_test_top1(-1);
    }
    ctx_.publish(std::move(e));
    if (ctx_.on_progress) ctx_.on_progress(generation_, computed_, cached_);
  }

  int64_t computed() const { return computed_; }
  int64_t cached() const { return cached_; }

 private:
  const JobRunContext& ctx_;
  int generation_ = -1;
  int64_t computed_ = 0;
  int64_t cached_ = 0;
};

// A FILE* whose lines become `log` events: the pipeline's human-readable
// progress (what `autoq run` prints) reaches every watcher as it is.
class LogStream {
 public:
  explicit LogStream(const JobRunContext& ctx) : ctx_(ctx) {
    cookie_io_functions_t io{};
    io.write = &LogStream::Write;
    io.close = &LogStream::Close;
    file_ = fopencookie(this, "w", io);
    if (file_ != nullptr) setvbuf(file_, nullptr, _IOLBF, 4096);
  }
  ~LogStream() {
    if (file_ != nullptr) std::fclose(file_);
    Flush();
  }
  std::FILE* file() const { return file_; }

 private:
  static ssize_t Write(void* self, const char* data, size_t size) {
    auto* s = static_cast<LogStream*>(self);
    std::lock_guard<std::mutex> lock(s->mu_);
    s->pending_.append(data, size);
    size_t nl;
    while ((nl = s->pending_.find('\n')) != std::string::npos) {
      JobEvent e;
      e.set_log(s->pending_.substr(0, nl));
      s->pending_.erase(0, nl + 1);
      s->ctx_.publish(std::move(e));
    }
    return static_cast<ssize_t>(size);
  }
  static int Close(void*) { return 0; }
  void Flush() {
    std::lock_guard<std::mutex> lock(mu_);
    if (pending_.empty()) return;
    JobEvent e;
    e.set_log(pending_);
    pending_.clear();
    ctx_.publish(std::move(e));
  }

  const JobRunContext& ctx_;
  std::mutex mu_;
  std::string pending_;  // guarded by mu_
  std::FILE* file_ = nullptr;
};

}  // namespace

std::string ReportKey(const std::string& job_id) {
  return absl::StrCat("job-report/", job_id);
}

absl::StatusOr<JobCheck> CheckJob(const JobSpec& spec,
                                  const std::string& model_bytes,
                                  const std::string& model_sha256,
                                  const ModelCheckOptions& model_check) {
  ASSIGN_OR_RETURN(evaluator::JobConfig config, ConfigOf(spec));
  ASSIGN_OR_RETURN(
      qat::ModelAnalysis analysis,
      LoadAndAnalyze(config, model_bytes, model_sha256, model_check));
  JobCheck check;
  check.warnings = config.warnings;
  check.generations = config.search.generations;
  return check;
}

absl::StatusOr<FinalFront> RunServiceJob(const JobRunContext& ctx) {
  ASSIGN_OR_RETURN(evaluator::JobConfig config, ConfigOf(ctx.spec));
  ASSIGN_OR_RETURN(qat::ModelAnalysis analysis,
                   LoadAndAnalyze(config, ctx.model_bytes, ctx.model_sha256,
                                  ctx.model_check != nullptr
                                      ? *ctx.model_check
                                      : ModelCheckOptions()));
  std::unique_ptr<evaluator::Evaluator> evaluator = MakeRemoteEvaluator(
      ctx.queue, ctx.results, ctx.job_id, ctx.stop, ctx.cancelled);
  search::PipelineInputs inputs;
  inputs.config = &config;
  inputs.model_digest = ctx.model_sha256.empty()
                            ? autoq::Sha256Hex(ctx.model_bytes)
                            : ctx.model_sha256;
  inputs.analysis = &analysis;
  // Watchers get each evaluation as its structured event; a log line per
  // evaluation would double the messages of every watch stream.
  inputs.log_evaluations = false;
  EventObserver observer(ctx);
  LogStream log(ctx);
  ASSIGN_OR_RETURN(search::JobSummary summary,
                   search::RunPipeline(inputs, evaluator.get(), ctx.results,
                                       &observer, log.file(), ctx.cancelled));

  // Downloadable names of the exports, then the reports that list them.
  search::FrontReport& report = summary.report;
  for (auto* list : {&report.front, &report.uniform}) {
    for (search::FrontPoint& p : *list) {
      const std::string dir =
          absl::StrCat(p.uniform ? "uniform/" : "front/", p.label, "/");
      p.torchscript_file = dir + evaluator::kTorchScriptArtifact;
      p.packed_file = dir + evaluator::kPackedArtifact;
      p.manifest_file = dir + evaluator::kManifestArtifact;
      // The optional exports the worker delivered.
      ASSIGN_OR_RETURN(std::vector<std::string> stored,
                       ctx.results->ListArtifacts(p.result_key));
      auto has = [&](const char* name) {
        return std::find(stored.begin(), stored.end(), name) != stored.end();
      };
      if (has(evaluator::kOnnxArtifact)) {
        p.onnx_file = dir + evaluator::kOnnxArtifact;
      }
      if (has(evaluator::kEncodingsArtifact)) {
        p.encodings_file = dir + evaluator::kEncodingsArtifact;
      }
      if (has(evaluator::kOnnxErrorArtifact)) {
        p.onnx_error_file = dir + evaluator::kOnnxErrorArtifact;
      }
    }
  }
  ASSIGN_OR_RETURN(search::ReportFiles files, search::RenderReport(report));
  const std::string key = ReportKey(ctx.job_id);
  RETURN_IF_ERROR(ctx.results->PutArtifact(key, "front.json", files.json));
  RETURN_IF_ERROR(ctx.results->PutArtifact(key, "front.csv", files.csv));
  RETURN_IF_ERROR(ctx.results->PutArtifact(key, "front.svg", files.svg));

  FinalFront out;
  for (const search::FrontPoint& p : report.front) {
    *out.add_front() = PointInfo(p);
  }
  for (const search::FrontPoint& p : report.uniform) {
    *out.add_uniform() = PointInfo(p);
  }
  for (const search::FrontPoint& p : report.baselines) {
    *out.add_baselines() = PointInfo(p);
  }
  for (const std::string& n : report.layer_names) out.add_layer_names(n);
  out.set_float_val_top1(report.float_val_top1);
  out.set_float_test_top1(report.float_test_top1);
  out.set_float_size_bytes(report.float_size_bytes);
  out.set_front_hypervolume(summary.comparison.front_hypervolume);
  out.set_uniform_hypervolume(summary.comparison.uniform_hypervolume);
  const search::FrontComparison& c = summary.comparison;
  out.set_max_accuracy_drop(c.max_accuracy_drop);
  out.set_region_size_bytes(c.region_size_bytes);
  out.set_region_front_hypervolume(c.region_front_hypervolume);
  out.set_region_uniform_hypervolume(c.region_uniform_hypervolume);
  out.set_front_smallest_near_float(c.front_smallest_near_float);
  out.set_uniform_smallest_near_float(c.uniform_smallest_near_float);
  for (const std::string& b : summary.comparison.beating_points) {
    out.add_beating_points(b);
  }
  out.set_computed(summary.computed);
  out.set_cached(summary.cached);
  out.set_search_seconds(summary.search_seconds);
  out.set_final_seconds(summary.final_seconds);
  out.set_total_seconds(summary.total_seconds);
  return out;
}

}  // namespace autoq::server
