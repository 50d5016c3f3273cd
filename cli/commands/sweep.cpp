// corral sweep: an evaluation sweep — a file of programs run as jobs, one JSON result a line
// appended to the output file (client/sweep/ does the work; here: its arguments, a console with
// a progress bar, and the summary).
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <iostream>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>

#include "cli/commands/command.hpp"
#include "client/sweep/options.hpp"
#include "client/sweep/runner.hpp"

namespace corral::cli {

namespace {

int run(context& ctx, const args_t& args);

constexpr int progress_bar_width = 24;
constexpr int64_t progress_redraw_ms = 200;

}  // namespace

extern const verb sweep_verb{
    "sweep",
    "PROBLEMS.jsonl --out RESULTS.jsonl [--concurrency N] [--direct | --queue]\n"
    "                    [--isolation fresh|strict] [--batch ID] [--timeout S] [--output-limit BYTES]\n"
    "                    [--stall-timeout S]",
    "Run a file of programs, one JSON a line; one JSON result a line to --out.",
    "Each program in a fresh sandbox (HumanEval's format works as is); the results are appended\n"
    "to --out, and ids already there are not run again (resume).\n"
    "\n"
    "options:\n"
    "  --out FILE            the results file (appended to; resumed from)\n"
    "  -j, --concurrency N   --direct: run requests in flight (default 8); --queue: publishers\n"
    "  --direct              (default) each program a run request to the executors\n"
    "  --queue               through the JetStream job queue and results stream (docs/jobs.md)\n"
    "  --isolation MODE      fresh (default: a fresh sandbox per program) or strict\n"
    "  --batch ID            the batch (default: derived from the two files' paths)\n"
    "  --timeout S           per program, unless its line says (default 10)\n"
    "  --output-limit BYTES  stdout/stderr kept per program (default: the executor's)\n"
    "  --stall-timeout S     stop when no result came for this long (default 300)\n"
    "\n"
    "input line: id (or task_id), language (python | javascript), source (or prompt +\n"
    "completion), tests (or test), entry_point, stdin, expected, timeout.\n"
    "output line: id, line, passed, status, returncode, completed, stdout, stderr, ... (docs/jobs.md)\n"
    "exit status: 0 when every program has a result; 1 when some have none (run again to resume)\n"
    "or the sweep could not start; 2 on a usage error.\n",
    run};

namespace {

class console {
 public:
  explicit console(bool bar) : bar_(bar) {}
  void note(const std::string& s) {
    std::lock_guard<std::mutex> lock(mu_);
    std::string text = (drawn_ ? "\r\033[K" : "") + s + "\n" + last_bar_;
    std::fputs(text.c_str(), stderr);
    std::fflush(stderr);
  }
  void draw(const std::string& bar) {
    if (!bar_) return;
    std::lock_guard<std::mutex> lock(mu_);
    last_bar_ = bar;
    drawn_ = true;
    std::fputs(("\r\033[K" + bar).c_str(), stderr);
    std::fflush(stderr);
  }
  void clear() {
    std::lock_guard<std::mutex> lock(mu_);
    if (drawn_) std::fputs("\r\033[K", stderr);
    drawn_ = false;
    last_bar_.clear();
    std::fflush(stderr);
  }
  bool bar() const { return bar_; }

 private:
  const bool bar_;
  std::mutex mu_;
  bool drawn_ = false;
  std::string last_bar_;
};

std::string format_duration(double s) {
  if (!(s >= 0) || s > 359999) return "--:--";
  const auto t = static_cast<long>(s + 0.5);
  char buf[32];
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  else std::snprintf(buf, sizeof buf, "%ld:%02ld", t / 60, t % 60);
  return buf;
}

// Redraws the bar from the runner's counts until `done`.
void progress_loop(const sweep::runner& r, console& con, std::mutex& mu, std::condition_variable& cv,
                   const bool& done) {
  std::unique_lock<std::mutex> lock(mu);
  while (!done) {
    lock.unlock();
    const auto c = r.progress();
    const std::size_t done_now = c.before + c.ran + c.invalid_now;
    const double elapsed = r.elapsed_ms() / 1000.0;
    const double rate = elapsed > 0 ? c.ran / elapsed : 0;
    const std::size_t left = c.todo > c.ran ? c.todo - c.ran : 0;
    constexpr int width = progress_bar_width;
    const int filled = c.total == 0 ? width : static_cast<int>(width * done_now / c.total);
    char buf[256];
    std::snprintf(buf, sizeof buf, "[%s%s] %zu/%zu  passed %zu  %.1f/s  ETA %s",
                  std::string(static_cast<std::size_t>(filled), '#').c_str(),
                  std::string(static_cast<std::size_t>(width - filled), '.').c_str(), done_now,
                  c.total, c.before_passed + c.passed, rate,
                  rate > 0 ? format_duration(left / rate).c_str() : "--:--");
    con.draw(buf);
    lock.lock();
    cv.wait_for(lock, std::chrono::milliseconds(progress_redraw_ms), [&] { return done; });
  }
}

int run(context& ctx, const args_t& args) {
  sweep::options o;
  std::string why;
  if (!sweep::parse_args(args, o, &why)) return usage_error(sweep_verb, why.substr(why.find(' ') + 1));
  const bool queue = o.mode == sweep::transport::queue;
  const std::string out_path = o.out;
  console con(::isatty(STDERR_FILENO) == 1);
  sweep::runner r(std::move(o), ctx.tenant_config(), [&con](const std::string& s) { con.note(s); });
  if (int rc = r.prepare(&why); rc != sweep::exit_all_done) {
    std::cerr << "corral sweep: " << why << "\n";
    return rc;
  }

  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::thread progress;
  if (con.bar()) progress = std::thread([&] { progress_loop(r, con, mu, cv, done); });
  const int rc = r.run();
  {
    std::lock_guard<std::mutex> lock(mu);
    done = true;
  }
  cv.notify_all();
  if (progress.joinable()) progress.join();
  con.clear();

  const std::size_t missing = r.missing();
  const auto c = r.progress();
  if (const auto reason = r.stop_reason(); !reason.empty())
    std::cerr << "corral sweep: stopped: " << reason << "\n";
  const double elapsed = r.elapsed_ms() / 1000.0;
  const std::size_t invalid = c.before_invalid + c.invalid_now;
  const std::size_t passed_all = c.before_passed + c.passed;
  const std::size_t failed = c.total - missing - invalid - passed_all;
  std::ostringstream s;
  s << "corral sweep: " << c.total << " programs: " << passed_all << " passed, " << failed
    << " failed, " << invalid << " invalid, " << missing << " errors"
    << (missing ? " (no result: run again to resume)" : "") << "; " << c.ran << " new results, "
    << c.before << " already in " << out_path;
  char tail[96];
  std::snprintf(tail, sizeof tail, "; %.1f s, %.2f programs/s", elapsed,
                elapsed > 0 ? c.ran / elapsed : 0.0);
  s << tail;
  if (queue && c.ran + missing > 0) {
    s << "; batch " << r.batch() << ": published " << c.published;
    if (c.already_queued) s << " (" << c.already_queued << " more were queued already)";
    s << ", " << c.duplicates << " duplicate results ignored";
    if (c.stale) s << ", " << c.stale << " results of other programs ignored";
    if (c.unreadable) s << ", " << c.unreadable << " unreadable results";
  }
  std::cerr << s.str() << "\n";
  return rc != sweep::exit_all_done || missing != 0 ? sweep::exit_missing : sweep::exit_all_done;
}

}  // namespace

}  // namespace corral::cli
