// `alb monitor`: a live terminal dashboard of any alb process's /metrics.

#include "bin/commands.hpp"

#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>

#include <CLI/CLI.hpp>

#include "report/monitor.hpp"

namespace alb::cli {

namespace {

struct monitor_flags {
  std::string url = "http://127.0.0.1:9464/metrics";
  std::string cacert;
  double interval = 1;
  uint64_t count = 0;
};

} // namespace

void add_monitor(CLI::App& app, int& rc) {
  auto f = std::make_shared<monitor_flags>();
  auto* cmd = app.add_subcommand(
    "monitor", "Live terminal dashboard of a running alb process's /metrics");
  cmd->footer(
    "Shows workers, queue depth by priority, throughput now and at its peak,\n"
    "assignment wait p50/p99 (the histogram bucket each lies in, e.g.\n"
    "'<= 1 ms'), success rate, migrations and steals, a throughput graph,\n"
    "the busiest workers and alerts (a queue that keeps growing while\n"
    "workers idle, success rate below 80%, a worker over 90% load while\n"
    "tests wait and other workers idle, workers lost since the last\n"
    "refresh). Works with anything alb serves\n"
    "/metrics for: a run with --metrics-port, a coordinator or a node, over\n"
    "http:// or https:// (for a TLS proxy in front of it; --cacert names\n"
    "its CA when it is not in the system's trust store). An unreachable\n"
    "target is shown and retried.\n"
    "Press q to quit. When stdout is not a terminal it prints one summary\n"
    "line per interval instead (Ctrl-C or --count ends it).\n"
    "Exit status: 0 ok, 1 the target was never reached, 2 bad input.\n\n"
    "Example: alb stress --metrics-port 9464 --duration 60 &\n"
    "         alb monitor --url http://127.0.0.1:9464/metrics");
  cmd
    ->add_option("--url", f->url,
                 "Where /metrics is: http[s]://HOST:PORT[/PATH] (default "
                 "http://127.0.0.1:9464/metrics)")
    ->check(CLI::Validator(
      [](std::string& s) -> std::string {
        try {
          report::parse_metrics_url(s);
          return {};
        } catch (const std::invalid_argument& e) {
          return e.what();
        }
      },
      "URL", "http(s) URL"));
  cmd
    ->add_option("--cacert", f->cacert,
                 "PEM file of the CA an https:// target's certificate must "
                 "chain to (default: the system's trust store)")
    ->check(CLI::ExistingFile);
  cmd->add_option("--interval", f->interval, "Seconds between refreshes")
    ->default_val(1)
    ->check(CLI::Validator(
      [](std::string& s) -> std::string {
        // Checked by hand for a message that says what is allowed.
        char* end = nullptr;
        auto v = std::strtod(s.c_str(), &end);
        if (s.empty() || *end != '\0' || !(v >= 0.1 && v <= 3600))
          return "'" + s + "' is not a number of seconds from 0.1 to 3600";
        return {};
      },
      "SECONDS", "seconds"));
  cmd
    ->add_option("--count", f->count,
                 "Stop after this many refreshes (0 = until q or Ctrl-C)")
    ->default_val(0)
    ->check(CLI::Range(uint64_t{0}, uint64_t{1000000000}));
  cmd->callback([f, &rc] {
    report::monitor_options o;
    o.url = report::parse_metrics_url(f->url);
    o.ca_file = f->cacert;
    o.interval = f->interval;
    o.count = f->count;
    rc = report::run_monitor(o);
  });
}

} // namespace alb::cli
