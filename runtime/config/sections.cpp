// The sections of a configuration file: which keys each one has, how each
// is read and checked, and the top-level table that holds them.

#include "runtime/config/reader.hpp"
#include "runtime/constraints.hpp"

#include <cmath>
#include <map>
#include <optional>
#include <set>

#include "runtime/byte_size.hpp"

namespace alb::config_detail {

namespace {

// -- sections -----------------------------------------------------------------

using node = toml::node;
using str = std::string;

const field<test_configuration> test_configuration_fields[] = {
  {"workers",
   [](reader& r, const node& n, const str& p, test_configuration& x) {
     x.workers = r.integer(n, p, 1, int_max);
   }},
  {"tests",
   [](reader& r, const node& n, const str& p, test_configuration& x) {
     x.tests = r.integer(n, p, 1, int_max);
   }},
  {"duration",
   [](reader& r, const node& n, const str& p, test_configuration& x) {
     x.duration = r.number(n, p, bound::non_negative);
   }},
  {"description",
   [](reader& r, const node& n, const str& p, test_configuration& x) {
     x.description = r.string(n, p);
   }},
};

const field<worker_profile> worker_profile_fields[] = {
  {"memory_distribution",
   [](reader& r, const node& n, const str& p, worker_profile& x) {
     x.memory_distribution = r.numbers(n, p, bound::positive);
   }},
  {"cuda_distribution",
   [](reader& r, const node& n, const str& p, worker_profile& x) {
     x.cuda_distribution = r.integers(n, p, 0, 1024);
   }},
  {"cores_distribution",
   [](reader& r, const node& n, const str& p, worker_profile& x) {
     x.cores_distribution = r.integers(n, p, 1, 4096);
   }},
  {"speed_distribution",
   [](reader& r, const node& n, const str& p, worker_profile& x) {
     x.speed_distribution = r.numbers(n, p, bound::positive);
   }},
  {"failure_rate",
   [](reader& r, const node& n, const str& p, worker_profile& x) {
     x.failure_rate = r.number(n, p, bound::unit);
   }},
  {"warmup_seconds",
   [](reader& r, const node& n, const str& p, worker_profile& x) {
     x.warmup_seconds = r.number(n, p, bound::non_negative);
   }},
  {"warmup_performance",
   [](reader& r, const node& n, const str& p, worker_profile& x) {
     x.warmup_performance = r.number(n, p, bound::unit_open);
   }},
  {"cooldown_seconds",
   [](reader& r, const node& n, const str& p, worker_profile& x) {
     x.cooldown_seconds = r.number(n, p, bound::non_negative);
   }},
  {"background_load",
   [](reader& r, const node& n, const str& p, worker_profile& x) {
     x.background_load = r.number(n, p, bound::percent);
   }},
  {"description", [](reader& r, const node& n, const str& p,
                     worker_profile& x) { x.description = r.string(n, p); }},
};

const field<test_profile> test_profile_fields[] = {
  {"memory_requirements",
   [](reader& r, const node& n, const str& p, test_profile& x) {
     x.memory_requirements = r.numbers(n, p, bound::non_negative);
   }},
  {"cuda_requirements",
   [](reader& r, const node& n, const str& p, test_profile& x) {
     x.cuda_requirements = r.integers(n, p, 0, 1024);
   }},
  {"priority_distribution",
   [](reader& r, const node& n, const str& p, test_profile& x) {
     x.priority_distribution = r.integers(n, p, 1, 5);
   }},
  {"duration_distribution",
   [](reader& r, const node& n, const str& p, test_profile& x) {
     x.duration_distribution = r.numbers(n, p, bound::positive);
   }},
  {"model_ids", [](reader& r, const node& n, const str& p,
                   test_profile& x) { x.model_ids = r.strings(n, p, false); }},
  {"retries", [](reader& r, const node& n, const str& p,
                 test_profile& x) { x.retries = r.integer(n, p, 0, 100); }},
  {"description", [](reader& r, const node& n, const str& p,
                     test_profile& x) { x.description = r.string(n, p); }},
};

/// An event as written, before the checks that involve several keys.
struct raw_event {
  std::optional<double> at;
  std::optional<scenario_action> action;
  std::optional<double> fraction;
  std::optional<int> count;
  std::optional<int> tests;
  std::optional<int> priority;
};

const field<raw_event> event_fields[] = {
  {"at", [](reader& r, const node& n, const str& p,
            raw_event& x) { x.at = r.number(n, p, bound::unit); }},
  {"action",
   [](reader& r, const node& n, const str& p, raw_event& x) {
     auto s = r.string(n, p);
     x.action = parse_scenario_action(s);
     if (!x.action)
       r.fail(n, p,
              "unknown action '" + s
                + "' (expected remove_workers, add_workers, submit_burst or "
                  "kill_workers)");
   }},
  {"fraction",
   [](reader& r, const node& n, const str& p, raw_event& x) {
     x.fraction = r.number(n, p, bound::unit_open);
   }},
  {"count", [](reader& r, const node& n, const str& p,
               raw_event& x) { x.count = r.integer(n, p, 1, int_max); }},
  {"tests", [](reader& r, const node& n, const str& p,
               raw_event& x) { x.tests = r.integer(n, p, 1, int_max); }},
  {"priority", [](reader& r, const node& n, const str& p,
                  raw_event& x) { x.priority = r.integer(n, p, 1, 5); }},
};

scenario_event read_event(reader& r, const node& n, const str& p) {
  raw_event raw;
  read_fields(r, r.table(n, p), p, raw, event_fields);
  if (!raw.at)
    r.fail(n, p, "missing 'at' (when, as a fraction 0-1 of the run)");
  if (!raw.action)
    r.fail(n, p,
           "missing 'action' (remove_workers, add_workers, submit_burst or "
           "kill_workers)");
  scenario_event ev;
  ev.at = *raw.at;
  ev.action = *raw.action;
  if (ev.action == scenario_action::submit_burst) {
    if (raw.fraction || raw.count)
      r.fail(n, p,
             "a submit_burst takes 'tests' (and 'priority'), not 'fraction' "
             "or 'count'");
    if (!raw.tests)
      r.fail(n, p, "a submit_burst needs 'tests' (how many tests arrive)");
    ev.tests = *raw.tests;
    ev.priority = raw.priority.value_or(0);
  } else {
    if (raw.tests || raw.priority)
      r.fail(n, p,
             std::string{"'tests' and 'priority' apply to submit_burst, not "}
               + to_string(ev.action));
    if (raw.fraction.has_value() == raw.count.has_value())
      r.fail(n, p,
             std::string{"a "} + to_string(ev.action)
               + " needs exactly one of 'fraction' or 'count'");
    ev.fraction = raw.fraction.value_or(0);
    ev.count = raw.count.value_or(0);
  }
  return ev;
}

const field<scenario_expectation> check_fields[] = {
  {"what", [](reader& r, const node& n, const str& p,
              scenario_expectation& x) { x.what = r.nonempty_string(n, p); }},
  {"metric",
   [](reader& r, const node& n, const str& p, scenario_expectation& x) {
     x.metric = r.nonempty_string(n, p);
     if (auto problem = metric_problem(x.metric); !problem.empty())
       r.fail(n, p, problem);
   }},
  {"op",
   [](reader& r, const node& n, const str& p, scenario_expectation& x) {
     auto s = r.string(n, p);
     auto op = parse_comparison(s);
     if (!op)
       r.fail(n, p,
              "unknown comparison '" + s + "' (expected <, <=, >, >= or ==)");
     x.op = *op;
   }},
  {"threshold", [](reader& r, const node& n, const str& p,
                   scenario_expectation& x) { x.threshold = r.number(n, p); }},
  {"than",
   [](reader& r, const node& n, const str& p, scenario_expectation& x) {
     x.than = r.nonempty_string(n, p);
     if (auto problem = metric_problem(x.than); !problem.empty())
       r.fail(n, p, problem);
   }},
};

scenario_expectation read_check(reader& r, const node& n, const str& p) {
  scenario_expectation x;
  x.threshold = std::nan("");
  auto& t = r.table(n, p);
  read_fields(r, t, p, x, check_fields);
  for (auto key : {"what", "metric", "op"})
    if (!t.contains(key))
      r.fail(n, p, std::string{"a check needs '"} + key + "'");
  // Relative to another metric the factor defaults to 1.
  if (std::isnan(x.threshold)) {
    if (x.than.empty())
      r.fail(n, p, "a check needs 'threshold' (or 'than', another metric)");
    x.threshold = 1;
  }
  return x;
}

std::string strategy_problem(const std::string& name) {
  // The scheduler section's own check knows the strategy names; every other
  // key of a default scheduler_config is valid, so any complaint is about
  // the name.
  scheduler_config probe;
  probe.strategy = name;
  auto msg = probe.validate();
  auto colon = msg.find(": ");
  return colon == std::string::npos ? msg : msg.substr(colon + 2);
}

const field<scenario_configuration> scenario_fields[] = {
  {"test_config",
   [](reader& r, const node& n, const str& p, scenario_configuration& x) {
     x.test_config = r.nonempty_string(n, p);
   }},
  {"worker_profile",
   [](reader& r, const node& n, const str& p, scenario_configuration& x) {
     x.worker_profile = r.nonempty_string(n, p);
   }},
  {"test_profile",
   [](reader& r, const node& n, const str& p, scenario_configuration& x) {
     x.test_profile = r.nonempty_string(n, p);
   }},
  {"burst_mode",
   [](reader& r, const node& n, const str& p, scenario_configuration& x) {
     x.burst_mode = r.boolean(n, p);
   }},
  {"dynamic_workers",
   [](reader& r, const node& n, const str& p, scenario_configuration& x) {
     x.dynamic_workers = r.boolean(n, p);
   }},
  {"strategy",
   [](reader& r, const node& n, const str& p, scenario_configuration& x) {
     x.strategy = r.string(n, p);
     if (!x.strategy.empty())
       if (auto problem = strategy_problem(x.strategy); !problem.empty())
         r.fail(n, p, problem);
   }},
  {"description",
   [](reader& r, const node& n, const str& p, scenario_configuration& x) {
     x.description = r.string(n, p);
   }},
  {"expectation",
   [](reader& r, const node& n, const str& p, scenario_configuration& x) {
     x.expectation = r.string(n, p);
   }},
  {"checks",
   [](reader& r, const node& n, const str& p, scenario_configuration& x) {
     auto& a = r.array(n, p, true);
     std::vector<scenario_expectation> checks;
     for (size_t i = 0; i < a.size(); ++i)
       checks.push_back(read_check(r, a[i], p + "[" + std::to_string(i) + "]"));
     x.checks = std::move(checks);
   }},
  {"events",
   [](reader& r, const node& n, const str& p, scenario_configuration& x) {
     auto& a = r.array(n, p, true);
     std::vector<scenario_event> events;
     for (size_t i = 0; i < a.size(); ++i)
       events.push_back(read_event(r, a[i], p + "[" + std::to_string(i) + "]"));
     // Consumers replay the script in time order; equal times keep file
     // order.
     std::stable_sort(events.begin(), events.end(),
                      [](auto& a, auto& b) { return a.at < b.at; });
     x.events = std::move(events);
   }},
};

const field<scheduler_config> scheduler_fields[] = {
  {"strategy",
   [](reader& r, const node& n, const str& p, scheduler_config& x) {
     x.strategy = r.nonempty_string(n, p);
   }},
  {"prefetch",
   [](reader& r, const node& n, const str& p, scheduler_config& x) {
     x.prefetch = r.integer(n, p, 0, 1000000);
   }},
  {"wait_limit", [](reader& r, const node& n, const str& p,
                    scheduler_config& x) { x.wait_limit = r.number(n, p); }},
  {"aging_interval",
   [](reader& r, const node& n, const str& p, scheduler_config& x) {
     x.aging_interval = r.number(n, p);
   }},
  {"tick_interval",
   [](reader& r, const node& n, const str& p, scheduler_config& x) {
     x.tick_interval = r.number(n, p);
   }},
  {"parked_scan_limit",
   [](reader& r, const node& n, const str& p, scheduler_config& x) {
     x.parked_scan_limit = r.integer(n, p, 0, int_max);
   }},
  {"pull_slack", [](reader& r, const node& n, const str& p,
                    scheduler_config& x) { x.pull_slack = r.number(n, p); }},
  {"strategy_by_type",
   [](reader& r, const node& n, const str& p, scheduler_config& x) {
     // Each name is checked here so the message points at its own line.
     std::map<std::string, std::string> by_type;
     for (auto&& [k, v] : r.table(n, p)) {
       auto kp = child(p, k.str());
       auto name = r.nonempty_string(v, kp);
       if (auto problem = strategy_problem(name); !problem.empty())
         r.fail(v, kp, problem);
       by_type[std::string{k.str()}] = std::move(name);
     }
     x.strategy_by_type = std::move(by_type);
   }},
  {"speed_hints", [](reader& r, const node& n, const str& p,
                     scheduler_config& x) { x.speed_hints = r.boolean(n, p); }},
  {"rebalance", [](reader& r, const node& n, const str& p,
                   scheduler_config& x) { x.rebalance = r.boolean(n, p); }},
  {"speculate", [](reader& r, const node& n, const str& p,
                   scheduler_config& x) { x.speculate = r.boolean(n, p); }},
  {"strict_priority",
   [](reader& r, const node& n, const str& p, scheduler_config& x) {
     x.strict_priority = r.boolean(n, p);
   }},
  {"rebalance_interval",
   [](reader& r, const node& n, const str& p, scheduler_config& x) {
     x.rebalance_interval = r.number(n, p);
   }},
  {"overload_threshold",
   [](reader& r, const node& n, const str& p, scheduler_config& x) {
     x.overload_threshold = r.number(n, p);
   }},
  {"idle_threshold",
   [](reader& r, const node& n, const str& p, scheduler_config& x) {
     x.idle_threshold = r.number(n, p);
   }},
  {"max_moves_per_cycle",
   [](reader& r, const node& n, const str& p, scheduler_config& x) {
     x.max_moves_per_cycle = r.integer(n, p, 0, int_max);
   }},
  {"rebalance_cooldown",
   [](reader& r, const node& n, const str& p, scheduler_config& x) {
     x.rebalance_cooldown = r.number(n, p);
   }},
  {"seed",
   [](reader& r, const node& n, const str& p, scheduler_config& x) {
     auto v = r.integer(n, p);
     if (v < 0)
       r.fail(n, p, "must not be negative, got " + std::to_string(v));
     x.seed = static_cast<unsigned long long>(v);
   }},
};

const field<metrics_config> metrics_fields[] = {
  {"port", [](reader& r, const node& n, const str& p,
              metrics_config& x) { x.port = r.integer(n, p, -1, 65535); }},
  {"bind", [](reader& r, const node& n, const str& p,
              metrics_config& x) { x.bind = r.nonempty_string(n, p); }},
  {"linger",
   [](reader& r, const node& n, const str& p, metrics_config& x) {
     x.linger = r.number(n, p, bound::non_negative);
   }},
};

const field<cluster_config> cluster_fields[] = {
  {"host", [](reader& r, const node& n, const str& p,
              cluster_config& x) { x.host = r.nonempty_string(n, p); }},
  {"port", [](reader& r, const node& n, const str& p,
              cluster_config& x) { x.port = r.integer(n, p, 0, 65535); }},
  {"token_file", [](reader& r, const node& n, const str& p,
                    cluster_config& x) { x.token_file = r.string(n, p); }},
  {"db_path", [](reader& r, const node& n, const str& p,
                 cluster_config& x) { x.db_path = r.nonempty_string(n, p); }},
  {"node_timeout",
   [](reader& r, const node& n, const str& p, cluster_config& x) {
     auto v = r.number(n, p, bound::positive);
     if (v < 0.1 || v > 86400)
       r.fail(n, p, "must be between 0.1 and 86400 seconds, got " + num(v));
     x.node_timeout = v;
   }},
  {"timeout_grace",
   [](reader& r, const node& n, const str& p, cluster_config& x) {
     auto v = r.number(n, p, bound::non_negative);
     if (v > 86400)
       r.fail(n, p, "must be at most 86400 seconds, got " + num(v));
     x.timeout_grace = v;
   }},
  {"client_timeout",
   [](reader& r, const node& n, const str& p, cluster_config& x) {
     auto v = r.number(n, p, bound::positive);
     if (v < 0.1 || v > 86400)
       r.fail(n, p, "must be between 0.1 and 86400 seconds, got " + num(v));
     x.client_timeout = v;
   }},
  {"handshake_timeout",
   [](reader& r, const node& n, const str& p, cluster_config& x) {
     auto v = r.number(n, p, bound::positive);
     if (v < 0.1 || v > 3600)
       r.fail(n, p, "must be between 0.1 and 3600 seconds, got " + num(v));
     x.handshake_timeout = v;
   }},
  {"max_handshakes_per_address",
   [](reader& r, const node& n, const str& p, cluster_config& x) {
     x.max_handshakes_per_address = r.integer(n, p, 1, 100000);
   }},
  {"max_handshakes",
   [](reader& r, const node& n, const str& p, cluster_config& x) {
     x.max_handshakes = r.integer(n, p, 1, 100000);
   }},
  {"max_submission",
   [](reader& r, const node& n, const str& p, cluster_config& x) {
     // Bytes as an integer, or a size such as "64MiB".
     std::optional<uint64_t> v;
     if (auto i = n.as_integer()) {
       if (i->get() < 0)
         r.fail(n, p, "must not be negative");
       v = static_cast<uint64_t>(i->get());
     } else if (auto s = n.as_string()) {
       v = parse_byte_size(s->get());
       if (!v)
         r.fail(n, p,
                "'" + s->get()
                  + "' is not a size (bytes, or e.g. \"64MiB\", \"512K\")");
     } else {
       r.fail(n, p, "expected bytes (an integer) or a size such as \"64MiB\"");
     }
     if (auto why = check_max_submission(*v); !why.empty())
       r.fail(n, p, why);
     x.max_submission = *v;
   }},
};

const field<tls_config> tls_fields[] = {
  {"cert", [](reader& r, const node& n, const str& p,
              tls_config& x) { x.cert = r.nonempty_string(n, p); }},
  {"key", [](reader& r, const node& n, const str& p,
             tls_config& x) { x.key = r.nonempty_string(n, p); }},
  {"ca", [](reader& r, const node& n, const str& p,
            tls_config& x) { x.ca = r.nonempty_string(n, p); }},
  {"passphrase_file",
   [](reader& r, const node& n, const str& p, tls_config& x) {
     x.passphrase_file = r.nonempty_string(n, p);
   }},
};

// A duration of a test: non-negative and at most max_test_seconds (a
// larger one would overflow the timers that enforce it).
double test_seconds(reader& r, const node& n, const str& p) {
  auto x = r.number(n, p, bound::non_negative);
  if (x > max_test_seconds) {
    std::ostringstream msg;
    msg.precision(12);
    msg << x << " s is too long (at most "
        << static_cast<long long>(max_test_seconds) << " s, 30 days)";
    r.fail(n, p, msg.str());
  }
  return x;
}

// Strings handed to exec must not hold NUL bytes: exec would cut them.
const str& no_nul(reader& r, const node& n, const str& p, const str& s) {
  if (s.find('\0') != str::npos)
    r.fail(n, p, "contains a NUL byte (exec would cut the string there)");
  return s;
}

const field<test_spec> test_spec_fields[] = {
  {"test_id",
   [](reader& r, const node& n, const str& p, test_spec& x) {
     x.requirements.test_id = r.nonempty_string(n, p);
   }},
  {"model_id", [](reader& r, const node& n, const str& p,
                  test_spec& x) { x.requirements.model_id = r.string(n, p); }},
  {"model_family",
   [](reader& r, const node& n, const str& p, test_spec& x) {
     x.requirements.model_family = r.string(n, p);
   }},
  {"test_type",
   [](reader& r, const node& n, const str& p, test_spec& x) {
     x.requirements.test_type = r.string(n, p);
   }},
  {"minimum_memory",
   [](reader& r, const node& n, const str& p, test_spec& x) {
     x.requirements.minimum_memory = r.number(n, p, bound::non_negative);
   }},
  {"required_backend",
   [](reader& r, const node& n, const str& p, test_spec& x) {
     x.requirements.required_backend = r.string(n, p);
   }},
  {"preferred_backend",
   [](reader& r, const node& n, const str& p, test_spec& x) {
     x.requirements.preferred_backend = r.string(n, p);
   }},
  {"required_accelerators",
   [](reader& r, const node& n, const str& p, test_spec& x) {
     std::map<std::string, int> acc;
     for (auto&& [k, v] : r.table(n, p))
       acc[std::string{k.str()}] = r.integer(v, child(p, k.str()), 0, 1024);
     x.requirements.required_accelerators = std::move(acc);
   }},
  {"required_software",
   [](reader& r, const node& n, const str& p, test_spec& x) {
     x.requirements.required_software = r.strings(n, p, true);
     // Checked here so a bad one is named with its line, not at submit.
     auto& a = *n.as_array();
     for (size_t i = 0; i < a.size(); ++i) {
       std::string error;
       if (!parse_software_need(x.requirements.required_software[i], error))
         r.fail(a[i], p + "[" + std::to_string(i) + "]",
                error
                  + " (expected NAME or NAME OP VERSION, e.g. "
                    "\"torch >= 2.1\")");
     }
   }},
  {"tags",
   [](reader& r, const node& n, const str& p, test_spec& x) {
     x.requirements.required_tags = r.strings(n, p, true);
     auto& a = *n.as_array();
     for (size_t i = 0; i < a.size(); ++i)
       if (auto why = validate_tag(x.requirements.required_tags[i]);
           !why.empty())
         r.fail(a[i], p + "[" + std::to_string(i) + "]", why);
   }},
  {"expected_duration",
   [](reader& r, const node& n, const str& p, test_spec& x) {
     x.requirements.expected_duration = test_seconds(r, n, p);
   }},
  {"priority",
   [](reader& r, const node& n, const str& p, test_spec& x) {
     x.requirements.priority = r.integer(n, p, 1, 5);
   }},
  {"timeout",
   [](reader& r, const node& n, const str& p, test_spec& x) {
     x.requirements.timeout = test_seconds(r, n, p);
   }},
  {"retries",
   [](reader& r, const node& n, const str& p, test_spec& x) {
     x.requirements.retries = r.integer(n, p, 0, 100);
   }},
  {"concurrency_key",
   [](reader& r, const node& n, const str& p, test_spec& x) {
     x.requirements.concurrency_key = r.string(n, p);
   }},
  {"wait_limit",
   [](reader& r, const node& n, const str& p, test_spec& x) {
     x.requirements.wait_limit = test_seconds(r, n, p);
   }},
  {"speculate",
   [](reader& r, const node& n, const str& p, test_spec& x) {
     x.requirements.speculate = r.boolean(n, p);
   }},
  {"command",
   [](reader& r, const node& n, const str& p, test_spec& x) {
     if (n.is_string())
       r.fail(n, p,
              "expected an array of strings (the argv, e.g. [\"pytest\", "
              "\"-q\"]), got a string");
     x.command = r.strings(n, p, false);
     auto& a = *n.as_array();
     for (size_t i = 0; i < x.command.size(); ++i)
       no_nul(r, a[i], p + "[" + std::to_string(i) + "]", x.command[i]);
   }},
  {"simulate", [](reader& r, const node& n, const str& p,
                  test_spec& x) { x.simulate = r.boolean(n, p); }},
  {"env",
   [](reader& r, const node& n, const str& p, test_spec& x) {
     std::map<std::string, std::string> env;
     for (auto&& [k, v] : r.table(n, p)) {
       if (k.str().empty() || k.str().find('=') != std::string_view::npos)
         r.fail(v, p, "'" + std::string{k.str()} + "' is not a variable name");
       auto key = std::string{k.str()};
       no_nul(r, v, p, key);
       env[key]
         = no_nul(r, v, child(p, k.str()), r.string(v, child(p, k.str())));
     }
     x.env = std::move(env);
   }},
  {"cwd", [](reader& r, const node& n, const str& p,
             test_spec& x) { x.cwd = no_nul(r, n, p, r.string(n, p)); }},
  {"max_output",
   [](reader& r, const node& n, const str& p, test_spec& x) {
     auto v = r.byte_size(n, p);
     if (auto why = check_max_output(v); !why.empty())
       r.fail(n, p, why);
     x.max_output = v;
   }},
};

std::vector<test_spec> read_tests(reader& r, const node& n, const str& p) {
  std::vector<test_spec> out;
  std::map<std::string, std::string> seen; // test_id -> where
  auto& a = r.array(n, p, true);
  for (size_t i = 0; i < a.size(); ++i) {
    auto ip = p + "[" + std::to_string(i) + "]";
    test_spec spec;
    // Strict: a mistyped key would otherwise turn a real test into a
    // simulated one that always passes.
    read_fields_strict(
      r, r.table(a[i], ip), ip, spec, test_spec_fields,
      {{"depends_on", "not supported: alb does not order tests; submit "
                      "the dependent tests after the others have passed"}});
    if (spec.requirements.test_id.empty())
      r.fail(a[i], ip, "missing 'test_id'");
    if (spec.command.empty() && !spec.simulate)
      r.fail(a[i], ip,
             "no 'command' (say simulate = true for a simulated test)");
    if (!spec.command.empty() && spec.simulate)
      r.fail(a[i], ip, "both 'command' and simulate = true");
    auto [it, fresh]
      = seen.emplace(spec.requirements.test_id, r.where(a[i].source()));
    if (!fresh)
      r.fail(a[i], ip,
             "duplicate test_id '" + spec.requirements.test_id
               + "' (first defined at " + it->second + ")");
    out.push_back(std::move(spec));
  }
  return out;
}

/// Called after a named entry was read (e.g. to record where it came from).
template<class T>
struct after_entry {
  using type = void (*)(reader&, const node&, T&);
};

/// Reads a table of named entries, each overlaying `m[name]`.
template<class T, size_t N>
void read_named(reader& r, const node& n, const str& p,
                std::map<std::string, T>& m, const field<T> (&fields)[N],
                typename after_entry<T>::type after = nullptr) {
  for (auto&& [k, v] : r.table(n, p)) {
    auto ep = child(p, k.str());
    if (k.str().empty())
      r.fail(v, ep, "entry names must not be empty");
    auto& entry = m[std::string{k.str()}];
    read_fields(r, r.table(v, ep), ep, entry, fields);
    if (after)
      after(r, v, entry);
  }
}

void read_scheduler(reader& r, const node& n, const str& p,
                    scheduler_config& x) {
  auto& t = r.table(n, p);
  read_fields(r, t, p, x, scheduler_fields);
  auto problem = x.validate();
  if (problem.empty())
    return;
  // validate() names the key as "scheduler.<key>: ..."; point at that key
  // when this file set it.
  auto dot = problem.find('.');
  auto colon = problem.find(':');
  if (dot != std::string::npos && colon != std::string::npos && dot < colon)
    if (auto v = t.get(problem.substr(dot + 1, colon - dot - 1)))
      throw config_error(r.where(v->source()) + ": " + problem);
  throw config_error(r.file() + ": " + problem);
}

const field<config> top_fields[] = {
  {"test_configurations",
   [](reader& r, const node& n, const str& p, config& x) {
     read_named(r, n, p, x.test_configurations, test_configuration_fields);
   }},
  {"worker_profiles",
   [](reader& r, const node& n, const str& p, config& x) {
     read_named(r, n, p, x.worker_profiles, worker_profile_fields);
   }},
  {"test_profiles",
   [](reader& r, const node& n, const str& p, config& x) {
     read_named(r, n, p, x.test_profiles, test_profile_fields);
   }},
  {"scenario_configurations",
   [](reader& r, const node& n, const str& p, config& x) {
     read_named(r, n, p, x.scenario_configurations, scenario_fields,
                [](reader& r, const node& n, scenario_configuration& s) {
                  s.origin = r.where(n.source());
                });
   }},
  {"scheduler", [](reader& r, const node& n, const str& p,
                   config& x) { read_scheduler(r, n, p, x.scheduler); }},
  {"metrics",
   [](reader& r, const node& n, const str& p, config& x) {
     read_fields(r, r.table(n, p), p, x.metrics, metrics_fields);
   }},
  {"cluster",
   [](reader& r, const node& n, const str& p, config& x) {
     read_fields(r, r.table(n, p), p, x.cluster, cluster_fields);
   }},
  {"tls",
   [](reader& r, const node& n, const str& p, config& x) {
     read_fields(r, r.table(n, p), p, x.tls, tls_fields);
   }},
  {"node", [](reader& r, const node& n, const str& p,
              config& x) { read_node_section(r, n, p, x.node); }},
  {"tests", [](reader& r, const node& n, const str& p,
               config& x) { x.tests = read_tests(r, n, p); }},
  {"log_level", [](reader& r, const node& n, const str& p,
                   config& x) { x.log_level = read_log_level(r, n, p); }},
  {"max_workers",
   [](reader& r, const node& n, const str& p, config& x) {
     x.max_workers = r.integer(n, p, 0, int_max);
   }},
  {"default_duration",
   [](reader& r, const node& n, const str& p, config& x) {
     x.default_duration = r.number(n, p, bound::positive);
   }},
};

} // namespace

void read_document(reader& r, const toml::table& doc, config& cfg) {
  read_fields(r, doc, "", cfg, top_fields);
}

} // namespace alb::config_detail
