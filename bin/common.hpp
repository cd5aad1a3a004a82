#pragma once

// Command-line plumbing shared by the run commands (stress, spike, scenario,
// benchmark): configuration loading with its precedence, the /metrics
// endpoint's flags and lifetime, and printing and writing a run's result.

#include <cstdio>
#include <iosfwd>
#include <memory>
#include <string>

#include "actors/simulation_run.hpp"
#include "runtime/config.hpp"

namespace CLI {
class App;
} // namespace CLI

namespace alb {
class scheduler_observer;
} // namespace alb

namespace alb::metrics {
class registry;
class server;
} // namespace alb::metrics

namespace alb::cli {

/// Flags every run command shares.
struct run_flags {
  /// --config FILE ("" = LB_CONFIG_PATH, else none).
  std::string config_path;
  /// --metrics-port (-1 = from config, which defaults to off).
  int metrics_port = -1;
  /// --metrics-bind ("" = from config).
  std::string metrics_bind;
  /// --metrics-allow-remote.
  bool metrics_allow_remote = false;
  /// --metrics-linger (-1 = from config).
  double metrics_linger = -1;
  /// --output FILE.
  std::string output;
  /// --quiet.
  bool quiet = false;
  /// --seed.
  uint64_t seed = 1;
  /// --strategy ("" = from the config or the scenario).
  std::string strategy;
  /// --time-scale.
  double time_scale = 1;
  /// --deterministic.
  bool deterministic = false;
  /// --threads.
  int threads = 0;
  /// --shards.
  int shards = 1;
  /// --busy-poll-us.
  int busy_poll_us = 0;
  /// --check-invariants.
  bool check = false;
  /// --live: the `alb monitor` view of the run instead of the progress line
  /// (when stdout and stderr are terminals).
  bool live = false;
  /// --log-format: "text" or "json" (the run commands' progress lines off
  /// a terminal and their warnings as JSON log lines; the coordinator's
  /// log lines).
  std::string log_format = "text";

  /// Adds --config.
  void add_config(CLI::App* cmd);
  /// Adds the --metrics-* flags.
  void add_metrics(CLI::App* cmd);
  /// Adds the simulation flags shared by the run commands: --seed,
  /// --strategy (described after `strategy_help`), --time-scale,
  /// --deterministic, --threads, --shards, --busy-poll-us and, with
  /// `with_check`, --check-invariants.
  void add_simulation(CLI::App* cmd, const std::string& strategy_help,
                      bool with_check = true);
  /// Copies the simulation flags into `o`: seed, scheduler settings
  /// `sched` with the strategy chosen as --strategy > `fallback_strategy`
  /// (e.g. a scenario's) > `sched.strategy`, time scale, virtual time,
  /// threads and invariant checks.
  void apply_simulation(simulation_options& o, const scheduler_config& sched,
                        const std::string& fallback_strategy = {}) const;
  /// Adds --output, --quiet, --live and --log-format.
  void add_output(CLI::App* cmd);
  /// Where the human-readable lines go: stdout, or stderr when the JSON
  /// result goes to stdout (`--output -` and the like).
  std::ostream& human() const;
  /// The same as a stdio stream, for printf-style tables.
  std::FILE* human_file() const;
};

/// The built-in default strategy and why, for the help of every flag that
/// chooses one ("adaptive unless the config says otherwise: ...").
std::string default_strategy_note();

/// Loads the effective configuration (defaults < file < environment),
/// printing its warnings. Throws config_error with a one-line message.
config load_run_config(const run_flags& f, const char* command);

/// The /metrics endpoint of one run: registry, observer and server.
class metrics_session {
public:
  /// Starts serving when the flags or the config ask for it; returns null
  /// otherwise. Throws metrics::server_error (one line) when it cannot bind.
  static std::unique_ptr<metrics_session> start(const run_flags& f,
                                                const config& cfg,
                                                const std::string& mode,
                                                const std::string& strategy);

  ~metrics_session();

  /// The observer to hand to the scheduler.
  scheduler_observer* observer();

  /// The registry the endpoint serves (the `--live` view reads it too).
  metrics::registry& registry();

  /// Keeps serving for the configured linger time.
  void linger();

  /// The HTTP endpoint (the coordinator adds its status page to it).
  metrics::server& server();

  struct impl;

private:
  std::unique_ptr<impl> impl_;
};

/// Runs `opts` and reports: a progress line while it runs (unless quiet; with
/// `f.live` on a terminal the full-screen live view instead), then the JSON
/// result written to `f.output` (`write_result`: atomically for a file, in
/// place for stdout, a FIFO or a device), then the summary. Checks the
/// output path first. SIGINT/SIGTERM during the run stop the submissions
/// (a second one ends the run at once); the partial result is written and
/// summarized, and the status is 128 + the signal. Returns the exit status
/// (0 ok, 1 failed, 2 bad input, 130/143 interrupted).
int run_and_report(simulation_options opts, const run_flags& f,
                   const char* command, metrics_session* metrics);

/// Runs `body`, turning configuration and metrics-server errors into a
/// one-line message and exit status 2.
int guarded(const char* command, const std::function<int()>& body);

} // namespace alb::cli
