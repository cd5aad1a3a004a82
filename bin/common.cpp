#include "bin/common.hpp"

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <thread>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include "bin/cluster_cli.hpp"
#include "metrics/prometheus_observer.hpp"
#include "metrics/registry.hpp"
#include "metrics/server.hpp"
#include "report/monitor.hpp"
#include "runtime/output.hpp"
#include "runtime/strategy.hpp"

namespace alb::cli {

void run_flags::add_config(CLI::App* cmd) {
  cmd->add_option("--config", config_path,
                  "Configuration file, TOML or the original's JSON "
                  "(default: $LB_CONFIG_PATH)");
}

void run_flags::add_metrics(CLI::App* cmd) {
  cmd
    ->add_option("--metrics-port", metrics_port,
                 "Serve Prometheus /metrics on this port (0 = any free "
                 "port, printed)")
    ->check(CLI::Range(0, 65535));
  cmd->add_option("--metrics-bind", metrics_bind,
                  "Address /metrics binds to (default 127.0.0.1)");
  cmd->add_flag("--metrics-allow-remote", metrics_allow_remote,
                "Allow a non-loopback --metrics-bind address");
  cmd
    ->add_option("--metrics-linger", metrics_linger,
                 "Keep serving /metrics this many seconds after the run")
    ->check(CLI::Range(0.0, 86400.0));
}

std::string default_strategy_note() {
  return scheduler_config{}.strategy
         + " unless the config says otherwise: it had the shortest makespans "
           "on alb benchmark's heterogeneous fleets";
}

void run_flags::add_simulation(CLI::App* cmd, const std::string& strategy_help,
                               bool with_check) {
  cmd->add_option("--seed", seed, "Seed for every random draw")->default_val(1);
  std::string names;
  for (auto& n : strategy_names())
    names += (names.empty() ? "" : ", ") + n;
  cmd
    ->add_option("--strategy", strategy,
                 strategy_help + ": " + names + " (default [scheduler] "
                   + "strategy, " + default_strategy_note() + ")")
    ->check(CLI::IsMember(strategy_names()));
  cmd
    ->add_option("--time-scale", time_scale,
                 "Simulated seconds per real second (10 = ten times faster)")
    ->default_val(1)
    ->check(CLI::Range(1e-3, 1e6));
  cmd->add_flag("--deterministic", deterministic,
                "Virtual clock, one thread: fast and reproducible from --seed");
  cmd->add_option("--threads", threads, "Scheduler threads (0 = one per core)")
    ->default_val(0)
    ->check(CLI::Range(0, 256));
  cmd
    ->add_option("--shards", shards,
                 "Split the scheduler into N shards, each with its own "
                 "threads (--threads / N, at least 1) and every N-th worker; "
                 "idle shards steal queued tests. Real time and a fixed "
                 "fleet only (not with --deterministic, --dynamic, worker "
                 "events or --metrics-port)")
    ->default_val(1)
    ->check(CLI::Range(1, 64));
  cmd
    ->add_option("--busy-poll-us", busy_poll_us,
                 "Microseconds an idle scheduler thread keeps polling for "
                 "work before it sleeps (0 = a short spin): lower waits for "
                 "tests that arrive while it is idle, for a core's worth of "
                 "CPU while it polls. Real time and one thread per shard "
                 "(--threads equal to --shards) only")
    ->default_val(0)
    ->check(CLI::Range(0, 1000000));
  if (with_check)
    cmd->add_flag("--check-invariants", check,
                  "Verify reservations and counts on every scheduler tick");
}

void run_flags::apply_simulation(simulation_options& o,
                                 const scheduler_config& sched,
                                 const std::string& fallback_strategy) const {
  o.seed = seed;
  o.scheduler = sched;
  if (!strategy.empty())
    o.scheduler.strategy = strategy;
  else if (!fallback_strategy.empty())
    o.scheduler.strategy = fallback_strategy;
  o.scheduler.seed = seed;
  o.time_scale = time_scale;
  o.deterministic = deterministic;
  o.threads = threads;
  o.shards = shards;
  o.busy_poll_us = busy_poll_us;
  o.check_invariants = check;
}

void run_flags::add_output(CLI::App* cmd) {
  cmd->add_option("--output", output,
                  "Save results to this JSON file; '-' writes the JSON to "
                  "stdout and the summary to stderr. Regular files are "
                  "replaced atomically; FIFOs, devices and links to them "
                  "are written in place");
  cmd->add_flag("-q,--quiet", quiet, "No progress line");
  cmd->add_flag("--live", live,
                "Show the run live as a full-screen dashboard (as alb "
                "monitor does); a progress line when not on a terminal");
  add_log_flags(cmd, nullptr, log_format);
}

std::ostream& run_flags::human() const {
  int fd = -1;
  if (!output.empty() && classify_output(output, &fd) == output_kind::descriptor
      && fd == STDOUT_FILENO)
    return std::cerr;
  return std::cout;
}

std::FILE* run_flags::human_file() const {
  return &human() == &std::cerr ? stderr : stdout;
}

config load_run_config(const run_flags& f, const char* command) {
  auto cfg = load_effective_config(f.config_path);
  if (f.log_format == "json") {
    cluster_log log{command, "INFO", log_format::json};
    for (auto& w : cfg.warnings)
      log.warn(w);
  } else {
    for (auto& w : cfg.warnings)
      std::cerr << "alb " << command << ": warning: " << w << "\n";
  }
  return cfg;
}

struct metrics_session::impl {
  std::unique_ptr<metrics::registry> reg;
  std::unique_ptr<metrics::prometheus_observer> obs;
  std::unique_ptr<metrics::server> srv;
  double linger = 0;
  std::ostream* out = &std::cout;
};

std::unique_ptr<metrics_session>
metrics_session::start(const run_flags& f, const config& cfg,
                       const std::string& mode, const std::string& strategy) {
  auto port = f.metrics_port >= 0 ? f.metrics_port : cfg.metrics.port;
  if (port < 0)
    return nullptr;
  auto bind = f.metrics_bind.empty() ? cfg.metrics.bind : f.metrics_bind;
  auto s = std::unique_ptr<metrics_session>(new metrics_session);
  s->impl_ = std::make_unique<impl>();
  s->impl_->reg
    = std::make_unique<metrics::registry>(metrics::run_info{mode, strategy});
  s->impl_->srv = std::make_unique<metrics::server>(
    *s->impl_->reg, bind, static_cast<uint16_t>(port), f.metrics_allow_remote);
  s->impl_->obs
    = std::make_unique<metrics::prometheus_observer>(*s->impl_->reg);
  s->impl_->linger
    = f.metrics_linger >= 0 ? f.metrics_linger : cfg.metrics.linger;
  s->impl_->out = &f.human();
  *s->impl_->out << "metrics: " << s->impl_->srv->url() << std::endl;
  return s;
}

metrics_session::~metrics_session() = default;

scheduler_observer* metrics_session::observer() {
  return impl_->obs.get();
}

metrics::registry& metrics_session::registry() {
  return *impl_->reg;
}

metrics::server& metrics_session::server() {
  return *impl_->srv;
}

void metrics_session::linger() {
  if (impl_->linger <= 0)
    return;
  *impl_->out << "serving " << impl_->srv->url() << " for " << impl_->linger
              << " s more" << std::endl;
  std::this_thread::sleep_for(std::chrono::duration<double>(impl_->linger));
}

namespace {

// `json`: off a terminal, each progress line is a JSON log line of
// component `command` instead of a plain one.
void print_progress(const run_progress& p, uint64_t total, bool tty,
                    const cluster_log* json) {
  char line[200];
  std::snprintf(line, sizeof(line),
                "[%6.1fs] submitted %llu/%llu  completed %llu  failed %llu  "
                "waiting %llu  running %llu  workers %llu",
                p.elapsed, static_cast<unsigned long long>(p.submitted),
                static_cast<unsigned long long>(total),
                static_cast<unsigned long long>(p.completed),
                static_cast<unsigned long long>(p.failed),
                static_cast<unsigned long long>(p.waiting),
                static_cast<unsigned long long>(p.in_flight),
                static_cast<unsigned long long>(p.workers));
  if (tty)
    std::cerr << "\r" << line << "\033[K" << std::flush;
  else if (json)
    json->info(line);
  else
    std::cerr << line << "\n";
}

std::string live_status(const run_progress& p, uint64_t total) {
  char line[200];
  std::snprintf(line, sizeof(line),
                "%.1f s into the run: submitted %llu/%llu, completed %llu, "
                "failed %llu, waiting %llu, running %llu",
                p.elapsed, static_cast<unsigned long long>(p.submitted),
                static_cast<unsigned long long>(total),
                static_cast<unsigned long long>(p.completed),
                static_cast<unsigned long long>(p.failed),
                static_cast<unsigned long long>(p.waiting),
                static_cast<unsigned long long>(p.in_flight));
  return line;
}

// Interrupt requests of the running command, counted by the handler.
std::atomic<int> interrupts{0};
std::atomic<int> interrupt_signal{0};

extern "C" void on_interrupt(int sig) {
  interrupt_signal.store(sig);
  auto n = interrupts.fetch_add(1) + 1;
  // Only async-signal-safe calls here: write(2) and _exit(2).
  const char* msg
    = n == 1   ? "\nalb: interrupted: no more submissions; waiting for the "
                 "submitted tests to end (again to stop now)\n"
      : n == 2 ? "\nalb: interrupted again: stopping now\n"
               : nullptr;
  if (msg) {
    auto rc = ::write(STDERR_FILENO, msg, std::strlen(msg));
    (void)rc;
  } else {
    ::_exit(128 + sig);
  }
}

/// SIGINT and SIGTERM handlers for the lifetime of a run; the previous ones
/// come back afterwards.
struct interrupt_guard {
  struct sigaction old_int {};
  struct sigaction old_term {};
  interrupt_guard() {
    interrupts.store(0);
    interrupt_signal.store(0);
    struct sigaction sa {};
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, &old_int);
    ::sigaction(SIGTERM, &sa, &old_term);
  }
  ~interrupt_guard() {
    ::sigaction(SIGINT, &old_int, nullptr);
    ::sigaction(SIGTERM, &old_term, nullptr);
  }
  interrupt_guard(const interrupt_guard&) = delete;
  interrupt_guard& operator=(const interrupt_guard&) = delete;
};

} // namespace

int run_and_report(simulation_options o, const run_flags& f,
                   const char* command, metrics_session* metrics) {
  if (!f.output.empty()) {
    if (auto err = check_output_path(f.output); !err.empty()) {
      std::cerr << "alb " << command << ": error: " << err << "\n";
      return 2;
    }
  }
  bool tty = ::isatty(STDERR_FILENO) != 0;
  uint64_t total = o.tests;
  for (auto& w : o.extra_waves)
    total += w.count;
  auto json
    = f.log_format == "json"
        ? std::make_shared<cluster_log>(command, "INFO", log_format::json)
        : nullptr;
  if (!f.quiet)
    o.on_progress = [total, tty, json](const run_progress& p) {
      print_progress(p, total, tty, json.get());
    };
  if (metrics)
    o.observer = metrics->observer();
  // --live renders the run's own registry: the one /metrics serves, or a
  // private one when nothing is served. Only on a terminal; elsewhere the
  // progress line above stays.
  std::unique_ptr<metrics::registry> live_registry;
  std::unique_ptr<metrics::prometheus_observer> live_observer;
  std::unique_ptr<report::live_view> live;
  if (f.live && tty && ::isatty(STDOUT_FILENO) != 0) {
    auto* reg = metrics ? &metrics->registry() : nullptr;
    if (!reg) {
      live_registry = std::make_unique<metrics::registry>(
        metrics::run_info{command, o.scheduler.strategy});
      live_observer
        = std::make_unique<metrics::prometheus_observer>(*live_registry);
      o.observer = live_observer.get();
      reg = live_registry.get();
    }
    live = std::make_unique<report::live_view>(std::string{"alb "} + command
                                               + " (live)");
    o.on_progress = [&live, reg, total](const run_progress& p) {
      live->show(reg->scrape(), p.elapsed, live_status(p, total));
    };
  }
  interrupt_guard guard;
  o.interrupts = &interrupts;
  simulation_result r;
  try {
    r = run_simulation(o);
  } catch (const std::invalid_argument& e) {
    live.reset();
    std::cerr << "alb " << command << ": error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    live.reset();
    std::cerr << "\nalb " << command << ": error: " << e.what() << "\n";
    return 1;
  }
  live.reset();
  if (!f.quiet && tty)
    std::cerr << "\n";
  // The result first: a reader that stops early (`| head -1`) or a signal
  // during the summary must not cost the file.
  bool written = false;
  if (!f.output.empty()) {
    try {
      write_result(f.output, r.document.dump(2) + "\n");
      written = true;
    } catch (const std::exception& e) {
      std::cerr << "alb " << command << ": error: " << e.what() << "\n";
      return 1;
    }
  }
  auto& out = f.human();
  out << format_summary(r.document);
  char wall[64];
  std::snprintf(wall, sizeof(wall), "wall time %.2f s\n", r.wall_seconds);
  out << wall;
  if (written && &out == &std::cout)
    out << "results written to " << f.output << "\n";
  out << std::flush;
  for (auto& v : r.violations)
    std::cerr << "alb " << command << ": invariant violated: " << v << "\n";
  if (r.interrupts > 0) {
    auto sig = interrupt_signal.load();
    std::cerr << "alb " << command << ": interrupted by "
              << (sig == SIGTERM ? "SIGTERM" : "SIGINT") << "; "
              << (f.output.empty() ? "partial result not saved (no --output)"
                                   : "partial result written")
              << "\n";
    return 128 + sig;
  }
  if (metrics)
    metrics->linger();
  return r.violations.empty() ? 0 : 1;
}

int guarded(const char* command, const std::function<int()>& body) {
  try {
    return body();
  } catch (const config_error& e) {
    std::cerr << "alb " << command << ": error: " << e.what() << "\n";
    return 2;
  } catch (const metrics::server_error& e) {
    std::cerr << "alb " << command << ": error: " << e.what() << "\n";
    return 2;
  }
}

} // namespace alb::cli
