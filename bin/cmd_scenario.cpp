// `alb scenarios` and `alb scenario NAME`: the named, scripted simulated runs
// of configs/scenarios.toml (plus any from --config / LB_CONFIG_PATH).

#include "bin/commands.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <sstream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "bin/common.hpp"
#include "runtime/strategy.hpp"

namespace alb::cli {

namespace {

// -- helpers ------------------------------------------------------------------

std::string fmt(double x) {
  std::ostringstream os;
  os << x;
  return os.str();
}

std::string percent(double fraction) {
  return fmt(std::round(fraction * 1000) / 10) + "%";
}

/// Breaks `text` into lines of at most `width` characters; the first starts
/// with `indent`, the others with `hang` so labels stand out.
std::string wrap(const std::string& text, size_t width,
                 const std::string& indent, const std::string& hang) {
  std::istringstream words{text};
  std::string word, line, out;
  const std::string* lead = &indent;
  while (words >> word) {
    if (!line.empty() && lead->size() + line.size() + 1 + word.size() > width) {
      out += *lead + line + "\n";
      line.clear();
      lead = &hang;
    }
    line += (line.empty() ? "" : " ") + word;
  }
  if (!line.empty())
    out += *lead + line + "\n";
  return out;
}

/// One event in words, e.g. "at 40%: kill 50% of the initial workers (15)".
std::string describe_event(const scenario_event& ev, int initial_workers) {
  std::string out = "at " + percent(ev.at) + ": ";
  if (ev.action == scenario_action::submit_burst) {
    out += "burst of " + std::to_string(ev.tests) + " tests";
    if (ev.priority > 0)
      out += " at priority " + std::to_string(ev.priority);
    return out;
  }
  const char* verb = ev.action == scenario_action::add_workers    ? "add"
                     : ev.action == scenario_action::kill_workers ? "kill"
                                                                  : "remove";
  auto n = event_worker_count(ev, initial_workers);
  out += std::string{verb} + " ";
  if (ev.count > 0)
    out += std::to_string(n) + " workers";
  else
    out += percent(ev.fraction) + " of the initial workers ("
           + std::to_string(n) + ")";
  return out;
}

nlohmann::json event_json(const scenario_event& ev, double duration,
                          int initial_workers) {
  nlohmann::json j = {{"at", ev.at},
                      {"at_seconds", ev.at * duration},
                      {"action", to_string(ev.action)}};
  if (ev.action == scenario_action::submit_burst) {
    j["tests"] = ev.tests;
    j["priority"] = ev.priority;
  } else {
    if (ev.count > 0)
      j["count"] = ev.count;
    else
      j["fraction"] = ev.fraction;
    j["workers"] = event_worker_count(ev, initial_workers);
  }
  return j;
}

// -- alb scenarios ------------------------------------------------------------

struct list_flags : run_flags {};

int list_scenarios(const list_flags& f) {
  auto cfg = load_run_config(f, "scenarios");
  auto names = scenario_list(cfg);
  std::cout << names.size() << " scenarios";
  if (!cfg.sources.empty()) {
    std::cout << " (from ";
    for (size_t i = 0; i < cfg.sources.size(); ++i)
      std::cout << (i ? ", " : "") << cfg.sources[i];
    std::cout << ")";
  }
  std::cout << ":\n";
  for (auto& entry : names) {
    auto& s = cfg.scenario_configurations.at(entry.first);
    auto& tc = cfg.test_configurations.at(s.test_config);
    std::cout << "\n" << entry.first << "\n";
    std::cout << wrap(s.description, 78, "  ", "  ");
    std::string setup
      = s.test_config + " (" + std::to_string(tc.workers) + " workers, "
        + std::to_string(tc.tests) + " tests over " + fmt(tc.duration)
        + " s), workers " + s.worker_profile + ", tests " + s.test_profile
        + ", strategy "
        + (s.strategy.empty() ? cfg.scheduler.strategy : s.strategy);
    if (s.burst_mode)
      setup += ", bursts";
    if (s.dynamic_workers)
      setup += ", random churn";
    std::cout << wrap(setup, 78, "    setup:  ", "            ");
    for (auto& ev : s.events)
      std::cout << wrap(describe_event(ev, tc.workers), 78,
                        "    event:  ", "            ");
    if (!s.expectation.empty())
      std::cout << wrap(s.expectation, 78, "    expect: ", "            ");
    for (auto& c : s.checks) {
      std::string bound
        = c.than.empty()
            ? fmt(c.threshold)
            : (c.threshold == 1 ? "" : fmt(c.threshold) + " x ") + c.than;
      std::cout << wrap(c.what + ": " + c.metric + " " + to_string(c.op) + " "
                          + bound,
                        78, "    check:  ", "            ");
    }
  }
  std::cout << "\nRun one with: alb scenario NAME [--output FILE]\n";
  return 0;
}

// -- alb scenario NAME --------------------------------------------------------

struct scenario_flags : run_flags {
  std::string name;
};

int run_scenario(const scenario_flags& f) {
  auto cfg = load_run_config(f, "scenario");
  auto& s = find_scenario(cfg, f.name);
  // validate() has checked that the scenario's references exist.
  auto& tc = cfg.test_configurations.at(s.test_config);
  check_workers(cfg, peak_workers(cfg, s), "scenario " + f.name);
  simulation_options o;
  o.type = "scenario";
  o.workers = tc.workers;
  o.tests = static_cast<uint64_t>(tc.tests);
  o.duration = tc.duration;
  o.burst = s.burst_mode;
  o.dynamic = s.dynamic_workers;
  f.apply_simulation(o, cfg.scheduler, s.strategy);
  o.max_workers = cfg.max_workers;
  o.workers_profile = cfg.worker_profiles.at(s.worker_profile);
  o.tests_profile = cfg.test_profiles.at(s.test_profile);
  // Events are given as fractions of the initial workers; the churn actor
  // counts fractions of the workers present, so hand it absolute counts.
  auto events = nlohmann::json::array();
  uint64_t burst_tests = 0;
  for (auto& ev : s.events) {
    events.push_back(event_json(ev, tc.duration, tc.workers));
    auto at = ev.at * tc.duration;
    if (ev.action == scenario_action::submit_burst) {
      o.extra_waves.push_back(
        {at, static_cast<uint64_t>(ev.tests), ev.priority});
      burst_tests += static_cast<uint64_t>(ev.tests);
      continue;
    }
    churn_event ce;
    ce.at = at;
    ce.action = ev.action == scenario_action::add_workers
                  ? churn_event::kind::add
                : ev.action == scenario_action::kill_workers
                  ? churn_event::kind::kill
                  : churn_event::kind::remove;
    ce.count = static_cast<uint64_t>(event_worker_count(ev, tc.workers));
    o.extra_churn.push_back(ce);
  }
  o.extra_configuration = {
    {"scenario", f.name},
    {"description", s.description},
    {"expectation", s.expectation},
    {"test_config", s.test_config},
    {"worker_profile", s.worker_profile},
    {"test_profile", s.test_profile},
    {"events", events},
  };
  // Every scenario's common promises, then those its file states as data.
  auto expectations = common_expectations();
  expectations.insert(expectations.end(), s.checks.begin(), s.checks.end());
  auto checks = std::make_shared<std::vector<check_outcome>>();
  o.on_document = [checks, expectations](nlohmann::json& doc) {
    *checks = evaluate(expectations, doc);
    auto arr = nlohmann::json::array();
    for (auto& c : *checks) {
      auto& e = c.expectation;
      nlohmann::json j = {{"check", e.what},       {"metric", e.metric},
                          {"op", to_string(e.op)}, {"threshold", e.threshold},
                          {"bound", c.bound},      {"passed", c.passed},
                          {"detail", c.detail()}};
      if (c.found)
        j["measured"] = c.measured;
      if (!e.than.empty())
        j["than"] = e.than;
      arr.push_back(std::move(j));
    }
    doc["scenario_checks"] = std::move(arr);
  };
  auto metrics
    = metrics_session::start(f, cfg, "scenario", o.scheduler.strategy);
  f.human() << "alb scenario " << f.name << ": " << s.description << "\n"
            << "  " << o.workers << " workers (" << s.worker_profile << "), "
            << o.tests << " tests (" << s.test_profile << ")";
  if (burst_tests > 0)
    f.human() << " + " << burst_tests << " in bursts";
  f.human() << " over " << o.duration << " s" << (o.burst ? ", bursts" : "")
            << (o.dynamic ? ", random churn" : "") << ", strategy "
            << o.scheduler.strategy << ", seed " << o.seed << "\n";
  for (auto& ev : s.events)
    f.human() << "  event " << describe_event(ev, tc.workers) << "\n";
  f.human() << std::flush;
  auto rc = run_and_report(std::move(o), f, "scenario", metrics.get());
  if (checks->empty())
    return rc;
  if (!s.expectation.empty())
    f.human() << "expected: " << s.expectation << "\n";
  bool all_met = true;
  for (auto& c : *checks) {
    f.human() << "  [" << (c.passed ? "ok" : "NOT MET") << "] "
              << c.expectation.what << ": " << c.detail() << "\n";
    all_met = all_met && c.passed;
  }
  f.human() << std::flush;
  // A promise not kept fails the command, unless it already failed or was
  // interrupted (whose status says more).
  if (rc == 0 && !all_met) {
    std::cerr << "alb scenario " << f.name
              << ": error: expectations NOT MET (see above)\n";
    return 1;
  }
  return rc;
}

} // namespace

void add_scenario(CLI::App& app, int& rc) {
  {
    auto f = std::make_shared<list_flags>();
    auto* cmd = app.add_subcommand(
      "scenarios", "List the scenarios with what each exercises and expects");
    cmd->footer("Lists the shipped scenarios (configs/scenarios.toml) and "
                "those of --config\n(or $LB_CONFIG_PATH). Exit status: 0 ok, "
                "2 bad configuration.");
    f->add_config(cmd);
    cmd->callback([f, &rc] {
      rc = guarded("scenarios", [f] { return list_scenarios(*f); });
    });
  }
  auto f = std::make_shared<scenario_flags>();
  auto* cmd = app.add_subcommand("scenario",
                                 "Run a named scenario (see `alb scenarios`)");
  cmd->footer(
    "The scenario sets the size (its test_config: workers, tests, duration),\n"
    "the worker and test profiles, bursts, random churn, the strategy and a\n"
    "script of events at fractions of the submission window: worker removals\n"
    "and crashes, new workers, bursts of extra tests. --strategy overrides\n"
    "the scenario's, which overrides [scheduler] strategy. $LB_MAX_WORKERS\n"
    "is a hard cap on workers present at once: a script that passes it is\n"
    "refused, random churn adds only up to it. After the run every\n"
    "check of the scenario (its `checks` in configs/scenarios.toml: metric,\n"
    "op, threshold or `than` another metric; plus no test lost and no\n"
    "worker oversubscribed for every scenario) is printed as [ok] or\n"
    "[NOT MET] with the measured value; the JSON gets them as\n"
    "scenario_checks. Exit status: 0 ok, 1 run failed or a check NOT MET,\n"
    "2 bad input, 130/143 interrupted (SIGINT/SIGTERM).\n\n"
    "Example: alb scenario worker_churn --output worker_churn_results.json");
  cmd->add_option("name", f->name, "Scenario name (see `alb scenarios`)")
    ->required();
  f->add_simulation(cmd, "Placement strategy (overrides the scenario's)");
  f->add_output(cmd);
  f->add_config(cmd);
  f->add_metrics(cmd);
  cmd->callback(
    [f, &rc] { rc = guarded("scenario", [f] { return run_scenario(*f); }); });
}

} // namespace alb::cli
