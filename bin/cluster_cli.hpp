#pragma once

// Pieces the cluster commands (coordinator, node, submit, run) share:
// signal waiting, logging, the actor system set-up with the middleman, and
// the client side of a submission.

#include <functional>
#include <string>
#include <vector>

#include "actors/messages.hpp"

namespace alb::cli {

/// Blocks SIGINT and SIGTERM in the calling thread (and so in every thread
/// started after it) so `wait_for_signal` can take them synchronously.
void block_stop_signals();

/// Waits up to `seconds` (< 0 = forever) for SIGINT or SIGTERM; returns the
/// signal number, or 0 on timeout.
int wait_for_signal(double seconds);

/// Prints "alb <who> HH:MM:SS <line>" to stderr unless `level` is above
/// what --log-level allows.
class cluster_log {
public:
  /// Logs for `who` at `min_level` (DEBUG, INFO, WARNING or ERROR).
  cluster_log(std::string who, std::string min_level);
  /// Logs an INFO line.
  void info(const std::string& line) const;
  /// Logs a WARNING line.
  void warn(const std::string& line) const;

private:
  void put(int level, const char* tag, const std::string& line) const;
  std::string who_;
  int min_;
};

/// Loads the `[[tests]]` of a TOML or JSON file as cluster tests. Throws
/// config_error; a file without tests is an error too.
std::vector<cluster_test> load_cluster_tests(const std::string& path);

/// Submits `tests` to `coordinator_addr` ("HOST:PORT") with `token`, waits
/// for every outcome (at most `timeout` seconds, 0 = no limit), prints the
/// per-test table and writes `output` (JSON, "" = none). Returns 0 when all
/// passed, 1 when some failed or the coordinator went away, 2 when the
/// submission was refused or the coordinator unreachable.
int submit_and_report(const std::string& coordinator_addr,
                      const std::string& token, std::vector<cluster_test> tests,
                      double timeout, double connect_timeout,
                      const std::string& output);

} // namespace alb::cli
