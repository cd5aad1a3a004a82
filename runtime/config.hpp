#pragma once

// The whole configuration of `alb`, and how it is loaded. Phases, each
// overriding the one before: built-in defaults (`default_config()`), the
// shipped scenario file (`merge_shipped_scenarios`), the user's file
// (`--config`, else `LB_CONFIG_PATH`), the environment (`apply_environment`),
// and finally the command-line flags, which the commands apply themselves.
//
// Files are TOML or the original's JSON format with the same keys. Every value
// is checked while it is read; a bad one throws `config_error` with one line
// naming the file, line and column (TOML), the key and what is wrong. Unknown
// keys do not fail: they become warnings (with a did-you-mean) in
// `config::warnings` for the command to print.
//
// Usage:
//
//     alb::config cfg = alb::load_effective_config(config_flag);
//     for (auto& w : cfg.warnings)
//       std::cerr << "alb: warning: " << w << "\n";
//     alb::check_workers(cfg, workers, "--workers");

#include "runtime/model.hpp"
#include "runtime/profiles.hpp"
#include "runtime/scenario_checks.hpp"
#include "runtime/scheduler_config.hpp"

#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace alb {

/// A configuration file, value or environment variable is wrong. `what()` is
/// one line naming where and what.
class config_error : public std::runtime_error {
public:
  /// Stores `what` with control characters (e.g. newlines from quoted keys
  /// or values in the file) escaped, so the message stays one line.
  explicit config_error(const std::string& what);
};

/// Returns `text` with control characters escaped (`\n`, `\x01`, ...).
std::string one_line(std::string_view text);

/// What a scripted scenario event does.
enum class scenario_action {
  /// Workers leave gracefully: their queued tests go back to the scheduler.
  remove_workers,
  /// New workers (drawn from the scenario's worker profile) join.
  add_workers,
  /// Extra tests arrive at once, on top of the configured total.
  submit_burst,
  /// Workers vanish abruptly (a crash): everything they held must be
  /// recovered by the scheduler.
  kill_workers,
};

/// Returns the configuration name of `x`, e.g. "kill_workers".
const char* to_string(scenario_action x);

/// Parses a configuration name of a `scenario_action`.
std::optional<scenario_action> parse_scenario_action(std::string_view name);

/// One scripted event of a scenario.
struct scenario_event {
  /// When it happens, as a fraction (0-1) of the submission window.
  double at = 0;
  /// What happens.
  scenario_action action = scenario_action::add_workers;
  /// Worker actions: share (0-1] of the scenario's initial worker count,
  /// rounded up (0 = use `count`).
  double fraction = 0;
  /// Worker actions: number of workers (0 = use `fraction`).
  int count = 0;
  /// Bursts: number of tests submitted at once.
  int tests = 0;
  /// Bursts: priority of every burst test (1-5; 0 = drawn from the test
  /// profile).
  int priority = 0;
};

/// Returns how many workers a worker action of `ev` affects when the scenario
/// started with `initial_workers` (0 for bursts).
int event_worker_count(const scenario_event& ev, int initial_workers);

/// A named scenario: the original's `scenario_configurations` entries plus a
/// script of events.
struct scenario_configuration {
  /// Name of the `test_configurations` entry that sizes the run.
  std::string test_config = "medium";
  /// Name of the `worker_profiles` entry workers are drawn from.
  std::string worker_profile = "balanced";
  /// Name of the `test_profiles` entry tests are drawn from.
  std::string test_profile = "balanced";
  /// Submit tests in bursts instead of evenly over the window.
  bool burst_mode = false;
  /// Add and remove workers at random during the run.
  bool dynamic_workers = false;
  /// Strategy for this scenario ("" = `[scheduler] strategy`).
  std::string strategy;
  /// What the scenario exercises.
  std::string description;
  /// What a good balancer does in it (shown by `alb scenarios`).
  std::string expectation;
  /// The expectation as checks (`checks = [{ what, metric, op, threshold,
  /// than }]`), judged after every run besides `common_expectations()`.
  std::vector<scenario_expectation> checks;
  /// Scripted events, sorted by `at`.
  std::vector<scenario_event> events;
  /// Where it was defined ("file:line:col" or "built-in"), for messages.
  std::string origin;
};

/// The `[metrics]` section: the Prometheus `/metrics` endpoint.
struct metrics_config {
  /// TCP port of `/metrics`; -1 = off, 0 = any free port.
  int port = -1;
  /// Address the endpoint binds to (loopback unless told otherwise).
  std::string bind = "127.0.0.1";
  /// Seconds `/metrics` stays up after a run ends, so a scraper sees the
  /// final values.
  double linger = 0;
};

/// The `[cluster]` section: the coordinator that nodes join.
struct cluster_config {
  /// Address the coordinator listens on, or nodes connect to.
  std::string host = "127.0.0.1";
  /// Coordinator TCP port (0 = any free port).
  int port = 8080;
  /// File holding the shared join token ("" = no token).
  std::string token_file;
  /// SQLite database with run history and the test journal.
  std::string db_path = "alb.db";
  /// Seconds a node may send no heartbeat before the coordinator declares
  /// it lost and requeues its tests (`node_timeout`, 0.1 to 86400).
  double node_timeout = 15;
  /// Seconds past a running test's timeout after which the coordinator
  /// gives up on a report its node never sent (`timeout_grace`, 0 to
  /// 86400).
  double timeout_grace = 30;
  /// Seconds a client may send no heartbeat before its session expires
  /// (`client_timeout`, 0.1 to 86400).
  double client_timeout = 60;
  /// Seconds a connection has to finish its handshake (CAF's or TLS's,
  /// then the join or hello with the token) before the coordinator's guard
  /// closes it (`handshake_timeout`, 0.1 to 3600).
  double handshake_timeout = 10;
  /// Connections from one address still in their handshake
  /// (`max_handshakes_per_address`, 1 to 100000).
  int max_handshakes_per_address = 16;
  /// Connections still in their handshake in total (`max_handshakes`, 1 to
  /// 100000).
  int max_handshakes = 256;
  /// Largest submission (one message) the coordinator accepts, bytes
  /// serialized (`max_submission`: bytes or a size such as "64MiB"; 1 MiB
  /// to 1 GiB). Clients learn it when they connect and refuse a larger
  /// submission before sending it.
  uint64_t max_submission = uint64_t{64} << 20;
};

/// The `[tls]` section: the cluster's TLS material, all of `cert`, `key`
/// and `ca` or none (plain TCP). Checked when a process loads it.
struct tls_config {
  /// PEM certificate the processes present.
  std::string cert;
  /// Its PEM private key.
  std::string key;
  /// PEM certificate of the CA peers must be signed by.
  std::string ca;
  /// File holding the key's passphrase ("" = the key is not encrypted).
  std::string passphrase_file;
};

/// The `[node]` section: how `alb node --config FILE` runs. Every key is
/// optional (unset = the flag's default); flags override the file. Read
/// strictly: an unknown key is an error naming file:line:col.
struct node_config {
  /// Coordinator to attach to, "HOST:PORT" or "alb://HOST:PORT".
  std::optional<std::string> coordinator;
  /// Where `coordinator` was set ("file:line:col"), for later errors.
  std::string coordinator_origin;
  /// Node name (unset = HOSTNAME-PID).
  std::optional<std::string> name;
  /// Tests the node runs at once (unset = its cores).
  std::optional<int> slots;
  /// Memory in GB (unset = detected).
  std::optional<double> memory_gb;
  /// CPU cores (unset = detected).
  std::optional<int> cores;
  /// Accelerators by type and count, e.g. {cuda = 2} (unset = detected).
  std::optional<std::map<std::string, int>> accelerators;
  /// Labels of the node.
  std::optional<std::vector<std::string>> tags;
  /// File holding the coordinator's join token.
  std::optional<std::string> token_file;
  /// Seconds to keep trying to reach the coordinator at start.
  std::optional<double> connect_timeout;
  /// Seconds to keep trying after the coordinator went away (0 = stop).
  std::optional<double> reconnect_timeout;
  /// DEBUG, INFO, WARNING or ERROR.
  std::optional<std::string> log_level;
  /// Log line format: "text" or "json".
  std::optional<std::string> log_format;
  /// Actor threads.
  std::optional<int> threads;
  /// Port of the node's own /metrics (unset = off, 0 = any free port).
  std::optional<int> metrics_port;
  /// Address the node's /metrics binds to (loopback unless told otherwise).
  std::optional<std::string> metrics_bind;
  /// Whether a non-loopback `metrics_bind` is allowed.
  std::optional<bool> metrics_allow_remote;
  /// Installed software by name and version, e.g. {torch = "2.3"} (added
  /// to the detected os and python; `--software`).
  std::optional<std::map<std::string, std::string>> software;
  /// Directory of the per-test stdout/stderr logs (`--log-dir`).
  std::optional<std::string> log_dir;
  /// Cap on a test's stdout and stderr together, bytes (`--max-output`;
  /// an integer or a size such as "64MiB").
  std::optional<uint64_t> max_output;
  /// Tests whose logs are kept (`--log-keep`).
  std::optional<int64_t> log_keep;
  /// Bytes all kept logs may take (`--log-max-bytes`).
  std::optional<uint64_t> log_max_bytes;
  /// Whether each test runs in a cgroup of its own where the node can
  /// make one (default true; false = supervisors only, `--no-cgroups`).
  std::optional<bool> cgroups;
};

/// One `[[tests]]` entry: a real test for `alb run`.
struct test_spec {
  /// What the test needs; `test_id` is unique among the entries.
  test_requirements requirements;
  /// Command line (argv) to execute; empty = simulated from
  /// `expected_duration`.
  std::vector<std::string> command;
  /// Extra environment variables for the command.
  std::map<std::string, std::string> env;
  /// Working directory of the command ("" = the worker's).
  std::string cwd;
  /// Whether it is simulated on purpose (`simulate = true`): a test
  /// without a command is refused otherwise.
  bool simulate = false;
  /// Cap on its stdout and stderr together in bytes (`max_output`, an
  /// integer or a string such as "64MiB"; 0 = the node's default). Past
  /// it the test is killed and fails with "output limit exceeded".
  uint64_t max_output = 0;
};

/// The longest time a test's `timeout`, `expected_duration` or
/// `wait_limit` may say, seconds (30 days): longer values are refused at
/// load rather than overflowing a timer.
constexpr double max_test_seconds = 30.0 * 24 * 3600;

/// Everything `alb` can be configured with.
struct config {
  /// Run sizes by name (`small`, `medium`, `large`, ...).
  std::map<std::string, test_configuration> test_configurations;
  /// Simulated worker populations by name.
  std::map<std::string, worker_profile> worker_profiles;
  /// Simulated test populations by name.
  std::map<std::string, test_profile> test_profiles;
  /// Scenarios by name.
  std::map<std::string, scenario_configuration> scenario_configurations;
  /// The scheduling core.
  scheduler_config scheduler;
  /// The `/metrics` endpoint.
  metrics_config metrics;
  /// The coordinator.
  cluster_config cluster;
  /// TLS of the cluster's connections.
  tls_config tls;
  /// How `alb node` runs (`[node]`).
  node_config node;
  /// Real tests for `alb run`, in file order.
  std::vector<test_spec> tests;
  /// Log level: DEBUG, INFO, WARNING or ERROR (`log_level`, `LB_LOG_LEVEL`).
  std::string log_level = "INFO";
  /// Hard cap on workers in any run; 0 = none (`max_workers`,
  /// `LB_MAX_WORKERS`).
  int max_workers = 0;
  /// Submission window in seconds when a command is given none
  /// (`default_duration`, `LB_DEFAULT_DURATION`).
  double default_duration = 60;
  /// Files merged into this configuration, in order.
  std::vector<std::string> sources;
  /// Non-fatal findings (unknown keys) for the command to print.
  std::vector<std::string> warnings;
};

/// File format of a configuration text.
enum class config_format {
  /// By extension (.toml, .json), else by content (`{` first = JSON).
  automatic,
  /// TOML.
  toml,
  /// The original's JSON.
  json,
};

/// Returns the built-in defaults: the reference's test configurations
/// (`small`, `medium`) plus `large` and the scenario sizes, worker profiles
/// and test profiles including those the shipped scenarios use. It holds no
/// scenarios (they come from `configs/scenarios.toml`).
config default_config();

/// Returns `default_config()` overlaid with the file at `path` and validated.
/// Throws `config_error`.
config load_config(const std::string& path);

/// Returns `default_config()` overlaid with `text` and validated; `name`
/// stands for the file in messages. Throws `config_error`.
config load_config_from_string(std::string_view text, std::string_view name,
                               config_format format = config_format::automatic);

/// Overlays the file at `path` onto `cfg`: values it sets replace those in
/// `cfg`, entries of named maps are updated key by key, arrays are replaced.
/// Validates the result. Throws `config_error`.
void merge_config_file(config& cfg, const std::string& path);

/// Overlays `text` (named `name` in messages) onto `cfg` like
/// `merge_config_file`. Throws `config_error`.
void merge_config_string(config& cfg, std::string_view text,
                         std::string_view name,
                         config_format format = config_format::automatic);

/// Checks what no single value shows: every scenario names an existing test
/// configuration and profiles. Throws `config_error`.
void validate(const config& cfg);

/// Reads an environment variable; nullopt when unset.
using env_lookup = std::function<std::optional<std::string>(const char*)>;

/// Returns an `env_lookup` over the process environment.
env_lookup process_environment();

/// Applies `LB_LOG_LEVEL`, `LB_MAX_WORKERS` and `LB_DEFAULT_DURATION` (empty
/// counts as unset). Throws `config_error` naming the variable on a bad value.
void apply_environment(config& cfg,
                       const env_lookup& env = process_environment());

/// Returns the configuration file to load: `flag` if given, else
/// `LB_CONFIG_PATH`, else "".
std::string config_path(const std::string& flag,
                        const env_lookup& env = process_environment());

/// Returns the path of the shipped scenario file: `ALB_SCENARIOS_PATH` if
/// set, else the first existing of the installed and source-tree locations
/// (relative to the running executable); "" if none exists.
std::string shipped_scenarios_path(const env_lookup& env
                                   = process_environment());

/// Overlays the shipped scenario file onto `cfg`. Throws `config_error` when
/// it cannot be found or is bad.
void merge_shipped_scenarios(config& cfg,
                             const env_lookup& env = process_environment());

/// The loading every command does: defaults, shipped scenarios, the file from
/// `config_path(flag)`, then the environment. Throws `config_error`.
config load_effective_config(const std::string& flag,
                             const env_lookup& env = process_environment());

/// Returns `level` upper-cased if it is DEBUG, INFO, WARNING or ERROR (any
/// case); otherwise throws `config_error` naming `source`.
std::string normalize_log_level(std::string_view level,
                                std::string_view source);

/// Throws `config_error` when `requested` workers exceed `cfg.max_workers`;
/// `what` names the request in the message (e.g. "--workers").
void check_workers(const config& cfg, int requested, std::string_view what);

/// Returns the most workers `s` has at once: its initial count plus scripted
/// additions minus removals, at the worst moment.
int peak_workers(const config& cfg, const scenario_configuration& s);

/// Returns the scenario called `name`; throws `config_error` listing the
/// valid names (and a near match) when there is none.
const scenario_configuration& find_scenario(const config& cfg,
                                            const std::string& name);

/// Returns every scenario's name and description, sorted by name.
std::vector<std::pair<std::string, std::string>>
scenario_list(const config& cfg);

/// Returns the candidate closest to `word` by edit distance if it is close
/// enough to be a likely typo, else "".
std::string did_you_mean(std::string_view word,
                         const std::vector<std::string>& candidates);

} // namespace alb
