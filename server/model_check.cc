#include "server/model_check.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <new>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "common/file_util.h"
#include "common/sha256.h"
#include "qat/model_analysis.h"

namespace autoq::server {
namespace {

using Json = nlohmann::json;

constexpr int kRefused = 3;
constexpr int kOutOfMemory = 4;
constexpr size_t kMaxOutput = size_t{64} << 20;  // the analysis JSON
constexpr size_t kMaxErrors = 64 << 10;          // the analyzer's stderr

bool IsOutOfMemory(absl::string_view message) {
  return absl::StrContains(message, "can't allocate memory") ||
         absl::StrContains(message, "bad_alloc") ||
         absl::StrContains(message, "Cannot allocate memory");
}

// In-process analysis: the old way, for embedders that opt out.
absl::StatusOr<qat::ModelAnalysis> AnalyzeHere(
    const std::string& bytes, const std::vector<int64_t>& shape) {
  absl::StatusOr<torch::jit::Module> module =
      qat::LoadModelFromBytes(bytes, "the model");
  if (!module.ok()) return module.status();
  absl::StatusOr<qat::ModelAnalysis> a = qat::AnalyzeModel(*module, shape);
  if (!a.ok()) return absl::InvalidArgumentError(a.status().message());
  return a;
}

// The last non-empty line of `text`, without the analyzer's prefix.
std::string LastLine(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) {
    text.pop_back();
  }
  const size_t nl = text.rfind('\n');
  absl::string_view line = text;
  if (nl != std::string::npos) line.remove_prefix(nl + 1);
  absl::ConsumePrefix(&line, "analyze-model: ");
  return std::string(line);
}

// A temporary file holding the model, removed with this object.
class TempModelFile {
 public:
  absl::Status Write(const std::string& dir, const std::string& bytes) {
    std::string tmpl = (std::filesystem::path(dir) / "autoq-model-XXXXXX").string();
    const int fd = mkstemp(tmpl.data());
    if (fd < 0) {
      return absl::InternalError(absl::StrCat(
          "cannot create a temporary file in ", dir, ": ", std::strerror(errno)));
    }
    path_ = tmpl;
    size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        const std::string why = std::strerror(errno);
        ::close(fd);
        return absl::InternalError(
            absl::StrCat("cannot write ", path_, ": ", why));
      }
      done += static_cast<size_t>(n);
    }
    ::close(fd);
    return absl::OkStatus();
  }
  ~TempModelFile() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace

std::string AnalysisToJson(const qat::ModelAnalysis& a) {
  Json j;
  j["input_shape"] = a.input_shape;
  j["num_parameters"] = a.num_parameters;
  j["float_size_bytes"] = a.float_size_bytes;
  j["total_macs"] = a.total_macs;
  j["num_classes"] = a.num_classes;
  j["layers"] = Json::array();
  for (const qat::LayerInfo& l : a.layers) {
    j["layers"].push_back({{"graph_index", l.graph_index},
                           {"gene", l.gene},
                           {"module_path", l.module_path},
                           {"weight_path", l.weight_path},
                           {"bias_path", l.bias_path},
                           {"kind", qat::LayerKindName(l.kind)},
                           {"weight_shape", l.weight_shape},
                           {"num_weights", l.num_weights},
                           {"groups", l.groups},
                           {"bn_path", l.bn_path},
                           {"bn_eps", l.bn_eps},
                           {"activation", l.activation},
                           {"output_shape", l.output_shape},
                           {"macs", l.macs},
                           {"masked", l.masked},
                           {"mask_reason", l.mask_reason}});
  }
  return j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
}

absl::StatusOr<qat::ModelAnalysis> AnalysisFromJson(absl::string_view text) {
  try {
    const Json j = Json::parse(text);
    qat::ModelAnalysis a;
    a.input_shape = j.at("input_shape").get<std::vector<int64_t>>();
    a.num_parameters = j.at("num_parameters").get<int64_t>();
    a.float_size_bytes = j.at("float_size_bytes").get<int64_t>();
    a.total_macs = j.at("total_macs").get<int64_t>();
    a.num_classes = j.at("num_classes").get<int64_t>();
    for (const Json& jl : j.at("layers")) {
      qat::LayerInfo l;
      l.graph_index = jl.at("graph_index").get<int>();
      l.gene = jl.at("gene").get<int>();
      l.module_path = jl.at("module_path").get<std::string>();
      l.weight_path = jl.at("weight_path").get<std::string>();
      l.bias_path = jl.at("bias_path").get<std::string>();
      const std::string kind = jl.at("kind").get<std::string>();
      bool known = false;
      for (qat::LayerKind k :
           {qat::LayerKind::kConv, qat::LayerKind::kDepthwise,
            qat::LayerKind::kPointwise, qat::LayerKind::kLinear}) {
        if (qat::LayerKindName(k) == kind) {
          l.kind = k;
          known = true;
        }
      }
      if (!known) {
        return absl::InternalError(absl::StrCat("unknown layer kind ", kind));
      }
      l.weight_shape = jl.at("weight_shape").get<std::vector<int64_t>>();
      l.num_weights = jl.at("num_weights").get<int64_t>();
      l.groups = jl.at("groups").get<int64_t>();
      l.bn_path = jl.at("bn_path").get<std::string>();
      l.bn_eps = jl.at("bn_eps").get<double>();
      l.activation = jl.at("activation").get<std::string>();
      l.output_shape = jl.at("output_shape").get<std::vector<int64_t>>();
      l.macs = jl.at("macs").get<int64_t>();
      l.masked = jl.at("masked").get<bool>();
      l.mask_reason = jl.at("mask_reason").get<std::string>();
      a.layers.push_back(std::move(l));
    }
    return a;
  } catch (const std::exception& e) {
    return absl::InternalError(
        absl::StrCat("the model analyzer's answer does not parse: ", e.what()));
  }
}

int AnalyzeModelMain(const std::string& path, const std::string& shape_text) {
  auto refuse = [](absl::string_view message) {
    std::fprintf(stderr, "analyze-model: %s\n", std::string(message).c_str());
    return IsOutOfMemory(message) ? kOutOfMemory : kRefused;
  };
  try {
    absl::StatusOr<std::vector<int64_t>> shape = qat::ParseShape(shape_text);
    if (!shape.ok()) return refuse(shape.status().message());
    absl::StatusOr<torch::jit::Module> module = qat::LoadModel(path);
    if (!module.ok()) return refuse(module.status().message());
    absl::StatusOr<qat::ModelAnalysis> a = qat::AnalyzeModel(*module, *shape);
    if (!a.ok()) return refuse(a.status().message());
    const std::string json = AnalysisToJson(*a);
    if (std::fwrite(json.data(), 1, json.size(), stdout) != json.size() ||
        std::fflush(stdout) != 0) {
      return refuse("cannot write the analysis");
    }
    return 0;
  } catch (const std::bad_alloc&) {
    std::fputs("analyze-model: out of memory\n", stderr);
    return kOutOfMemory;
  } catch (const std::exception& e) {
    return refuse(e.what());
  }
}

namespace {
// The child-process analysis itself (defined below).
absl::StatusOr<qat::ModelAnalysis> AnalyzeUncached(
    const std::string& model_bytes, const std::vector<int64_t>& input_shape,
    const ModelCheckOptions& options);
}  // namespace

std::optional<qat::ModelAnalysis> AnalysisCache::Get(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return std::nullopt;
  entries_.splice(entries_.begin(), entries_, it->second);
  return it->second->second;
}

void AnalysisCache::Put(const std::string& key,
                        const qat::ModelAnalysis& analysis) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_key_.find(key);
  if (it != by_key_.end()) {
    entries_.erase(it->second);
    by_key_.erase(it);
  }
  entries_.emplace_front(key, analysis);
  by_key_[key] = entries_.begin();
  if (entries_.size() > capacity_) {
    by_key_.erase(entries_.back().first);
    entries_.pop_back();
  }
}

absl::StatusOr<qat::ModelAnalysis> AnalyzeModelApart(
    const std::string& model_bytes, const std::string& model_sha256,
    const std::vector<int64_t>& input_shape, const ModelCheckOptions& options) {
  if (options.cache == nullptr) {
    return AnalyzeUncached(model_bytes, input_shape, options);
  }
  const std::string key = absl::StrCat(
      model_sha256.empty() ? autoq::Sha256Hex(model_bytes) : model_sha256, "@",
                                       absl::StrJoin(input_shape, ","));
  if (std::optional<qat::ModelAnalysis> hit = options.cache->Get(key)) {
    return *std::move(hit);
  }
  absl::StatusOr<qat::ModelAnalysis> analysis =
      AnalyzeUncached(model_bytes, input_shape, options);
  if (analysis.ok()) options.cache->Put(key, *analysis);
  return analysis;
}

namespace {

absl::StatusOr<qat::ModelAnalysis> AnalyzeUncached(
    const std::string& model_bytes, const std::vector<int64_t>& input_shape,
    const ModelCheckOptions& options) {
  if (options.analyzer.empty()) return AnalyzeHere(model_bytes, input_shape);
  const int64_t memory_mb = std::max<int64_t>(64, options.memory_mb);
  const int cpu_seconds = std::max(1, options.cpu_seconds);
  const int wall_seconds = std::max(1, options.wall_seconds);

  TempModelFile file;
  if (absl::Status st = file.Write(
          options.tmp_dir.empty()
              ? std::filesystem::temp_directory_path().string()
              : options.tmp_dir,
          model_bytes);
      !st.ok()) {
    return st;
  }
  const std::string shape = absl::StrJoin(input_shape, ",");
  // Everything the child needs is made before fork: between fork and exec
  // only async-signal-safe calls are allowed.
  std::vector<std::string> args = {options.analyzer, "analyze-model",
                                   file.path(), shape};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  }
  if (pipe2(err, O_CLOEXEC) != 0) {
    ::close(out[0]);
    ::close(out[1]);
    return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  }
  const rlimit memory = {static_cast<rlim_t>(memory_mb) << 20,
                         static_cast<rlim_t>(memory_mb) << 20};
  const rlimit cpu = {static_cast<rlim_t>(cpu_seconds),
                      static_cast<rlim_t>(cpu_seconds) + 5};
  const rlimit no_core = {0, 0};
  // Under AddressSanitizer (scripts/sanitize.sh) the analyzer maps
  // terabytes of shadow memory, which an address-space limit forbids:
  // ASan's own allocation limit stands in for it there.
#if defined(__SANITIZE_ADDRESS__)
  constexpr bool kAddressLimit = false;
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    if (!absl::StartsWith(*e, "ASAN_OPTIONS=")) env_strings.push_back(*e);
  }
  env_strings.push_back(absl::StrCat(
      "ASAN_OPTIONS=allocator_may_return_null=1:detect_leaks=0:"
      "max_allocation_size_mb=",
      memory_mb));
  std::vector<char*> envp;
  for (std::string& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
#else
  constexpr bool kAddressLimit = true;
  char** envp = environ;
#endif
  const pid_t pid = fork();
  if (pid < 0) {
    for (int fd : {out[0], out[1], err[0], err[1]}) ::close(fd);
    return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
  }
  if (pid == 0) {
    if (kAddressLimit) setrlimit(RLIMIT_AS, &memory);
    setrlimit(RLIMIT_CPU, &cpu);
    setrlimit(RLIMIT_CORE, &no_core);
    const int null = ::open("/dev/null", O_RDONLY);
    if (null >= 0) dup2(null, 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    // Nothing of the server (database, sockets) reaches the model's code.
    if (syscall(SYS_close_range, 3u, ~0u, 0u) != 0) {
      for (int fd = 3; fd < 4096; ++fd) ::close(fd);
    }
#if defined(__SANITIZE_ADDRESS__)
    execve(argv[0], argv.data(), envp.data());
#else
    execve(argv[0], argv.data(), envp);
#endif
    _exit(127);
  }
  ::close(out[1]);
  ::close(err[1]);

  // Both pipes until they close or the wall time is up.
  std::string answer, errors;
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(wall_seconds);
  bool timed_out = false;
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  int open_fds = 2;
  char buf[65536];
  while (open_fds > 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    const int ready = poll(fds, 2, static_cast<int>(std::min<int64_t>(left, 1000)));
    if (ready < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) {
        continue;
      }
      const ssize_t n = ::read(fds[i].fd, buf, sizeof(buf));
      if (n > 0) {
        std::string& sink = i == 0 ? answer : errors;
        const size_t cap = i == 0 ? kMaxOutput : kMaxErrors;
        if (sink.size() < cap) sink.append(buf, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (const pollfd& p : fds) {
    if (p.fd >= 0) ::close(p.fd);
  }
  if (timed_out) kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }

  // The child saw the model under a temporary name: users know it as the
  // model they sent.
  const std::string why = absl::StrReplaceAll(
      LastLine(errors), {{file.path(), "the model"}});
  if (timed_out ||
      (WIFSIGNALED(status) && (WTERMSIG(status) == SIGXCPU ||
                               WTERMSIG(status) == SIGKILL))) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the model did not finish loading and one forward pass within the "
        "limits (", cpu_seconds, " s of CPU, ", wall_seconds, " s)"));
  }
  if (WIFSIGNALED(status)) {
    return absl::InvalidArgumentError(
        absl::StrCat("the model crashed the loader (signal ", WTERMSIG(status),
                     ": ", strsignal(WTERMSIG(status)), ")"));
  }
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (code == 0) return AnalysisFromJson(answer);
  if (code == kOutOfMemory) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the model needs more than ", memory_mb,
        " MB to load and run one forward pass", why.empty() ? "" : ": ", why));
  }
  if (code == kRefused) return absl::InvalidArgumentError(why);
  if (code == 127) {
    return absl::InternalError(absl::StrCat("cannot run the model analyzer ",
                                            options.analyzer));
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "the model analyzer failed (exit ", code, ")",
      why.empty() ? "" : ": ", why));
}

}  // namespace

}  // namespace autoq::server
