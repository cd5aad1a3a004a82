// `alb status`: what a running cluster is doing, from one coordinator_client
// call (runtime/cluster_status.hpp): nodes, the queue with the reason each
// test waits, running tests, recent failures and totals.

#include "bin/commands.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "actors/coordinator_client.hpp"
#include "actors/node.hpp"
#include "bin/cluster_cli.hpp"
#include "bin/common.hpp"

namespace alb::cli {

namespace {

struct status_flags {
  std::string coordinator = "127.0.0.1:8080";
  std::string token_file;
  double connect_timeout = 10;
  bool json = false;
  tls_options tls;
};

std::string clock_time(double unix_time) {
  if (unix_time < 0)
    return "never";
  auto t = static_cast<std::time_t>(unix_time);
  std::tm tm;
  ::localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%H:%M:%S", &tm);
  return buf;
}

std::string seconds(double s) {
  char buf[32];
  if (s < 120)
    std::snprintf(buf, sizeof(buf), "%.1f s", std::max(0.0, s));
  else if (s < 7200)
    std::snprintf(buf, sizeof(buf), "%.0f min", s / 60);
  else
    std::snprintf(buf, sizeof(buf), "%.1f h", s / 3600);
  return buf;
}

std::string accel_text(const std::map<std::string, int>& total,
                       const std::map<std::string, int>& free) {
  if (total.empty())
    return "-";
  std::string out;
  for (auto& [name, n] : total) {
    if (!out.empty())
      out += ",";
    auto f = free.find(name);
    out += name + ":" + std::to_string(f == free.end() ? n : f->second) + "/"
           + std::to_string(n);
  }
  return out;
}

std::string gb_pair(double free, double total) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%g/%g GB", free, total);
  return buf;
}

std::string cut(std::string s, size_t max) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  if (s.size() > max)
    s = s.substr(0, max - 3) + "...";
  return s;
}

void print_status(const cluster_status& s, const std::string& address) {
  std::printf("coordinator %s  up %s  %s\n", address.c_str(),
              seconds(s.uptime_seconds).c_str(),
              s.view == "all" ? "(every test listed)"
                              : "(this client's tests listed; other "
                                "clients' only counted)");
  std::printf("\nNODES (%zu)\n", s.nodes.size());
  if (s.nodes.empty())
    std::printf("  no node is connected\n");
  else
    std::printf("  %-20s %-22s %7s %10s %16s %-16s %s\n", "node", "address",
                "workers", "busy/slots", "memory free/all", "accel free/all",
                "last seen");
  for (auto& n : s.nodes) {
    auto seen = n.last_seen < 0 ? std::string{"never"}
                                : clock_time(n.last_seen) + " ("
                                    + seconds(s.time - n.last_seen) + " ago)";
    std::printf(
      "  %-20s %-22s %7d %10s %16s %-16s %s\n", cut(n.name, 20).c_str(),
      cut(n.address, 22).c_str(), n.workers,
      (std::to_string(n.busy) + "/" + std::to_string(n.slots)).c_str(),
      gb_pair(n.memory_free_gb, n.memory_gb).c_str(),
      accel_text(n.accelerators, n.accelerators_free).c_str(), seen.c_str());
  }
  auto& t = s.totals;
  std::printf("\nWAITING (%llu, %llu unplaceable)\n",
              static_cast<unsigned long long>(t.waiting),
              static_cast<unsigned long long>(t.unplaceable));
  if (!s.waiting.empty())
    std::printf("  %-30s %4s %-7s %9s  %s\n", "test", "prio", "state", "waited",
                "why");
  for (auto& w : s.waiting)
    std::printf("  %-30s %4d %-7s %9s  %s: %s\n", cut(w.test_id, 30).c_str(),
                w.priority, w.state.c_str(), seconds(w.waited_seconds).c_str(),
                to_string(w.reason.kind), w.reason.text.c_str());
  if (t.hidden_waiting > 0)
    std::printf("  ... and %llu more not listed\n",
                static_cast<unsigned long long>(t.hidden_waiting));
  std::printf("\nRUNNING (%llu running, %llu assigned)\n",
              static_cast<unsigned long long>(t.running),
              static_cast<unsigned long long>(t.assigned));
  if (!s.running.empty())
    std::printf("  %-30s %-16s %-20s %-8s %8s %9s\n", "test", "node", "worker",
                "state", "since", "for");
  for (auto& r : s.running)
    std::printf("  %-30s %-16s %-20s %-8s %8s %9s\n",
                cut(r.test_id, 30).c_str(), cut(r.node, 16).c_str(),
                cut(r.worker_id, 20).c_str(), r.state.c_str(),
                clock_time(r.since).c_str(), seconds(r.seconds).c_str());
  if (t.hidden_running > 0)
    std::printf("  ... and %llu more not listed\n",
                static_cast<unsigned long long>(t.hidden_running));
  if (!s.recent_failures.empty()) {
    std::printf("\nRECENT FAILURES (%zu)\n", s.recent_failures.size());
    for (auto& f : s.recent_failures)
      std::printf("  %s %-30s %-9s exit %d on %s: %s\n",
                  clock_time(f.ended).c_str(), cut(f.test_id, 30).c_str(),
                  f.timed_out ? "timeout" : f.status.c_str(), f.exit_code,
                  f.worker_id.empty() ? "-" : f.worker_id.c_str(),
                  cut(f.error, 80).c_str());
  }
  std::printf("\nTOTALS: %llu nodes, %llu workers, %llu/%llu slots busy, "
              "%llu waiting, %llu running, %llu assigned, %llu submitted, "
              "%llu ended (%llu completed)\n",
              static_cast<unsigned long long>(t.nodes),
              static_cast<unsigned long long>(t.workers),
              static_cast<unsigned long long>(t.busy_slots),
              static_cast<unsigned long long>(t.slots),
              static_cast<unsigned long long>(t.waiting),
              static_cast<unsigned long long>(t.running),
              static_cast<unsigned long long>(t.assigned),
              static_cast<unsigned long long>(t.submitted),
              static_cast<unsigned long long>(t.ended),
              static_cast<unsigned long long>(t.completed));
}

int run_status(const status_flags& f) {
  coordinator_client_options o;
  o.endpoint = f.coordinator;
  o.connect_timeout = f.connect_timeout;
  o.tls = f.tls;
  try {
    parse_coordinator_url(f.coordinator);
    if (auto err = check_tls_options(f.tls); !err.empty())
      throw cluster_error{err};
    if (!f.token_file.empty()) {
      std::string warning;
      o.token = read_token_file(f.token_file, &warning);
      if (!warning.empty())
        std::cerr << "alb status: warning: " << warning << "\n";
    }
  } catch (const cluster_error& e) {
    std::cerr << "alb status: error: " << e.what() << "\n";
    return 2;
  }
  coordinator_client client{o};
  try {
    client.connect();
    for (auto& w : client.warnings())
      std::cerr << "alb status: warning: " << w << "\n";
    if (f.json) {
      std::cout << client.status_json() << std::endl;
    } else {
      auto s = client.status();
      print_status(s, client.address());
      std::fflush(stdout);
    }
  } catch (const coordinator_client_error& e) {
    std::cerr << "alb status: error: " << e.what() << "\n";
    return exit_status(e.code());
  }
  client.close();
  return 0;
}

} // namespace

void add_status(CLI::App& app, int& rc) {
  auto f = std::make_shared<status_flags>();
  auto* cmd = app.add_subcommand(
    "status", "Show a cluster's nodes, queue (with why each test waits), "
              "running tests and totals");
  cmd->footer(
    "Asks the coordinator once and prints what it is doing: each node\n"
    "(address, busy/total slots, free/total memory and accelerators, when\n"
    "it was last heard from), the waiting tests by priority with why each\n"
    "waits (unplaceable: no node can ever hold it, e.g. 'no node has memory\n"
    ">= 64 GB'; busy: every node that can hold it is full; concurrency_key;\n"
    "excluded: only the node its last attempt failed on fits; dispatch:\n"
    "placed on the next pass), the running tests (where, since when),\n"
    "recent failures and totals. --json prints the same as one JSON\n"
    "document (the coordinator's /api/status serves it too).\n"
    "A client sees its own tests; every test is listed when --token-file\n"
    "holds the coordinator's operator token (--operator-token-file) or the\n"
    "coordinator has no token at all. Nodes and totals are always shown.\n"
    "Exit status: 0 shown, 2 bad input, refused or unreachable.\n\n"
    "Example: alb status --coordinator 127.0.0.1:8080 --token-file "
    "~/.alb-operator-token");
  cmd
    ->add_option("--coordinator", f->coordinator,
                 "HOST:PORT or alb://HOST:PORT")
    ->default_val("127.0.0.1:8080");
  cmd->add_option("--token-file", f->token_file,
                  "File holding the coordinator's join or operator token");
  cmd->add_flag("--json", f->json, "Print the status as JSON");
  cmd
    ->add_option("--connect-timeout", f->connect_timeout,
                 "Seconds to keep trying to reach the coordinator")
    ->default_val(10)
    ->check(CLI::Range(0.0, 86400.0));
  add_tls_flags(cmd, f->tls);
  cmd->callback(
    [f, &rc] { rc = guarded("status", [f] { return run_status(*f); }); });
}

} // namespace alb::cli
