#pragma once

// Pieces the cluster commands (coordinator, node, submit, run) share:
// signal waiting, logging, the TLS flags, and the client side of a
// submission (on alb::coordinator_client).

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "actors/tls.hpp"
#include "runtime/cluster_types.hpp"
#include "runtime/config.hpp"
#include "runtime/log_format.hpp"

namespace CLI {
class App;
} // namespace CLI

namespace alb {
class coordinator_client;
struct coordinator_client_options;
} // namespace alb

namespace alb::cli {

/// Blocks SIGINT and SIGTERM in the calling thread (and so in every thread
/// started after it) so `wait_for_signal` can take them synchronously.
void block_stop_signals();

/// Waits up to `seconds` (< 0 = forever) for SIGINT or SIGTERM; returns the
/// signal number, or 0 on timeout.
int wait_for_signal(double seconds);

/// Writes a long-running command's log lines to stderr, one per event:
/// "2026-12-01T11:20:00.123+00:00 INFO coordinator: ..." (local time with
/// its zone) or, with --log-format json, one JSON object per line with ts,
/// level, component and msg (runtime/log_format.hpp). Lines below
/// --log-level are dropped. Thread-safe.
class cluster_log {
public:
  /// Logs as component `who` at `min_level` (DEBUG, INFO, WARNING or
  /// ERROR) in `format`.
  cluster_log(std::string who, std::string min_level,
              log_format format = log_format::text);
  /// Logs a DEBUG line.
  void debug(const std::string& line) const;
  /// Logs an INFO line.
  void info(const std::string& line) const;
  /// Logs a WARNING line.
  void warn(const std::string& line) const;
  /// Logs an ERROR line.
  void error(const std::string& line) const;
  /// Logs `line` at `level` as `component` ("guard", "scheduler") rather
  /// than as this log's own.
  void put(log_level level, std::string_view component,
           const std::string& line) const;
  /// Whether lines at `level` are written (DEBUG work is skipped if not).
  bool enabled(log_level level) const { return level >= min_; }
  /// The format lines are written in.
  log_format format() const { return format_; }

private:
  std::string who_;
  log_level min_;
  log_format format_;
};

/// The log flags of a long-running command: --log-level (into `*level`;
/// none when null) and --log-format text|json (into `format`).
void add_log_flags(CLI::App* cmd, std::string* level, std::string& format);

/// Loads the `[[tests]]` of a TOML or JSON file as cluster tests. Throws
/// config_error; a file without tests is an error too.
std::vector<cluster_test> load_cluster_tests(const std::string& path);

/// Adds --tls-cert, --tls-key, --tls-ca and --tls-passphrase-file to `cmd`,
/// filling `tls`.
void add_tls_flags(CLI::App* cmd, tls_options& tls);

/// `flags` where given, else the `[tls]` section of a config (`cert`,
/// `key`, `ca`, `passphrase_file`), as one set: flags replace the whole
/// section so a cluster is never half file, half flags.
tls_options merge_tls(const tls_options& flags, const tls_config& section);

/// Reads and checks the TLS files of `o` for a process (nullptr when `o`
/// is empty); throws cluster_error with one line. Warnings go to `warn`.
std::unique_ptr<tls_material>
load_tls(const tls_options& o,
         const std::function<void(const std::string&)>& warn);

/// Where `alb submit` and `alb run` send their tests and how long they wait.
struct submit_settings {
  /// Coordinator address, "HOST:PORT" or "alb://HOST:PORT".
  std::string coordinator;
  /// Join token ("" = none).
  std::string token;
  /// TLS material (empty = plain TCP).
  tls_options tls;
  /// Seconds to wait for all outcomes (0 = no limit).
  double timeout = 0;
  /// Seconds to keep trying to reach the coordinator.
  double connect_timeout = 10;
  /// JSON file for the outcomes ("" = none; "-" = stdout, the table then
  /// goes to stderr).
  std::string output;
  /// No progress line and no per-test lines while waiting.
  bool quiet = false;
  /// JUnit XML file for the outcomes ("" = none; "-" = stdout).
  std::string junit;
  /// Name of the JUnit testsuite (e.g. the tests file's stem).
  std::string suite_name = "alb";
  /// How the per-test lines are written: plain lines for `text`, log
  /// lines (component "submit") for `json`.
  log_format format = log_format::text;
  /// This user's client key ("" = the submission owns only itself).
  std::string owner_key;
  /// Run id, label and rerun of the submission.
  std::string run_id, label;
  /// Run the tests again even where the journal holds an uncollected
  /// outcome (--rerun-failed).
  bool rerun = false;
  /// Submit, print the run id and return without waiting (--detach).
  bool detach = false;
};

/// The connection flags of the client commands (cancel, results).
struct client_flags {
  /// --coordinator.
  std::string coordinator;
  /// --token-file.
  std::string token_file;
  /// --client-key ("" = default_client_key_path()).
  std::string client_key;
  /// --connect-timeout.
  double connect_timeout = 10;
  /// --tls-*.
  tls_options tls;
};

/// Adds --coordinator (required), --token-file, --client-key,
/// --connect-timeout and the TLS flags to `cmd`.
void add_client_flags(CLI::App* cmd, client_flags& f);

/// Client options from the flags: checks the address and the TLS files,
/// reads the token (warnings to stderr naming `who`) and the client key
/// (made if missing). Throws cluster_error with one line.
coordinator_client_options client_options(const client_flags& f,
                                          const char* who);

/// `path` made absolute (the label of a run: the same file from another
/// directory is the same run's file).
std::string absolute_path(const std::string& path);

/// The tests of `tests` that failed or timed out in run `run` of this
/// client ("" = its last run labelled `s.label`), asked from the
/// coordinator `s` names. Says on stderr which run it reruns (or that
/// there is nothing to rerun: then the list is empty). Throws cluster_error
/// or coordinator_client_error.
std::vector<cluster_test> failed_in_run(const submit_settings& s,
                                        const std::string& run,
                                        std::vector<cluster_test> tests);

/// While `alb submit` waits: the first SIGINT/SIGTERM cancels the tests it
/// submitted and waits up to `grace` seconds for their cancelled outcomes;
/// a second one, or the end of `grace`, closes the client so the wait
/// ends at once. Construct it before the client connects (it blocks the
/// two signals in this thread and so in the client's threads).
class submit_interrupt {
public:
  /// Blocks SIGINT and SIGTERM; nothing is watched before start().
  submit_interrupt();
  /// Stops watching and restores the signal mask.
  ~submit_interrupt();
  submit_interrupt(const submit_interrupt&) = delete;
  submit_interrupt& operator=(const submit_interrupt&) = delete;
  /// Watches for the signals on a thread of its own; on one, cancels
  /// `ids` through `client` (which must outlive this object's watch).
  void start(coordinator_client& client, std::vector<std::string> ids,
             double grace);
  /// The first signal caught (0 = none).
  int signal() const;

  /// Private state.
  struct impl;

private:
  std::unique_ptr<impl> impl_;
};

/// The JUnit suite name of a tests file: its name without directory and
/// extension ("suite" for "ci/suite.toml").
std::string suite_name_of(const std::string& path);

/// Submits `tests` as `s` says and waits for every outcome, showing a
/// progress line on a terminal (stderr) or one line per ended test
/// otherwise (unless `s.quiet`); then prints the per-test table and the
/// summary and writes `s.output` and `s.junit`. Returns 0 when all passed, 1
/// when some failed or the coordinator went away, 2 when the submission was
/// refused, the coordinator unreachable or the input bad.
int submit_and_report(const submit_settings& s,
                      std::vector<cluster_test> tests);

} // namespace alb::cli
