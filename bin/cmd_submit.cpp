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
#include <set>
#include <signal.h>
#include <stdexcept>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <nlohmann/json.hpp>

#include "actors/coordinator_client.hpp"
#include "actors/node.hpp"
#include "bin/cluster_cli.hpp"
#include "bin/common.hpp"
#include "report/junit.hpp"
#include "report/submit_report.hpp"
#include "runtime/config.hpp"
#include "runtime/log_format.hpp"
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

cluster_log::cluster_log(std::string who, std::string min_level,
                         log_format format)
  : who_(std::move(who)), min_(log_level_of(min_level)), format_(format) {
  // nop
}

void cluster_log::debug(const std::string& line) const {
  put(log_level::debug, who_, line);
}

void cluster_log::info(const std::string& line) const {
  put(log_level::info, who_, line);
}

void cluster_log::warn(const std::string& line) const {
  put(log_level::warning, who_, line);
}

void cluster_log::error(const std::string& line) const {
  put(log_level::error, who_, line);
}

void cluster_log::put(log_level level, std::string_view component,
                      const std::string& line) const {
  if (!enabled(level))
    return;
  auto now = unix_now();
  auto t = static_cast<std::time_t>(now);
  std::tm tm;
  ::localtime_r(&t, &tm);
  auto text = format_log_line(format_, now, static_cast<int>(tm.tm_gmtoff),
                              level, component, line);
  std::lock_guard<std::mutex> g{log_mtx};
  std::cerr << text << std::endl;
}

void add_log_flags(CLI::App* cmd, std::string* level, std::string& format) {
  if (level)
    cmd->add_option("--log-level", *level, "DEBUG, INFO, WARNING or ERROR");
  cmd
    ->add_option("--log-format", format,
                 "Log lines as text (TIME LEVEL component: message, time in "
                 "ISO-8601 with zone) or json (one object per line: ts, "
                 "level, component, msg)")
    ->check([](const std::string& v) {
      try {
        parse_log_format(v, "--log-format");
        return std::string{};
      } catch (const std::invalid_argument& e) {
        return std::string{e.what()};
      }
    });
}

std::vector<cluster_test> load_cluster_tests(const std::string& path) {
  auto cfg = load_config(path);
  if (cfg.tests.empty())
    throw config_error{path + ": no [[tests]] entries"};
  std::vector<cluster_test> out;
  out.reserve(cfg.tests.size());
  for (auto& t : cfg.tests)
    out.push_back(cluster_test{std::move(t.requirements), std::move(t.command),
                               std::move(t.env), std::move(t.cwd),
                               t.max_output});
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

namespace {

// What the submission has seen so far, shared between the client's
// outcome callback and the waiting thread.
struct submit_watch {
  std::mutex mtx;
  std::vector<cluster_outcome> results;
  report::progress_counts counts;
  // Whether the progress line is on the terminal now (and must be cleared
  // before anything else is printed there).
  bool line_shown = false;
};

void draw_progress(submit_watch& w, double elapsed) {
  std::fprintf(stderr, "\r%s\033[K",
               report::progress_line(w.counts, elapsed).c_str());
  std::fflush(stderr);
  w.line_shown = true;
}

void clear_progress(submit_watch& w) {
  if (!w.line_shown)
    return;
  std::fprintf(stderr, "\r\033[K");
  std::fflush(stderr);
  w.line_shown = false;
}

// The tests no node can ever hold, with the reason ("big: no node has
// memory >= 64 GB"), each once: without them a suite with such a test sits
// silent until the test's wait limit fails it. Sets `ok` to false when the
// coordinator does not answer status requests (then it is not asked again).
std::vector<std::string> unplaceable_lines(coordinator_client& client,
                                           std::set<std::string>& told,
                                           bool& ok) {
  std::vector<std::string> lines;
  cluster_status s;
  try {
    s = client.status();
  } catch (const coordinator_client_error&) {
    ok = false;
    return lines;
  }
  size_t more = 0;
  for (auto& w : s.waiting) {
    if (w.reason.kind != wait_kind::unplaceable
        || !told.insert(w.test_id + '\n' + w.reason.text).second)
      continue;
    if (lines.size() < 10)
      lines.push_back("waiting: " + w.test_id + ": " + w.reason.text);
    else
      ++more;
  }
  if (more > 0)
    lines.push_back("waiting: " + std::to_string(more)
                    + " more tests no node can hold (alb status lists them)");
  return lines;
}

} // namespace

int submit_and_report(const submit_settings& set,
                      std::vector<cluster_test> tests) {
  // `--output -` (or /dev/stdout): the JSON owns stdout, so the table and
  // the summary go to stderr with the rest.
  std::FILE* human = stdout;
  for (auto* path : {&set.output, &set.junit}) {
    if (path->empty())
      continue;
    if (auto err = check_output_path(*path); !err.empty()) {
      std::cerr << "alb submit: error: " << err << "\n";
      return 2;
    }
    int fd = -1;
    if (classify_output(*path, &fd) == output_kind::descriptor
        && fd == STDOUT_FILENO)
      human = stderr;
  }
  if (!set.output.empty() && set.output == set.junit) {
    std::cerr << "alb submit: error: --output and --junit name the same "
                 "file: "
              << set.output << "\n";
    return 2;
  }
  auto started_wall = unix_now();
  coordinator_client_options o;
  o.endpoint = set.coordinator;
  o.token = set.token;
  o.tls = set.tls;
  o.connect_timeout = set.connect_timeout;
  o.owner_key = set.owner_key;
  coordinator_client client{o};
  // After the client: it ends (and stops watching) before the client does.
  submit_interrupt stop;
  auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&t0] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
      .count();
  };
  auto total = tests.size();
  std::map<std::string, size_t> order;
  std::vector<std::string> ids;
  ids.reserve(tests.size());
  for (size_t i = 0; i < tests.size(); ++i) {
    order.emplace(tests[i].req.test_id, i);
    ids.push_back(tests[i].req.test_id);
  }
  // On a terminal a progress line redrawn in place; otherwise (CI logs,
  // pipes) one line per test as it ends.
  bool tty = !set.quiet && ::isatty(STDERR_FILENO) == 1;
  bool per_test = !set.quiet && !tty;
  submit_watch watch;
  watch.counts.total = total;
  cluster_log submit_log{"submit", "INFO", set.format};
  client.on_outcome([&](const cluster_outcome& c) {
    std::lock_guard<std::mutex> g{watch.mtx};
    watch.results.push_back(c);
    (c.success ? watch.counts.passed : watch.counts.failed) += 1;
    if (per_test) {
      auto line = report::finished_line(c, watch.results.size(), total);
      if (set.format == log_format::json) {
        submit_log.put(c.success ? log_level::info : log_level::warning,
                       "submit", line);
      } else {
        std::fprintf(stderr, "%s\n", line.c_str());
        std::fflush(stderr);
      }
    } else if (tty) {
      draw_progress(watch, elapsed());
    }
  });
  client_wait_result r;
  try {
    client.connect();
    for (auto& w : client.warnings())
      std::cerr << "alb submit: warning: " << w << "\n";
    client.submit(std::move(tests),
                  submission_info{set.run_id, set.label, set.rerun});
    std::cerr << "alb submit: " << total << " tests submitted to "
              << client.address() << (client.uses_tls() ? " over TLS" : "")
              << " as run " << client.run_id() << std::endl;
    if (set.detach) {
      // The tests run on and are journaled: `alb results RUN` shows them.
      std::cout << client.run_id() << std::endl;
      client.close();
      return 0;
    }
    stop.start(client, ids, 15);
    // Between waits it asks why tests wait: first after 0.5 s, then every
    // 2 s, so an unplaceable test is named at once.
    std::set<std::string> told;
    bool ask = true;
    double next_ask = 0.5;
    for (;;) {
      double left = -1;
      if (set.timeout > 0)
        left = std::max(0.0, set.timeout - elapsed());
      // The progress line ticks even when no outcome comes.
      double step = tty   ? 0.5
                    : ask ? std::max(0.05, next_ask - elapsed())
                          : left;
      if ((tty || ask) && left >= 0)
        step = std::min(step, left);
      r = client.wait(step);
      if (r.complete() || r.disconnected || (left >= 0 && left <= step))
        break;
      if (ask && elapsed() >= next_ask) {
        auto lines = unplaceable_lines(client, told, ask);
        next_ask = elapsed() + 2.0;
        if (!lines.empty()) {
          std::lock_guard<std::mutex> g{watch.mtx};
          clear_progress(watch);
          for (auto& l : lines) {
            if (set.format == log_format::json)
              submit_log.put(log_level::warning, "submit", l);
            else
              std::fprintf(stderr, "alb submit: %s\n", l.c_str());
          }
          std::fflush(stderr);
        }
      }
      if (tty) {
        std::lock_guard<std::mutex> g{watch.mtx};
        draw_progress(watch, elapsed());
      }
    }
  } catch (const coordinator_client_error& e) {
    std::lock_guard<std::mutex> g{watch.mtx};
    clear_progress(watch);
    std::cerr << "alb submit: error: " << e.what() << "\n";
    return exit_status(e.code());
  }
  client.close();
  std::vector<cluster_outcome> results;
  {
    std::lock_guard<std::mutex> g{watch.mtx};
    clear_progress(watch);
    results = std::move(watch.results);
  }
  bool lost = r.disconnected && r.open > 0;
  bool timed_out = !r.disconnected && r.open > 0;
  std::stable_sort(results.begin(), results.end(), [&](auto& a, auto& b) {
    return order[a.test_id] < order[b.test_id];
  });
  // Outcomes in submission order; problems on stderr.
  report::print_outcome_table(human, results);
  report::submission_summary sum;
  sum.coordinator = set.coordinator;
  sum.tests = total;
  sum.open = r.open;
  for (auto& x : results)
    sum.passed += x.success ? 1 : 0;
  sum.wall_seconds = elapsed();
  std::fprintf(human, "%s\n", report::summary_line(sum, results).c_str());
  std::fflush(human);
  if (auto moves = report::moves_line(results); !moves.empty()) {
    std::fprintf(human, "%s\n", moves.c_str());
    std::fflush(human);
  }
  if (lost)
    std::cerr << "alb submit: error: the coordinator went away with " << r.open
              << " tests open\n";
  if (timed_out)
    std::cerr << "alb submit: error: --timeout reached with " << r.open
              << " tests open\n";
  if (!set.output.empty()) {
    try {
      write_result(
        set.output,
        report::result_document(sum, results)
            .dump(2, ' ', false, nlohmann::json::error_handler_t::replace)
          + "\n");
    } catch (const std::exception& e) {
      std::cerr << "alb submit: error: " << e.what() << "\n";
      return 1;
    }
  }
  if (!set.junit.empty()) {
    report::junit_suite js;
    js.name = set.suite_name;
    js.hostname = set.coordinator;
    js.timestamp = started_wall;
    js.wall_seconds = sum.wall_seconds;
    std::set<std::string> ended;
    for (auto& x : results)
      ended.insert(x.test_id);
    std::vector<std::string> missing;
    for (auto& id : ids)
      if (!ended.count(id))
        missing.push_back(id);
    try {
      write_result(set.junit, report::junit_xml(js, results, missing));
    } catch (const std::exception& e) {
      std::cerr << "alb submit: error: " << e.what() << "\n";
      return 1;
    }
  }
  if (auto sig = stop.signal())
    return 128 + sig;
  return sum.passed == total ? 0 : 1;
}

std::string suite_name_of(const std::string& path) {
  auto name = path.substr(path.find_last_of('/') + 1);
  auto dot = name.find_last_of('.');
  if (dot != std::string::npos && dot > 0)
    name.resize(dot);
  return name.empty() ? std::string{"alb"} : name;
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
  std::string junit;
  bool quiet = false;
  std::string log_format = "text";
  tls_options tls;
  std::string client_key;
  bool detach = false;
  bool rerun_failed = false;
  std::string run;
};

int run_submit(const submit_flags& f) {
  submit_settings set;
  set.coordinator = f.coordinator;
  set.timeout = f.timeout;
  set.connect_timeout = f.connect_timeout;
  set.output = f.output;
  set.quiet = f.quiet;
  set.junit = f.junit;
  set.suite_name = suite_name_of(f.file);
  set.format = parse_log_format(f.log_format, "--log-format");
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
    set.owner_key = read_client_key(
      f.client_key.empty() ? default_client_key_path() : f.client_key);
    set.label = absolute_path(f.file);
    set.detach = f.detach;
    if (!f.run.empty() && !f.rerun_failed)
      throw cluster_error{"--run names the run --rerun-failed reruns"};
  } catch (const cluster_error& e) {
    std::cerr << "alb submit: error: " << e.what() << "\n";
    return 2;
  }
  // A cluster file's [tls] section applies unless the flags say otherwise.
  set.tls = merge_tls(f.tls, load_config(f.file).tls);
  auto tests = load_cluster_tests(f.file);
  if (f.rerun_failed) {
    try {
      tests = failed_in_run(set, f.run, std::move(tests));
    } catch (const std::exception& e) {
      std::cerr << "alb submit: error: " << e.what() << "\n";
      return 2;
    }
    if (tests.empty())
      return 0;
    set.rerun = true;
  }
  return submit_and_report(set, std::move(tests));
}

} // namespace

void add_submit(CLI::App& app, int& rc) {
  auto f = std::make_shared<submit_flags>();
  auto* cmd = app.add_subcommand(
    "submit", "Send tests to a coordinator and wait for their outcomes");
  cmd->footer(
    "FILE is TOML or JSON with [[tests]] entries (test_id, command = [argv],\n"
    "env, cwd, timeout and requirement keys; see README).\n"
    "While it waits: on a terminal a progress line on stderr (ended,\n"
    "passed, failed, open), otherwise one line per test as it ends\n"
    "(\"[  3/200] passed  ID  1.23 s  on NODE (WORKER)\"; failures with the\n"
    "exit status or signal and the error); --quiet for neither. Then one\n"
    "table row per test and a summary on stdout (stderr with --output -).\n"
    "--output FILE writes the outcomes as JSON: per test status, exit_code\n"
    "(null when a signal or the timeout ended it), signal, node, worker,\n"
    "attempts, submitted_at/started_at/ended_at (ISO-8601 with zone),\n"
    "duration_seconds, queued_seconds, error, stdout_tail and stderr_tail\n"
    "(the last 2 KiB of each; output_tail is both, stdout first),\n"
    "speculated/speculation_won (a copy ran on another node / the outcome\n"
    "is that copy's); stats counts them as speculated_tests and\n"
    "speculation_wins.\n"
    "--junit FILE writes JUnit XML (Jenkins, GitLab, GitHub reporters): one\n"
    "testcase per test (classname.name split at the id's last '.', '::'\n"
    "or '/', time), <failure> for a non-zero exit, <error> for a timeout,\n"
    "a signal, a test that could not run or got no outcome, <skipped> for\n"
    "a cancelled one, with the message, details and output tail.\n"
    "--log-format json writes the per-test lines as JSON log lines (ts,\n"
    "level, component \"submit\", msg).\n"
    "A test no node can ever hold (too much memory, a missing backend, ...)\n"
    "is named at once with the reason (`alb submit: waiting: big: no node\n"
    "has memory >= 64 GB`); it fails when its wait limit passes unless such\n"
    "a node joins.\n"
    "A coordinator started with --tls-cert needs --tls-cert, --tls-key and\n"
    "--tls-ca here too (or a [tls] section in FILE): a certificate signed\n"
    "by the CA the coordinator trusts.\n"
    "Ctrl-C (SIGINT or SIGTERM) cancels the tests not ended yet and waits\n"
    "up to 15 s for the cancellations to be confirmed (a second one stops\n"
    "waiting); the exit status is then 128 + the signal. --detach submits,\n"
    "prints the run id on stdout and exits: the tests keep running and are\n"
    "journaled (alb results RUN, alb cancel --all-mine). --rerun-failed\n"
    "submits only the tests of FILE that failed or timed out in the last\n"
    "run of FILE (or --run RUN), even where the journal holds their outcome.\n"
    "Running it again after the coordinator was restarted (or this command\n"
    "was killed) finishes the same suite without running a test twice:\n"
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
                  "Write the outcomes to this JSON file (- = stdout)");
  cmd->add_option("--junit", f->junit,
                  "Write the outcomes as JUnit XML to this file (- = "
                  "stdout), for CI test reports");
  cmd->add_flag("-q,--quiet", f->quiet,
                "No progress line or per-test lines while waiting");
  add_log_flags(cmd, nullptr, f->log_format);
  cmd->add_option("--client-key", f->client_key,
                  "File holding this user's client key (made if missing; "
                  "default $ALB_CLIENT_KEY_FILE, else "
                  "~/.config/alb/client.key): who may cancel the tests");
  cmd->add_flag("--detach", f->detach,
                "Submit, print the run id and exit; the tests keep running "
                "(see alb results, alb cancel)");
  cmd->add_flag("--rerun-failed", f->rerun_failed,
                "Submit only the tests of FILE that failed or timed out in "
                "the last run of FILE (or --run)");
  cmd->add_option("--run", f->run, "With --rerun-failed: the run to rerun");
  add_tls_flags(cmd, f->tls);
  cmd->callback(
    [f, &rc] { rc = guarded("submit", [f] { return run_submit(*f); }); });
}

} // namespace alb::cli
