#include "qat/progress.h"

#include <unistd.h>

#include "absl/strings/str_format.h"

namespace autoq::qat {
namespace {

std::string FormatDuration(double s) {
  if (s < 0 || s > 1e7) return "--:--";
  int64_t t = static_cast<int64_t>(s + 0.5);
  if (t >= 3600) return absl::StrFormat("%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60);
  return absl::StrFormat("%02d:%02d", t / 60, t % 60);
}

}  // namespace

Progress::Progress(std::string label, int64_t total, ProgressOptions options)
    : label_(std::move(label)),
      total_(total),
      options_(options),
      tty_(options.out != nullptr && isatty(fileno(options.out))),
      start_(std::chrono::steady_clock::now()),
      last_print_(start_) {}

Progress::~Progress() {
  if (tty_ && !finished_ && done_ > 0) std::fputc('\n', options_.out);
}

void Progress::Update(int64_t done, const std::string& extra) {
  done_ = done;
  if (options_.out == nullptr) return;
  auto now = std::chrono::steady_clock::now();
  double since = std::chrono::duration<double>(now - last_print_).count();
  // A terminal redraws at most 10 times a second; logs get sparse lines.
  if (since < (tty_ ? 0.1 : options_.log_interval_s)) return;
  last_print_ = now;
  Print(false, extra);
}

void Progress::Finish(const std::string& extra) {
  if (finished_) return;
  finished_ = true;
  if (options_.out == nullptr) return;
  Print(true, extra);
}

void Progress::Print(bool final, const std::string& extra) {
  double elapsed = std::chrono::duration<double>(
                       std::chrono::steady_clock::now() - start_)
                       .count();
  double rate = elapsed > 0 ? done_ / elapsed : 0;
  double eta = rate > 0 ? (total_ - done_) / rate : -1;
  double frac = total_ > 0 ? static_cast<double>(done_) / total_ : 1.0;
  std::string line;
  if (tty_) {
    constexpr int kWidth = 24;
    int filled = static_cast<int>(frac * kWidth);
    std::string bar(filled, '#');
    bar.resize(kWidth, '.');
    line = absl::StrFormat("\r%s [%s] %3.0f%% %.0f %s/s %s %s%s\033[K", label_,
                           bar, 100 * frac, rate, options_.unit,
                           final ? "in " + FormatDuration(elapsed)
                                 : "ETA " + FormatDuration(eta),
                           extra, final ? "\n" : "");
  } else {
    line = absl::StrFormat("%s %lld/%lld (%.0f%%) %.0f %s/s %s %s\n", label_,
                           static_cast<long long>(done_),
                           static_cast<long long>(total_), 100 * frac, rate,
                           options_.unit,
                           final ? "in " + FormatDuration(elapsed)
                                 : "ETA " + FormatDuration(eta),
                           extra);
  }
  std::fputs(line.c_str(), options_.out);
  std::fflush(options_.out);
}

}  // namespace autoq::qat
