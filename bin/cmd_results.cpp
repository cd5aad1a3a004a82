// `alb results`: past runs of this user and their outcomes, from the
// coordinator's journal; and the run `alb submit --rerun-failed` reruns.

#include "bin/commands.hpp"

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <memory>
#include <set>

#include <CLI/CLI.hpp>

#include <nlohmann/json.hpp>

#include "actors/coordinator_client.hpp"
#include "actors/node.hpp"
#include "bin/cluster_cli.hpp"
#include "bin/common.hpp"

namespace alb::cli {

std::string absolute_path(const std::string& path) {
  char buf[PATH_MAX];
  if (::realpath(path.c_str(), buf))
    return buf;
  return path;
}

std::vector<cluster_test> failed_in_run(const submit_settings& s,
                                        const std::string& run,
                                        std::vector<cluster_test> tests) {
  coordinator_client_options o;
  o.endpoint = s.coordinator;
  o.token = s.token;
  o.tls = s.tls;
  o.connect_timeout = s.connect_timeout;
  o.owner_key = s.owner_key;
  coordinator_client client{o};
  client.connect();
  auto chosen = run;
  if (chosen.empty()) {
    auto list = nlohmann::json::parse(client.results(""));
    for (auto& r : list["runs"])
      if (r.value("label", "") == s.label)
        chosen = r.value("run_id", "");
    if (chosen.empty())
      throw cluster_error{"no earlier run of '" + s.label
                          + "' by this client (its key): nothing to rerun"};
  }
  auto doc = nlohmann::json::parse(client.results(chosen));
  client.close();
  std::set<std::string> failed;
  for (auto& r : doc["results"])
    if (r.value("status", "") == "failed")
      failed.insert(r.value("test_id", ""));
  std::vector<cluster_test> out;
  for (auto& t : tests)
    if (failed.count(t.req.test_id) > 0)
      out.push_back(std::move(t));
  if (out.size() < failed.size())
    std::cerr << "alb submit: warning: " << failed.size() - out.size()
              << " failed tests of run " << chosen << " are no longer in "
              << s.label << "\n";
  if (out.empty())
    std::cerr << "alb submit: run " << chosen
              << " has no failed or timed-out tests of this file: nothing "
                 "to rerun\n";
  else
    std::cerr << "alb submit: rerunning " << out.size()
              << " failed or timed-out tests of run " << chosen << "\n";
  return out;
}

namespace {

struct results_flags {
  client_flags conn;
  std::string run;
  bool json = false;
};

std::string local_time(double epoch) {
  auto t = static_cast<time_t>(epoch);
  std::tm tm;
  ::localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string one_line(std::string s, size_t max) {
  for (auto& c : s)
    if (c == '\n')
      c = ' ';
  if (s.size() > max)
    s = s.substr(0, max - 3) + "...";
  return s;
}

void print_runs(const nlohmann::json& doc) {
  std::printf("%-22s  %-19s  %5s  %5s  %9s  %6s  %7s  %9s  %s\n", "run",
              "submitted", "tests", "open", "completed", "failed", "timeout",
              "cancelled", "file");
  for (auto& r : doc["runs"])
    std::printf("%-22s  %-19s  %5llu  %5llu  %9llu  %6llu  %7llu  %9llu  %s\n",
                r.value("run_id", "").c_str(),
                local_time(r.value("submitted_at", 0.0)).c_str(),
                r.value("tests", 0ull), r.value("open", 0ull),
                r.value("completed", 0ull), r.value("failed", 0ull),
                r.value("timed_out", 0ull), r.value("cancelled", 0ull),
                r.value("label", "").c_str());
}

void print_run(const nlohmann::json& doc) {
  auto& r = doc["run"];
  std::printf("run %s (%s, %s): %llu tests, %llu open, %llu completed, %llu "
              "failed (%llu timed out), %llu cancelled\n",
              r.value("run_id", "").c_str(),
              local_time(r.value("submitted_at", 0.0)).c_str(),
              r.value("label", "").c_str(), r.value("tests", 0ull),
              r.value("open", 0ull), r.value("completed", 0ull),
              r.value("failed", 0ull), r.value("timed_out", 0ull),
              r.value("cancelled", 0ull));
  std::printf("%-40s  %-9s  %5s  %8s  %3s  %-30s  %s\n", "test", "status",
              "exit", "seconds", "try", "worker", "error");
  for (auto& x : doc["results"]) {
    auto status = x.value("timed_out", false) ? std::string{"timeout"}
                                              : x.value("status", "");
    std::printf("%-40s  %-9s  %5d  %8.2f  %3d  %-30s  %s\n",
                one_line(x.value("test_id", ""), 40).c_str(), status.c_str(),
                x.value("exit_code", 0), x.value("execution_time", 0.0),
                x.value("attempts", 0),
                one_line(x.value("worker_id", ""), 30).c_str(),
                one_line(x.value("error", ""), 60).c_str());
  }
}

int run_results(const results_flags& f) {
  coordinator_client_options o;
  try {
    o = client_options(f.conn, "results");
  } catch (const cluster_error& e) {
    std::cerr << "alb results: error: " << e.what() << "\n";
    return 2;
  }
  coordinator_client client{o};
  std::string text;
  try {
    client.connect();
    for (auto& w : client.warnings())
      std::cerr << "alb results: warning: " << w << "\n";
    text = client.results(f.run);
  } catch (const coordinator_client_error& e) {
    std::cerr << "alb results: error: " << e.what() << "\n";
    return exit_status(e.code());
  }
  client.close();
  auto doc = nlohmann::json::parse(text, nullptr, false);
  if (doc.is_discarded()) {
    std::cerr << "alb results: error: the coordinator's answer is not JSON\n";
    return 1;
  }
  if (f.json)
    std::cout << doc.dump(2) << "\n";
  else if (f.run.empty())
    print_runs(doc);
  else
    print_run(doc);
  return 0;
}

} // namespace

void add_results(CLI::App& app, int& rc) {
  auto f = std::make_shared<results_flags>();
  auto* cmd = app.add_subcommand(
    "results", "Past runs you submitted and their outcomes (the journal)");
  cmd->footer(
    "Without RUN: every run submitted with this client key (--client-key),\n"
    "oldest first, with counts of how its tests stand. With RUN: each test\n"
    "of that run and how it ended ('open' while it has not). Read from the\n"
    "coordinator's journal (--db-path), so runs of `alb submit --detach`\n"
    "and of a submitter that was interrupted are there too; a coordinator\n"
    "started with --no-db has none. Another client's run is refused.\n"
    "Exit status: 0 shown, 2 bad input, unknown run, refused or\n"
    "unreachable.\n\n"
    "Examples: alb results --coordinator 127.0.0.1:8080 --token-file "
    "~/.alb-token\n"
    "          alb results --coordinator 127.0.0.1:8080 "
    "20261201-112233-4f2a --json");
  add_client_flags(cmd, f->conn);
  cmd->add_option("run", f->run, "Run id (as alb submit printed it)");
  cmd->add_flag("--json", f->json, "Print the journal's answer as JSON");
  cmd->callback(
    [f, &rc] { rc = guarded("results", [f] { return run_results(*f); }); });
}

} // namespace alb::cli
