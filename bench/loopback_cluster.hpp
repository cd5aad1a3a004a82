#pragma once

// What the cluster benchmarks share: an `alb coordinator` and its `alb node`
// processes of this build (ALB_BINARY) on loopback, started for one run and
// stopped when it ends, and the figures they print (medians, CPU time).

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include <nlohmann/json.hpp>

#include "actors/coordinator_client.hpp"
#include "runtime/process.hpp"

namespace alb::bench {

/// The clock the benchmarks time runs with.
using clock_type = std::chrono::steady_clock;

/// Starts `args` with stdout on `out` (-1 = inherited) and stderr silenced
/// unless ALB_BENCH_VERBOSE is set; throws when it cannot start.
inline alb::process start(std::vector<std::string> args, int out) {
  alb::spawn_options o;
  o.argv = std::move(args);
  o.stdout_fd = out;
  int null = -1;
  if (!std::getenv("ALB_BENCH_VERBOSE")) {
    null = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    o.stderr_fd = null;
  }
  std::string error;
  auto p = alb::process::spawn(o, error);
  if (null >= 0)
    ::close(null);
  if (!p.running())
    throw std::runtime_error{"cannot start " + o.argv[0] + ": " + error};
  return p;
}

/// One `alb node` of a loopback cluster.
struct node_spec {
  /// Its `--name`.
  std::string name;
  /// Its `--slots` (tests at once); also its `--cores`.
  int slots = 1;
  /// Its `--threads` (CAF scheduler threads).
  int threads = 1;
  /// More flags for it (e.g. --no-cgroups).
  std::vector<std::string> extra;
};

/// A coordinator (`--no-db` unless `db`) with the given nodes; the nodes'
/// processes follow the coordinator's in `procs`. Stopped (SIGTERM to each
/// process group, then waited for) when it goes out of scope.
struct loopback_cluster {
  /// The coordinator's process, then the nodes' in the order given.
  std::vector<alb::process> procs;
  /// "127.0.0.1:PORT" of the coordinator.
  std::string endpoint;
  /// Scratch directory (the database with `db`), removed at the end.
  std::string dir;

  /// Starts the coordinator, reads its port, then starts the nodes, all of
  /// them the `alb` at `binary` ("" = this build's).
  loopback_cluster(const std::vector<node_spec>& nodes, bool db,
                   int coordinator_threads = 2, std::string binary = "") {
    if (binary.empty())
      binary = ALB_BINARY;
    char tmpl[] = "/tmp/alb-bench-XXXXXX";
    if (!::mkdtemp(tmpl))
      throw std::runtime_error{"mkdtemp failed"};
    dir = tmpl;
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0)
      throw std::runtime_error{"pipe failed"};
    std::vector<std::string> coord{
      binary,        "coordinator",
      "--port",      "0",
      "--log-level", "ERROR",
      "--threads",   std::to_string(coordinator_threads)};
    if (db) {
      coord.push_back("--db-path");
      coord.push_back(dir + "/alb.db");
    } else {
      coord.push_back("--no-db");
    }
    procs.push_back(start(coord, fds[1]));
    ::close(fds[1]);
    // "alb coordinator: listening on 127.0.0.1:PORT (...)"
    std::string line;
    char c;
    while (::read(fds[0], &c, 1) == 1 && c != '\n')
      line += c;
    ::close(fds[0]);
    auto at = line.find("listening on ");
    if (at == std::string::npos)
      throw std::runtime_error{"the coordinator did not start"};
    endpoint = line.substr(at + 13, line.find(' ', at + 13) - at - 13);
    for (auto& n : nodes) {
      std::vector<std::string> args{binary,
                                    "node",
                                    "--coordinator",
                                    endpoint,
                                    "--slots",
                                    std::to_string(n.slots),
                                    "--cores",
                                    std::to_string(n.slots),
                                    "--memory",
                                    "64",
                                    "--name",
                                    n.name,
                                    "--reconnect-timeout",
                                    "0",
                                    "--log-level",
                                    "ERROR",
                                    "--threads",
                                    std::to_string(n.threads)};
      args.insert(args.end(), n.extra.begin(), n.extra.end());
      procs.push_back(start(std::move(args), -1));
    }
  }

  loopback_cluster(const loopback_cluster&) = delete;
  loopback_cluster& operator=(const loopback_cluster&) = delete;

  /// Stops every process and removes `dir`.
  ~loopback_cluster() {
    for (auto& p : procs)
      p.kill_group(SIGTERM);
    for (auto& p : procs)
      p.wait();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    if (ec)
      std::fprintf(stderr, "could not remove %s\n", dir.c_str());
  }
};

/// Waits (up to 30 s) until the coordinator reports `workers` registered
/// workers; false when it does not.
inline bool wait_for_workers(alb::coordinator_client& client, size_t workers) {
  auto deadline = clock_type::now() + std::chrono::seconds(30);
  while (clock_type::now() < deadline) {
    auto j = nlohmann::json::parse(client.stats(), nullptr, false);
    size_t n = 0;
    if (j.is_object() && j.contains("nodes"))
      for (auto& [name, info] : j["nodes"].items())
        n += info.value("workers", size_t{0});
    if (n >= workers)
      return true;
    // Registration is a remote event this client is not told of: ask again.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

/// A client of `cluster`'s coordinator, connected, with the cluster's
/// workers (`workers` of them) registered; `passed` counts the successful
/// outcomes as they arrive, as a high-volume consumer would (keeping every
/// outcome for wait() to return would measure that vector). The tests are
/// `numbered_tests`' `tests` tests: a second outcome for one of them, or one
/// that did not pass, is said on stderr (the first few) and not counted, so
/// a run that lost tests names how. Throws when the workers do not
/// register.
inline std::unique_ptr<alb::coordinator_client>
counting_client(const loopback_cluster& cluster, size_t workers,
                std::atomic<size_t>& passed, uint64_t tests) {
  alb::coordinator_client_options o;
  o.endpoint = cluster.endpoint;
  o.request_timeout = 120;
  auto client = std::make_unique<alb::coordinator_client>(o);
  client->connect();
  auto seen = std::make_shared<std::vector<std::atomic<uint8_t>>>(tests);
  auto told = std::make_shared<std::atomic<int>>(0);
  client->on_outcome([&passed, seen, told](const alb::cluster_outcome& out) {
    // Ids are PREFIX-NNNNNNN (numbered_tests).
    auto dash = out.test_id.rfind('-');
    auto i = dash == std::string::npos
               ? seen->size()
               : std::strtoull(out.test_id.c_str() + dash + 1, nullptr, 10);
    bool again = i < seen->size() && (*seen)[i].exchange(1) != 0;
    if (out.success && !again) {
      passed.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (told->fetch_add(1) < 5)
      std::fprintf(stderr,
                   "test %s: %s outcome, %s on node '%s' after %d "
                   "attempts%s%s\n",
                   out.test_id.c_str(), again ? "a second" : "an",
                   out.status.c_str(), out.node.c_str(), out.attempts,
                   out.error.empty() ? "" : ": ", out.error.c_str());
  });
  if (!wait_for_workers(*client, workers))
    throw std::runtime_error{"the nodes did not register their workers"};
  return client;
}

/// `tests` tests of model "bench" named PREFIX-0000000.. running `command`
/// (none: simulated).
inline std::vector<alb::cluster_test>
numbered_tests(const std::string& prefix, uint64_t tests,
               const std::vector<std::string>& command = {}) {
  std::vector<alb::cluster_test> suite(tests);
  for (uint64_t i = 0; i < tests; ++i) {
    char id[24];
    std::snprintf(id, sizeof(id), "-%07llu",
                  static_cast<unsigned long long>(i));
    suite[i].req.test_id = prefix + id;
    suite[i].req.model_id = "bench";
    suite[i].command = command;
  }
  return suite;
}

/// CPU seconds (user + system) process `pid` has used so far (0 when it
/// cannot be read).
inline double cpu_seconds(pid_t pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/stat";
  FILE* f = std::fopen(path.c_str(), "r");
  if (!f)
    return 0;
  char buf[1024];
  size_t n = std::fread(buf, 1, sizeof(buf) - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  // Fields after the command name (which may hold spaces) in parentheses.
  const char* p = std::strrchr(buf, ')');
  if (!p)
    return 0;
  unsigned long utime = 0, stime = 0;
  // state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
  if (std::sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                  &utime, &stime)
      != 2)
    return 0;
  return static_cast<double>(utime + stime)
         / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

/// The three load averages of this machine as "1.23 0.98 0.50" (1, 5 and
/// 15 minutes; "?" when /proc/loadavg cannot be read): figures measured on
/// a shared machine are quoted with them.
inline std::string load_average() {
  FILE* f = std::fopen("/proc/loadavg", "r");
  if (!f)
    return "?";
  char a[32], b[32], c[32];
  int n = std::fscanf(f, "%31s %31s %31s", a, b, c);
  std::fclose(f);
  if (n != 3)
    return "?";
  return std::string{a} + " " + b + " " + c;
}

/// `nodes` node specs named bench-n1.. with `total_slots` slots spread as
/// evenly as they go (the first nodes take the remainder), `threads` CAF
/// threads each.
inline std::vector<node_spec> even_nodes(int nodes, int total_slots,
                                         int threads = 1) {
  std::vector<node_spec> out;
  for (int i = 0; i < nodes; ++i) {
    int share = total_slots / nodes + (i < total_slots % nodes ? 1 : 0);
    out.push_back(node_spec{
      "bench-n" + std::to_string(i + 1), std::max(1, share), threads, {}});
  }
  return out;
}

/// The median of `xs` (the upper one of an even count; 0 when empty).
inline double median(std::vector<double> xs) {
  std::sort(xs.begin(), xs.end());
  return xs.empty() ? 0 : xs[xs.size() / 2];
}

} // namespace alb::bench
