// `alb submit`: sends a list of tests to a coordinator and waits for their
// outcomes. Also holds the helpers the cluster commands share
// (bin/cluster_cli.hpp).

#include "bin/commands.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <signal.h>

#include <CLI/CLI.hpp>

#include <nlohmann/json.hpp>

#include "actors/coordinator_client.hpp"
#include "actors/node.hpp"
#include "bin/cluster_cli.hpp"
#include "bin/common.hpp"
#include "report/submit_report.hpp"
#include "runtime/config.hpp"
#include "runtime/output.hpp"

namespace alb::cli {

// -- shared helpers -----------------------------------------------------------

namespace {

sigset_t stop_signals() {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGINT);
  sigaddset(&s, SIGTERM);
  return s;
}

int level_of(const std::string& name) {
  if (name == "DEBUG")
    return 0;
  if (name == "WARNING")
    return 2;
  if (name == "ERROR")
    return 3;
  return 1;
}

std::mutex log_mtx;

} // namespace

void block_stop_signals() {
  auto s = stop_signals();
  ::pthread_sigmask(SIG_BLOCK, &s, nullptr);
}

int wait_for_signal(double seconds) {
  auto s = stop_signals();
  if (seconds < 0) {
    int sig = 0;
    ::sigwait(&s, &sig);
    return sig;
  }
  timespec ts;
  ts.tv_sec = static_cast<time_t>(seconds);
  ts.tv_nsec
    = static_cast<long>((seconds - static_cast<double>(ts.tv_sec)) * 1e9);
  auto sig = ::sigtimedwait(&s, nullptr, &ts);
  return sig > 0 ? sig : 0;
}

cluster_log::cluster_log(std::string who, std::string min_level)
  : who_(std::move(who)), min_(level_of(min_level)) {
  // nop
}

void cluster_log::info(const std::string& line) const {
  put(1, "", line);
}

void cluster_log::warn(const std::string& line) const {
  put(2, "warning: ", line);
}

void cluster_log::put(int level, const char* tag,
                      const std::string& line) const {
  if (level < min_)
    return;
  auto t = std::time(nullptr);
  std::tm tm;
  ::localtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%H:%M:%S", &tm);
  std::lock_guard<std::mutex> g{log_mtx};
  std::cerr << "alb " << who_ << " " << stamp << " " << tag << line
            << std::endl;
}

std::vector<cluster_test> load_cluster_tests(const std::string& path) {
  auto cfg = load_config(path);
  if (cfg.tests.empty())
    throw config_error{path + ": no [[tests]] entries"};
  std::vector<cluster_test> out;
  out.reserve(cfg.tests.size());
  for (auto& t : cfg.tests)
    out.push_back(cluster_test{std::move(t.requirements), std::move(t.command),
                               std::move(t.env), std::move(t.cwd)});
  return out;
}

void add_tls_flags(CLI::App* cmd, tls_options& tls) {
  cmd->add_option("--tls-cert", tls.certificate,
                  "TLS: PEM certificate this process presents (with "
                  "--tls-key and --tls-ca)");
  cmd->add_option("--tls-key", tls.key, "TLS: PEM private key of --tls-cert");
  cmd->add_option("--tls-ca", tls.ca,
                  "TLS: PEM CA certificate that peers' certificates must be "
                  "signed by");
  cmd->add_option("--tls-passphrase-file", tls.passphrase_file,
                  "TLS: file holding the passphrase of an encrypted "
                  "--tls-key");
}

tls_options merge_tls(const tls_options& flags, const tls_config& section) {
  if (flags.enabled())
    return flags;
  return tls_options{section.cert, section.key, section.ca,
                     section.passphrase_file};
}

std::unique_ptr<tls_material>
load_tls(const tls_options& o,
         const std::function<void(const std::string&)>& warn) {
  if (!o.enabled())
    return nullptr;
  auto m = std::make_unique<tls_material>(o);
  if (warn)
    for (auto& w : m->warnings())
      warn(w);
  return m;
}

int submit_and_report(const submit_settings& set,
                      std::vector<cluster_test> tests) {
  if (!set.output.empty()) {
    if (auto err = check_output_path(set.output); !err.empty()) {
      std::cerr << "alb submit: error: " << err << "\n";
      return 2;
    }
  }
  coordinator_client_options o;
  o.endpoint = set.coordinator;
  o.token = set.token;
  o.tls = set.tls;
  o.connect_timeout = set.connect_timeout;
  coordinator_client client{o};
  auto t0 = std::chrono::steady_clock::now();
  auto total = tests.size();
  std::map<std::string, size_t> order;
  for (size_t i = 0; i < tests.size(); ++i)
    order.emplace(tests[i].req.test_id, i);
  client_wait_result r;
  try {
    client.connect();
    for (auto& w : client.warnings())
      std::cerr << "alb submit: warning: " << w << "\n";
    client.submit(std::move(tests));
    std::cerr << "alb submit: " << total << " tests submitted to "
              << client.address() << (client.uses_tls() ? " over TLS" : "")
              << std::endl;
    double left = -1;
    if (set.timeout > 0)
      left = std::max(0.0, set.timeout
                             - std::chrono::duration<double>(
                                 std::chrono::steady_clock::now() - t0)
                                 .count());
    r = client.wait(left);
  } catch (const coordinator_client_error& e) {
    std::cerr << "alb submit: error: " << e.what() << "\n";
    return 2;
  }
  client.close();
  auto& results = r.outcomes;
  bool lost = r.disconnected && r.open > 0;
  bool timed_out = !r.disconnected && r.open > 0;
  std::stable_sort(results.begin(), results.end(), [&](auto& a, auto& b) {
    return order[a.test_id] < order[b.test_id];
  });
  // Outcomes on stdout in submission order; problems on stderr.
  report::print_outcome_table(stdout, results);
  report::submission_summary sum;
  sum.coordinator = set.coordinator;
  sum.tests = total;
  sum.open = r.open;
  for (auto& x : results)
    sum.passed += x.success ? 1 : 0;
  sum.wall_seconds
    = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
        .count();
  std::printf("%s\n", report::summary_line(sum, results).c_str());
  std::fflush(stdout);
  if (lost)
    std::cerr << "alb submit: error: the coordinator went away with " << r.open
              << " tests open\n";
  if (timed_out)
    std::cerr << "alb submit: error: --timeout reached with " << r.open
              << " tests open\n";
  if (!set.output.empty()) {
    try {
      write_file_atomic(set.output,
                        report::result_document(sum, results).dump(2) + "\n");
    } catch (const std::exception& e) {
      std::cerr << "alb submit: error: " << e.what() << "\n";
      return 1;
    }
  }
  return sum.passed == total ? 0 : 1;
}

// -- alb submit ---------------------------------------------------------------

namespace {

struct submit_flags {
  std::string coordinator;
  std::string file;
  std::string token_file;
  double timeout = 0;
  double connect_timeout = 10;
  std::string output;
  tls_options tls;
};

int run_submit(const submit_flags& f) {
  submit_settings set;
  set.coordinator = f.coordinator;
  set.timeout = f.timeout;
  set.connect_timeout = f.connect_timeout;
  set.output = f.output;
  try {
    parse_coordinator_url(f.coordinator);
    if (auto err = check_tls_options(f.tls); !err.empty())
      throw cluster_error{err};
    if (!f.token_file.empty()) {
      std::string warning;
      set.token = read_token_file(f.token_file, &warning);
      if (!warning.empty())
        std::cerr << "alb submit: warning: " << warning << "\n";
    }
  } catch (const cluster_error& e) {
    std::cerr << "alb submit: error: " << e.what() << "\n";
    return 2;
  }
  // A cluster file's [tls] section applies unless the flags say otherwise.
  set.tls = merge_tls(f.tls, load_config(f.file).tls);
  auto tests = load_cluster_tests(f.file);
  return submit_and_report(set, std::move(tests));
}

} // namespace

void add_submit(CLI::App& app, int& rc) {
  auto f = std::make_shared<submit_flags>();
  auto* cmd = app.add_subcommand(
    "submit", "Send tests to a coordinator and wait for their outcomes");
  cmd->footer(
    "FILE is TOML or JSON with [[tests]] entries (test_id, command = [argv],\n"
    "env, cwd, timeout and requirement keys; see README). Prints one line\n"
    "per test when all have ended.\n"
    "A coordinator started with --tls-cert needs --tls-cert, --tls-key and\n"
    "--tls-ca here too (or a [tls] section in FILE): a certificate signed\n"
    "by the CA the coordinator trusts.\n"
    "Running it again after the coordinator was restarted (or this command\n"
    "was interrupted) finishes the same suite without running a test twice:\n"
    "a test still running is waited for, one that ended is answered from\n"
    "the coordinator's journal (--db-path); once a run has collected every\n"
    "outcome, the next submission of those ids runs them afresh.\n"
    "Exit status: 0 all passed, 1 some failed (or the coordinator went\n"
    "away), 2 bad input, refused or unreachable.\n\n"
    "Example: alb submit --coordinator 127.0.0.1:8080 --token-file "
    "~/.alb-token tests.toml");
  cmd
    ->add_option("--coordinator", f->coordinator,
                 "HOST:PORT or alb://HOST:PORT")
    ->required();
  cmd->add_option("file", f->file, "Tests (TOML or JSON)")
    ->required()
    ->check(CLI::ExistingFile);
  cmd->add_option("--token-file", f->token_file,
                  "File holding the coordinator's join token");
  cmd
    ->add_option("--timeout", f->timeout,
                 "Give up after this many seconds (0 = wait for all)")
    ->check(CLI::Range(0.0, 1e7));
  cmd
    ->add_option("--connect-timeout", f->connect_timeout,
                 "Seconds to keep trying to reach the coordinator")
    ->default_val(10)
    ->check(CLI::Range(0.0, 86400.0));
  cmd->add_option("--output", f->output,
                  "Write the outcomes to this JSON file");
  add_tls_flags(cmd, f->tls);
  cmd->callback(
    [f, &rc] { rc = guarded("submit", [f] { return run_submit(*f); }); });
}

} // namespace alb::cli
