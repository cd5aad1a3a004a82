// `alb logs`: prints a test's full stdout or stderr log, fetched through
// the coordinator from the node that ran it.

#include "bin/commands.hpp"

#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <thread>

#include <CLI/CLI.hpp>

#include "actors/coordinator_client.hpp"
#include "actors/node.hpp"
#include "bin/cluster_cli.hpp"
#include "bin/common.hpp"

namespace alb::cli {

namespace {

struct logs_flags {
  client_flags conn;
  std::string id;
  std::string stream = "stdout";
  bool follow = false;
};

/// How long the node may hold one follow request while nothing new is
/// written (it answers as soon as bytes arrive or the test ends).
constexpr uint32_t follow_wait_ms = 5000;

int run_logs(const logs_flags& f) {
  coordinator_client_options o;
  try {
    o = client_options(f.conn, "logs");
  } catch (const cluster_error& e) {
    std::cerr << "alb logs: error: " << e.what() << "\n";
    return 2;
  }
  int stream = f.stream == "stderr" ? 1 : 0;
  coordinator_client client{o};
  try {
    client.connect();
    for (auto& w : client.warnings())
      std::cerr << "alb logs: warning: " << w << "\n";
  } catch (const coordinator_client_error& e) {
    std::cerr << "alb logs: error: " << e.what() << "\n";
    return 2;
  }
  // stdout carries the log's bytes exactly (binary): nothing else goes
  // there.
  uint64_t offset = 0;
  bool said_waiting = false;
  for (;;) {
    log_chunk c;
    try {
      c = client.read_log(f.id, stream, offset, f.follow ? follow_wait_ms : 0);
    } catch (const coordinator_client_error& e) {
      std::cerr << "alb logs: error: " << e.what() << "\n";
      return exit_status(e.code());
    }
    auto state = static_cast<log_state>(c.state);
    if (state == log_state::not_started && f.follow) {
      if (!said_waiting)
        std::cerr << "alb logs: test '" << f.id << "' has not started yet ("
                  << c.why << "); waiting for it\n";
      said_waiting = true;
      // Nothing to hold a request on until a node has the test: the
      // coordinator learns of a start only from the node.
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      continue;
    }
    if (state != log_state::ok) {
      std::cerr << "alb logs: error: no log of test '" << f.id << "': " << c.why
                << "\n";
      return 1;
    }
    if (!c.data.empty()) {
      std::fwrite(c.data.data(), 1, c.data.size(), stdout);
      if (f.follow)
        std::fflush(stdout);
      offset += c.data.size();
    }
    bool more = c.open || c.writing;
    if (!f.follow) {
      // A snapshot: everything there is now.
      if (c.data.empty() || offset >= c.size)
        break;
      continue;
    }
    if (c.data.empty() && !more)
      break;
    if (c.data.empty() && !c.writing) {
      // The node has closed the log but the coordinator has not seen the
      // test end yet (or it waits for a retry): nothing to hold on.
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  std::fflush(stdout);
  client.close();
  return 0;
}

} // namespace

void add_logs(CLI::App& app, int& rc) {
  auto f = std::make_shared<logs_flags>();
  auto* cmd = app.add_subcommand(
    "logs", "Print a test's full stdout (or stderr) log from its node");
  cmd->footer(
    "The log comes from the node that ran the test (its --log-dir),\n"
    "through the coordinator, in pieces of at most 256 KiB; stdout gets its\n"
    "bytes exactly as the test wrote them (at most the node's max_output).\n"
    "Without --follow it prints what is there now (a running test's output\n"
    "so far); with --follow it keeps printing what the test writes until\n"
    "it ends (waiting for it to start if it is queued).\n"
    "Only tests submitted with the same client key (--client-key) can be\n"
    "read, any test with the operator token (--token-file naming the\n"
    "coordinator's --operator-token-file); another client's is refused.\n"
    "Exit status: 0 printed, 1 the log is not there (no longer kept on the\n"
    "node, its node is not connected, the test has not started), 2 bad\n"
    "input, unknown test, another client's test, or any error of the\n"
    "coordinator or the connection (refused, unreachable, lost).\n\n"
    "Examples: alb logs --coordinator 127.0.0.1:8080 --token-file "
    "~/.alb-token unit.io\n"
    "          alb logs --coordinator 127.0.0.1:8080 --follow --stream "
    "stderr t17");
  add_client_flags(cmd, f->conn);
  cmd->add_option("id", f->id, "Id of the test")->required();
  cmd->add_flag("-f,--follow", f->follow,
                "Keep printing new output until the test ends");
  cmd->add_option("--stream", f->stream, "Which log: stdout or stderr")
    ->default_val("stdout")
    ->check(CLI::IsMember({"stdout", "stderr"}));
  cmd->callback(
    [f, &rc] { rc = guarded("logs", [f] { return run_logs(*f); }); });
}

} // namespace alb::cli
