#include "server/job_manager.h"

#include <algorithm>
#include <chrono>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/rpc_util.h"
#include "common/sha256.h"
#include "evaluator/job_config.h"
#include "search/result_store.h"
#include "search/sqlite_statement.h"
#include "server/job_run.h"

namespace autoq::server {

struct JobManager::Job {
  explicit Job(int64_t first_seq)
      : feed(std::make_shared<EventFeed>(first_seq)) {}

  std::mutex mu;
  JobRow row;  // guarded by mu
  int generation = -1;       // guarded by mu
  int generations = 0;       // guarded by mu
  int64_t computed = 0;      // guarded by mu
  int64_t cached = 0;        // guarded by mu
  const std::shared_ptr<EventFeed> feed;
  std::atomic<bool> cancelled{false};
};

namespace {

bool Ended(int state) {
  return state == JOB_FINISHED || state == JOB_FAILED ||
         state == JOB_CANCELLED;
}

std::string NewJobId() {
  std::random_device rd;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id = "j-";
  for (int i = 0; i < 16; ++i) id += kHex[rd() & 15];
  return id;
}

absl::Status NotFound(const std::string& job_id) {
  return absl::NotFoundError(absl::StrCat("no job ", job_id));
}

// The search generations of a stored job, as its spec says (the job
// config's default when the spec leaves them out); 0 if the spec is bad.
int GenerationsOf(const JobRow& row) {
  JobSpec spec;
  if (!spec.ParseFromString(row.spec)) return 0;
  absl::StatusOr<evaluator::JobConfig> config =
      evaluator::JobConfigFromSpec(spec);
  return config.ok() ? config->search.generations : 0;
}

}  // namespace

JobManager::JobManager(ServerStore* store, search::ResultStore* results,
                       TaskQueue* queue, JobManagerOptions options)
    : store_(store), results_(results), queue_(queue), options_(options) {
  options_.max_model_bytes =
      std::clamp<int64_t>(options_.max_model_bytes, 1024, (int64_t{1} << 31) - 1);
  options_.max_active_jobs_per_client =
      std::clamp(options_.max_active_jobs_per_client, 1, 10000);
  options_.disk_full_retry_ms =
      std::clamp(options_.disk_full_retry_ms, 10, 600000);
  if (options_.model_check.cache == nullptr) {
    options_.model_check.cache = std::make_shared<AnalysisCache>();
  }
}

JobManager::~JobManager() {
  Shutdown();
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    threads.swap(threads_);
  }
  for (std::thread& t : threads) t.join();
}

void JobManager::Shutdown() { stopping_ = true; }

JobStatus JobManager::StatusOf(const Job& job) const {
  JobStatus s;
  const JobRow& r = job.row;
  s.set_job_id(r.job_id);
  s.set_name(r.name);
  s.set_state(static_cast<JobState>(r.state));
  s.set_owner(r.owner);
  s.set_phase(r.phase);
  s.set_generation(job.generation);
  s.set_generations(job.generations);
  s.set_computed(job.computed);
  s.set_cached(job.cached);
  s.set_error(r.error);
  s.set_submitted_unix_ms(r.submitted_ms);
  s.set_updated_unix_ms(r.updated_ms);
  s.set_model_sha256(r.model_sha256);
  s.set_model_bytes(r.model_bytes);
  if (!Ended(r.state)) {
    const QueueCounts counts = queue_->CountsForJob(r.job_id);
    s.set_tasks_pending(counts.queued);
    s.set_tasks_running(counts.leased);
  }
  return s;
}

absl::StatusOr<std::shared_ptr<JobManager::Job>> JobManager::Find(
    const std::string& owner, const std::string& job_id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = jobs_.find(job_id);
    if (it != jobs_.end()) {
      std::lock_guard<std::mutex> job_lock(it->second->mu);
      if (it->second->row.owner != owner) return NotFound(job_id);
      return it->second;
    }
  }
  // A job that ended before this server started: its history is its end.
  absl::StatusOr<std::optional<JobRow>> row = store_->GetJob(job_id);
  if (!row.ok()) return row.status();
  if (!row->has_value() || (*row)->owner != owner) return NotFound(job_id);
  auto job = std::make_shared<Job>(first_seq_.load());
  job->row = **row;
  job->generations = GenerationsOf(job->row);
  // A finished job went through all of them; a failed or cancelled one's
  // last generation was not kept.
  if (job->row.state == JOB_FINISHED) job->generation = job->generations;
  FinalFront front;
  if (!job->row.results.empty() && front.ParseFromString(job->row.results)) {
    job->computed = front.computed();
    job->cached = front.cached();
  }
  JobEvent accepted;
  *accepted.mutable_accepted() = StatusOf(*job);
  job->feed->Publish(std::move(accepted));
  if (Ended(job->row.state)) {
    if (!job->row.results.empty()) {
      JobEvent final_event;
      *final_event.mutable_final_front() = front;
      job->feed->Publish(std::move(final_event));
    }
    JobEvent ended;
    *ended.mutable_ended() = StatusOf(*job);
    job->feed->Publish(std::move(ended), /*last=*/true);
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, inserted] = jobs_.emplace(job_id, job);
  return it->second;
}

absl::Status JobManager::Recover() {
  // Event numbers of this start begin above all a previous start can have
  // given (2^40 each), so watchers resuming across a restart miss nothing.
  absl::StatusOr<int64_t> starts = store_->CountStart();
  if (!starts.ok()) return starts.status();
  first_seq_ = (std::min<int64_t>(*starts, int64_t{1} << 22) << 40) + 1;
  absl::StatusOr<std::vector<JobRow>> rows = store_->ListJobs("");
  if (!rows.ok()) return rows.status();
  for (const JobRow& row : *rows) {
    if (Ended(row.state)) continue;
    auto job = std::make_shared<Job>(first_seq_.load());
    job->row = row;
    job->generations = GenerationsOf(row);
    JobEvent accepted;
    *accepted.mutable_accepted() = StatusOf(*job);
    job->feed->Publish(std::move(accepted));
    JobEvent note;
    note.set_log("resumed after a server restart");
    job->feed->Publish(std::move(note));
    {
      std::lock_guard<std::mutex> lock(mu_);
      jobs_[row.job_id] = job;
    }
    if (options_.log != nullptr) {
      std::fprintf(options_.log, "job %s (%s): resumed\n", row.job_id.c_str(),
                   row.name.c_str());
    }
    Start(job);
  }
  return absl::OkStatus();
}

absl::StatusOr<JobStatus> JobManager::Submit(const std::string& owner,
                                             const JobSpec& spec,
                                             const std::string& model_bytes,
                                             std::vector<std::string>* warnings) {
  if (stopping_) return absl::UnavailableError("the server is shutting down");
  if (static_cast<int64_t>(model_bytes.size()) > options_.max_model_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the model is ", model_bytes.size(), " bytes; this server accepts at "
        "most ", options_.max_model_bytes));
  }
  int active = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, job] : jobs_) {
      std::lock_guard<std::mutex> job_lock(job->mu);
      active += job->row.owner == owner && !Ended(job->row.state);
    }
  }
  if (active >= options_.max_active_jobs_per_client) {
    return absl::ResourceExhaustedError(absl::StrCat(
        owner, " already has ", active, " jobs queued or running (the limit "
        "is ", options_.max_active_jobs_per_client, ")"));
  }
  // Hashed once: the analysis cache's key, the stored model's name.
  const std::string model_sha256 = autoq::Sha256Hex(model_bytes);
  absl::StatusOr<JobCheck> check =
      CheckJob(spec, model_bytes, model_sha256, options_.model_check);
  if (!check.ok()) return check.status();
  if (warnings != nullptr) *warnings = check->warnings;

  auto job = std::make_shared<Job>(first_seq_.load());
  JobRow& row = job->row;
  row.job_id = NewJobId();
  row.owner = owner;
  row.name = spec.name();
  row.spec = spec.SerializeAsString();
  row.model_sha256 = model_sha256;
  row.model_bytes = static_cast<int64_t>(model_bytes.size());
  row.state = JOB_QUEUED;
  row.phase = "queued";
  row.submitted_ms = row.updated_ms = UnixMillis();
  job->generations = check->generations;
  absl::Status st = store_->InsertJobWithModel(row, model_bytes);
  if (!st.ok()) return st;
  JobEvent accepted;
  *accepted.mutable_accepted() = StatusOf(*job);
  job->feed->Publish(std::move(accepted));
  for (const std::string& w : check->warnings) {
    JobEvent e;
    e.set_log(absl::StrCat("warning: ", w));
    job->feed->Publish(std::move(e));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_[row.job_id] = job;
  }
  if (options_.log != nullptr) {
    std::fprintf(options_.log, "job %s (%s) from %s: accepted, model %s\n",
                 row.job_id.c_str(), row.name.c_str(), owner.c_str(),
                 row.model_sha256.substr(0, 12).c_str());
  }
  JobStatus status = StatusOf(*job);
  Start(job);
  return status;
}

void JobManager::Start(const std::shared_ptr<Job>& job) {
  std::lock_guard<std::mutex> lock(mu_);
  ++running_;
  threads_.emplace_back([this, job] {
    RunJobThread(job);
    --running_;
  });
}

void JobManager::RunJobThread(std::shared_ptr<Job> job) {
  std::string job_id, model_sha;
  JobSpec spec;
  {
    std::lock_guard<std::mutex> lock(job->mu);
    job_id = job->row.job_id;
    model_sha = job->row.model_sha256;
    spec.ParseFromString(job->row.spec);
  }
  auto set_state = [&](int state, const std::string& phase,
                       const std::string& error) {
    std::lock_guard<std::mutex> lock(job->mu);
    job->row.state = state;
    job->row.phase = phase;
    job->row.error = error;
    job->row.updated_ms = UnixMillis();
    absl::Status st =
        store_->UpdateJob(job_id, state, phase, error, job->row.updated_ms);
    if (!st.ok() && options_.log != nullptr) {
      std::fprintf(options_.log, "job %s: cannot store its state: %s\n",
                   job_id.c_str(), std::string(st.message()).c_str());
    }
  };
  auto end = [&](int state, const std::string& error) {
    if (job->cancelled && state != JOB_FINISHED) state = JOB_CANCELLED;
    set_state(state, state == JOB_FINISHED ? "done" : job->row.phase,
              state == JOB_CANCELLED ? "" : error);
    JobEvent ended;
    {
      std::lock_guard<std::mutex> lock(job->mu);
      *ended.mutable_ended() = StatusOf(*job);
    }
    job->feed->Publish(std::move(ended), /*last=*/true);
    if (options_.log != nullptr) {
      std::fprintf(options_.log, "job %s: %s%s%s\n", job_id.c_str(),
                   JobState_Name(static_cast<JobState>(state)).c_str(),
                   error.empty() ? "" : ": ", error.c_str());
    }
  };

  if (job->cancelled) return end(JOB_CANCELLED, "");
  absl::StatusOr<std::optional<std::string>> model = store_->GetModel(model_sha);
  if (!model.ok() || !model->has_value()) {
    return end(JOB_FAILED, model.ok() ? "the model is missing from the database"
                                      : std::string(model.status().message()));
  }
  set_state(JOB_RUNNING, "float", "");

  JobRunContext ctx;
  ctx.job_id = job_id;
  ctx.spec = spec;
  ctx.model_bytes = **std::move(model);
  ctx.model_sha256 = model_sha;
  ctx.model_check = &options_.model_check;
  ctx.results = results_;
  ctx.queue = queue_;
  ctx.stop = &stopping_;
  ctx.cancelled = &job->cancelled;
  ctx.publish = [feed = job->feed](JobEvent e) { feed->Publish(std::move(e)); };
  ctx.on_phase = [&](const std::string& phase) {
    set_state(JOB_RUNNING, phase, "");
  };
  ctx.on_progress = [&](int generation, int64_t computed, int64_t cached) {
    std::lock_guard<std::mutex> lock(job->mu);
    job->generation = generation;
    job->computed = computed;
    job->cached = cached;
  };
  // A full disk is not the job's fault: it waits for space and resumes
  // from its last checkpoint, as after a restart, instead of failing.
  bool told = false;
  auto wait_for_space = [&](const absl::Status& why) {
    if (!told) {
      JobEvent e;
      e.set_log(absl::StrCat("waiting for disk space, then resuming: ",
                             why.message()));
      job->feed->Publish(std::move(e));
      if (options_.log != nullptr) {
        std::fprintf(options_.log, "job %s: waiting for disk space: %s\n",
                     job_id.c_str(), std::string(why.message()).c_str());
      }
      told = true;
    }
    const auto until = std::chrono::steady_clock::now() +
                       std::chrono::milliseconds(options_.disk_full_retry_ms);
    while (!stopping_ && !job->cancelled &&
           std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(
          std::min(options_.disk_full_retry_ms, 100)));
    }
    return !stopping_ && !job->cancelled;
  };
  absl::StatusOr<FinalFront> front = RunServiceJob(ctx);
  while (!front.ok() && search::IsDiskFull(front.status()) &&
         wait_for_space(front.status())) {
    front = RunServiceJob(ctx);
  }
  if (stopping_ && !front.ok()) return;  // continued by the next start
  if (!front.ok()) {
    return end(JOB_FAILED, std::string(front.status().message()));
  }
  absl::Status st = store_->SetJobResults(job_id, front->SerializeAsString());
  while (search::IsDiskFull(st) && wait_for_space(st)) {
    st = store_->SetJobResults(job_id, front->SerializeAsString());
  }
  if (stopping_ && !st.ok()) return;
  if (!st.ok()) return end(JOB_FAILED, std::string(st.message()));
  {
    std::lock_guard<std::mutex> lock(job->mu);
    job->row.results = front->SerializeAsString();
  }
  JobEvent final_event;
  *final_event.mutable_final_front() = *front;
  job->feed->Publish(std::move(final_event));
  end(JOB_FINISHED, "");
}

absl::StatusOr<JobStatus> JobManager::Get(const std::string& owner,
                                          const std::string& job_id) {
  absl::StatusOr<std::shared_ptr<Job>> job = Find(owner, job_id);
  if (!job.ok()) return job.status();
  std::lock_guard<std::mutex> lock((*job)->mu);
  return StatusOf(**job);
}

absl::StatusOr<std::vector<JobStatus>> JobManager::List(
    const std::string& owner) {
  absl::StatusOr<std::vector<JobRow>> rows = store_->ListJobs(owner);
  if (!rows.ok()) return rows.status();
  std::vector<JobStatus> out;
  for (const JobRow& row : *rows) {
    absl::StatusOr<JobStatus> s = Get(owner, row.job_id);
    if (s.ok()) out.push_back(*std::move(s));
  }
  return out;
}

absl::StatusOr<JobStatus> JobManager::Cancel(const std::string& owner,
                                             const std::string& job_id) {
  absl::StatusOr<std::shared_ptr<Job>> found = Find(owner, job_id);
  if (!found.ok()) return found.status();
  Job& job = **found;
  {
    std::lock_guard<std::mutex> lock(job.mu);
    if (Ended(job.row.state)) return StatusOf(job);
    job.cancelled = true;
    job.row.state = JOB_CANCELLED;
    job.row.updated_ms = UnixMillis();
    absl::Status st = store_->UpdateJob(job_id, JOB_CANCELLED, job.row.phase,
                                        "", job.row.updated_ms);
    if (!st.ok()) return st;
  }
  queue_->CancelJob(job_id);
  std::lock_guard<std::mutex> lock(job.mu);
  return StatusOf(job);
}

absl::StatusOr<JobResults> JobManager::Results(const std::string& owner,
                                               const std::string& job_id) {
  absl::StatusOr<std::shared_ptr<Job>> found = Find(owner, job_id);
  if (!found.ok()) return found.status();
  JobResults out;
  std::string results;
  {
    std::lock_guard<std::mutex> lock((*found)->mu);
    *out.mutable_status() = StatusOf(**found);
    results = (*found)->row.results;
  }
  if (results.empty()) return out;
  if (!out.mutable_final_front()->ParseFromString(results)) {
    return absl::DataLossError(
        absl::StrCat("the stored results of ", job_id, " do not parse"));
  }
  std::vector<std::pair<std::string, std::string>> names;  // name, key
  for (const char* f : kReportFiles) names.emplace_back(f, ReportKey(job_id));
  for (const auto* list :
       {&out.final_front().front(), &out.final_front().uniform()}) {
    for (const FrontPointInfo& p : *list) {
      for (const std::string& a : p.artifacts()) {
        names.emplace_back(a, p.result_key());
      }
    }
  }
  for (const auto& [name, key] : names) {
    const std::string file = name.substr(name.rfind('/') + 1);
    absl::StatusOr<std::optional<std::string>> bytes =
        results_->GetArtifact(key, file);
    if (!bytes.ok()) return bytes.status();
    if (!bytes->has_value()) continue;
    ArtifactInfo* info = out.add_artifacts();
    info->set_name(name);
    info->set_size_bytes(static_cast<int64_t>((*bytes)->size()));
    info->set_sha256(autoq::Sha256Hex(**bytes));
  }
  return out;
}

absl::StatusOr<std::string> JobManager::Artifact(const std::string& owner,
                                                 const std::string& job_id,
                                                 const std::string& name) {
  absl::StatusOr<std::shared_ptr<Job>> found = Find(owner, job_id);
  if (!found.ok()) return found.status();
  std::string results;
  {
    std::lock_guard<std::mutex> lock((*found)->mu);
    if ((*found)->row.state != JOB_FINISHED) {
      return absl::FailedPreconditionError(
          absl::StrCat("job ", job_id, " has not finished"));
    }
    results = (*found)->row.results;
  }
  // Only names the job lists are served: a name never becomes a path.
  std::string key;
  for (const char* f : kReportFiles) {
    if (name == f) key = ReportKey(job_id);
  }
  FinalFront front;
  if (key.empty() && front.ParseFromString(results)) {
    for (const auto* list : {&front.front(), &front.uniform()}) {
      for (const FrontPointInfo& p : *list) {
        for (const std::string& a : p.artifacts()) {
          if (a == name) key = p.result_key();
        }
      }
    }
  }
  if (key.empty()) {
    return absl::NotFoundError(
        absl::StrCat("job ", job_id, " has no artifact \"", name, "\""));
  }
  absl::StatusOr<std::optional<std::string>> bytes =
      results_->GetArtifact(key, name.substr(name.rfind('/') + 1));
  if (!bytes.ok()) return bytes.status();
  if (!bytes->has_value()) {
    return absl::DataLossError(
        absl::StrCat("artifact ", name, " is missing from the database"));
  }
  return **std::move(bytes);
}

absl::StatusOr<std::shared_ptr<EventFeed>> JobManager::Feed(
    const std::string& owner, const std::string& job_id) {
  absl::StatusOr<std::shared_ptr<Job>> found = Find(owner, job_id);
  if (!found.ok()) return found.status();
  return (*found)->feed;
}

void JobManager::BroadcastWorker(const WorkerChange& change) {
  std::vector<std::shared_ptr<Job>> running;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, job] : jobs_) {
      std::lock_guard<std::mutex> job_lock(job->mu);
      if (!Ended(job->row.state)) running.push_back(job);
    }
  }
  for (const auto& job : running) {
    JobEvent e;
    *e.mutable_worker() = change;
    job->feed->Publish(std::move(e));
  }
}

}  // namespace autoq::server
