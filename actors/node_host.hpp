#pragma once

// The life of a node process once its flags are read: attach to the
// coordinator (retrying while it starts), host the worker actors behind one
// uplink, watch them, leave cleanly on a stop signal, and when the
// coordinator goes away wait for it and join again under the same names.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "runtime/byte_size.hpp"
#include "runtime/cgroup.hpp"
#include "runtime/model.hpp"
#include "runtime/run_observer.hpp"
#include "runtime/test_logs.hpp"

namespace caf {
class actor_system;
} // namespace caf

namespace alb {

/// What a node process runs with.
struct node_host_options {
  /// The coordinator's host and port.
  std::string host;
  /// The coordinator's port.
  uint16_t port = 0;
  /// "host:port" as the user gave it (for messages).
  std::string endpoint;
  /// Name of the node (recognised when it rejoins).
  std::string node;
  /// Its workers (one actor each).
  std::vector<worker_capabilities> caps;
  /// Join token ("" = none).
  std::string token;
  /// Whether the connection is TLS (for the hint on a failed handshake).
  bool tls = false;
  /// Seconds to wait for the coordinator the first time.
  double connect_timeout = 10;
  /// Seconds to wait for it to come back (0 = stop at once).
  double reconnect_timeout = 60;
  /// What it offers, for the "connected" line, e.g. "4 workers, 8 cores".
  std::string summary;
  /// Waits up to `seconds` for a stop signal; nonzero when one came.
  std::function<int(double)> stop_requested;
  /// Receives progress lines.
  std::function<void(const std::string&)> info;
  /// Receives DEBUG lines: connection attempts and their failures (may be
  /// empty: then they are not even formatted).
  std::function<void(const std::string&)> debug;
  /// Receives the line that explains a non-zero result.
  std::function<void(const std::string&)> error;
  /// The per-test log files of the node's workers (null = a private
  /// temporary directory).
  std::shared_ptr<test_log_store> logs;
  /// Cap on a test's stdout and stderr together unless it sets its own.
  uint64_t max_output = default_max_output;
  /// Told of every test the node's workers start and end (may be null).
  std::shared_ptr<run_observer> observer;
  /// The node's per-test cgroups (null = none: supervisors only).
  std::shared_ptr<cgroup_set> cgroups;
  /// Called with true once attached, false when the connection is gone
  /// (may be empty).
  std::function<void(bool)> on_connected;
};

/// Runs the node until it is stopped or cannot go on: 0 = stopped by a
/// signal, or the coordinator went away with `reconnect_timeout` 0;
/// 1 = refused, unreachable, or not back in time.
int run_node_host(caf::actor_system& sys, const node_host_options& o);

} // namespace alb
