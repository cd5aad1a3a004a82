#include "runtime/config.hpp"

#include <nlohmann/json.hpp>
#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <tuple>

namespace alb {

// -- errors -------------------------------------------------------------------

std::string one_line(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7f) {
      static constexpr char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[u >> 4];
      out += hex[u & 0xf];
    } else {
      out += c;
    }
  }
  return out;
}

config_error::config_error(const std::string& what)
  : std::runtime_error(one_line(what)) {
  // nop
}

// -- scenario actions ---------------------------------------------------------

namespace {

constexpr std::pair<scenario_action, const char*> action_names[] = {
  {scenario_action::remove_workers, "remove_workers"},
  {scenario_action::add_workers, "add_workers"},
  {scenario_action::submit_burst, "submit_burst"},
  {scenario_action::kill_workers, "kill_workers"},
};

} // namespace

const char* to_string(scenario_action x) {
  for (auto& [a, name] : action_names)
    if (a == x)
      return name;
  return "?";
}

std::optional<scenario_action> parse_scenario_action(std::string_view name) {
  for (auto& [a, n] : action_names)
    if (name == n)
      return a;
  return std::nullopt;
}

int event_worker_count(const scenario_event& ev, int initial_workers) {
  if (ev.action == scenario_action::submit_burst)
    return 0;
  if (ev.count > 0)
    return ev.count;
  // Rounding up keeps a small fraction of a small pool from doing nothing.
  return std::max(
    1, static_cast<int>(std::ceil(ev.fraction * initial_workers - 1e-9)));
}

// -- did you mean -------------------------------------------------------------

namespace {

std::string lower(std::string_view s) {
  std::string out{s};
  for (auto& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j)
    prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t subst = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, subst});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string join(const std::vector<std::string>& xs) {
  std::string out;
  for (auto& x : xs) {
    if (!out.empty())
      out += ", ";
    out += x;
  }
  return out;
}

template<class Map>
std::vector<std::string> keys_of(const Map& m) {
  std::vector<std::string> out;
  for (auto& kv : m)
    out.push_back(kv.first);
  return out;
}

} // namespace

std::string did_you_mean(std::string_view word,
                         const std::vector<std::string>& candidates) {
  auto w = lower(word);
  // Short words tolerate one typo, longer ones two; anything further apart
  // is more likely a different word than a misspelling.
  size_t limit = w.size() < 5 ? 1 : 2;
  std::string best;
  size_t best_distance = limit + 1;
  for (auto& c : candidates) {
    auto d = edit_distance(w, lower(c));
    if (d < best_distance && d < std::max<size_t>(w.size(), 1)) {
      best = c;
      best_distance = d;
    }
  }
  return best;
}

// -- reading values -----------------------------------------------------------

namespace {

std::string type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    default:
      return "nothing";
  }
}

std::string num(double x) {
  std::ostringstream out;
  out << x;
  return out.str();
}

/// How a number is bounded.
enum class bound {
  /// > 0.
  positive,
  /// >= 0.
  non_negative,
  /// (0, 1].
  unit_open,
  /// [0, 1].
  unit,
  /// [0, 100].
  percent,
};

/// Reads typed, range-checked values out of a parsed document and reports
/// problems with the location of the offending node.
class reader {
public:
  explicit reader(std::string file) : file_(std::move(file)) {
    // nop
  }

  /// Returns the warnings in file order (tables iterate sorted by key).
  std::vector<std::string> warnings() const {
    auto ws = warnings_;
    std::stable_sort(ws.begin(), ws.end(), [](auto& a, auto& b) {
      return std::tie(a.first.line, a.first.column)
             < std::tie(b.first.line, b.first.column);
    });
    std::vector<std::string> out;
    for (auto& w : ws)
      out.push_back(std::move(w.second));
    return out;
  }

  const std::string& file() const { return file_; }

  std::string where(const toml::source_region& r) const {
    // Nodes converted from JSON carry no position (line 0).
    if (r.begin.line == 0)
      return file_;
    return file_ + ":" + std::to_string(r.begin.line) + ":"
           + std::to_string(r.begin.column);
  }

  [[noreturn]] void fail(const toml::node& n, const std::string& path,
                         const std::string& what) const {
    throw config_error(where(n.source()) + ": " + path + ": " + what);
  }

  void unknown_key(const toml::key& k, const std::string& parent,
                   const std::vector<std::string>& known) {
    std::string msg = where(k.source()) + ": unknown key '"
                      + std::string{k.str()} + "' "
                      + (parent.empty() ? "at top level" : "in " + parent);
    if (auto guess = did_you_mean(k.str(), known); !guess.empty())
      msg += " (did you mean '" + guess + "'?)";
    warnings_.emplace_back(k.source().begin, one_line(msg + "; ignored"));
  }

  int64_t integer(const toml::node& n, const std::string& path) const {
    if (auto v = n.as_integer())
      return v->get();
    fail(n, path, "expected an integer, got " + type_name(n));
  }

  int integer(const toml::node& n, const std::string& path, int64_t lo,
              int64_t hi) const {
    auto x = integer(n, path);
    if (x < lo || x > hi) {
      if (hi == std::numeric_limits<int>::max())
        fail(n, path,
             "must be at least " + std::to_string(lo) + ", got "
               + std::to_string(x));
      fail(n, path,
           "must be between " + std::to_string(lo) + " and "
             + std::to_string(hi) + ", got " + std::to_string(x));
    }
    return static_cast<int>(x);
  }

  double number(const toml::node& n, const std::string& path) const {
    double x;
    if (auto i = n.as_integer())
      x = static_cast<double>(i->get());
    else if (auto f = n.as_floating_point())
      x = f->get();
    else
      fail(n, path, "expected a number, got " + type_name(n));
    if (!std::isfinite(x))
      fail(n, path, "must be a finite number, got " + num(x));
    return x;
  }

  double number(const toml::node& n, const std::string& path, bound b) const {
    auto x = number(n, path);
    switch (b) {
      case bound::positive:
        if (!(x > 0))
          fail(n, path, "must be positive, got " + num(x));
        break;
      case bound::non_negative:
        if (x < 0)
          fail(n, path, "must not be negative, got " + num(x));
        break;
      case bound::unit_open:
        if (!(x > 0 && x <= 1))
          fail(n, path, "must be greater than 0 and at most 1, got " + num(x));
        break;
      case bound::unit:
        if (x < 0 || x > 1)
          fail(n, path, "must be between 0 and 1, got " + num(x));
        break;
      case bound::percent:
        if (x < 0 || x > 100)
          fail(n, path, "must be between 0 and 100, got " + num(x));
        break;
    }
    return x;
  }

  std::string string(const toml::node& n, const std::string& path) const {
    if (auto s = n.as_string())
      return s->get();
    fail(n, path, "expected a string, got " + type_name(n));
  }

  std::string nonempty_string(const toml::node& n,
                              const std::string& path) const {
    auto s = string(n, path);
    if (s.empty())
      fail(n, path, "must not be empty");
    return s;
  }

  bool boolean(const toml::node& n, const std::string& path) const {
    if (auto b = n.as_boolean())
      return b->get();
    fail(n, path, "expected a boolean, got " + type_name(n));
  }

  const toml::table& table(const toml::node& n, const std::string& path) const {
    if (auto t = n.as_table())
      return *t;
    fail(n, path, "expected a table, got " + type_name(n));
  }

  const toml::array& array(const toml::node& n, const std::string& path,
                           bool allow_empty) const {
    auto a = n.as_array();
    if (!a)
      fail(n, path, "expected an array, got " + type_name(n));
    if (!allow_empty && a->empty())
      fail(n, path, "must not be empty");
    return *a;
  }

  std::vector<double> numbers(const toml::node& n, const std::string& path,
                              bound b) const {
    std::vector<double> out;
    auto& a = array(n, path, false);
    for (size_t i = 0; i < a.size(); ++i)
      out.push_back(number(a[i], path + "[" + std::to_string(i) + "]", b));
    return out;
  }

  std::vector<int> integers(const toml::node& n, const std::string& path,
                            int64_t lo, int64_t hi) const {
    std::vector<int> out;
    auto& a = array(n, path, false);
    for (size_t i = 0; i < a.size(); ++i)
      out.push_back(
        integer(a[i], path + "[" + std::to_string(i) + "]", lo, hi));
    return out;
  }

  std::vector<std::string> strings(const toml::node& n, const std::string& path,
                                   bool allow_empty) const {
    std::vector<std::string> out;
    auto& a = array(n, path, allow_empty);
    for (size_t i = 0; i < a.size(); ++i)
      out.push_back(
        nonempty_string(a[i], path + "[" + std::to_string(i) + "]"));
    return out;
  }

private:
  std::string file_;
  std::vector<std::pair<toml::source_position, std::string>> warnings_;
};

/// Reads one key of a `T` from a node at a path.
template<class T>
using setter = void (*)(reader&, const toml::node&, const std::string&, T&);

/// A known key of a section and how to read it.
template<class T>
struct field {
  const char* name;
  setter<T> set;
};

std::string child(const std::string& path, std::string_view key) {
  return path.empty() ? std::string{key} : path + "." + std::string{key};
}

/// Reads every key of `t` into `obj`; unknown keys become warnings.
template<class T, size_t N>
void read_fields(reader& r, const toml::table& t, const std::string& path,
                 T& obj, const field<T> (&fields)[N]) {
  for (auto&& [k, v] : t) {
    // A named copy: lambdas cannot capture structured bindings in C++17.
    std::string_view key = k.str();
    auto i = std::find_if(std::begin(fields), std::end(fields),
                          [key](auto& f) { return key == f.name; });
    if (i != std::end(fields)) {
      i->set(r, v, child(path, k.str()), obj);
    } else {
      std::vector<std::string> known;
      for (auto& f : fields)
        known.emplace_back(f.name);
      r.unknown_key(k, path, known);
    }
  }
}

constexpr int64_t int_max = std::numeric_limits<int>::max();

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
  {"speed_hints",
   [](reader& r, const node& n, const str& p, scheduler_config& x) {
     x.speed_hints = r.boolean(n, p);
   }},
  {"rebalance",
   [](reader& r, const node& n, const str& p, scheduler_config& x) {
     x.rebalance = r.boolean(n, p);
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
   }},
  {"expected_duration",
   [](reader& r, const node& n, const str& p, test_spec& x) {
     x.requirements.expected_duration = r.number(n, p, bound::non_negative);
   }},
  {"priority",
   [](reader& r, const node& n, const str& p, test_spec& x) {
     x.requirements.priority = r.integer(n, p, 1, 5);
   }},
  {"timeout",
   [](reader& r, const node& n, const str& p, test_spec& x) {
     x.requirements.timeout = r.number(n, p, bound::non_negative);
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
     x.requirements.wait_limit = r.number(n, p, bound::non_negative);
   }},
  {"command",
   [](reader& r, const node& n, const str& p, test_spec& x) {
     if (n.is_string())
       r.fail(n, p,
              "expected an array of strings (the argv, e.g. [\"pytest\", "
              "\"-q\"]), got a string");
     x.command = r.strings(n, p, false);
   }},
  {"env",
   [](reader& r, const node& n, const str& p, test_spec& x) {
     std::map<std::string, std::string> env;
     for (auto&& [k, v] : r.table(n, p)) {
       if (k.str().empty() || k.str().find('=') != std::string_view::npos)
         r.fail(v, p, "'" + std::string{k.str()} + "' is not a variable name");
       env[std::string{k.str()}] = r.string(v, child(p, k.str()));
     }
     x.env = std::move(env);
   }},
  {"cwd", [](reader& r, const node& n, const str& p,
             test_spec& x) { x.cwd = r.string(n, p); }},
};

std::vector<test_spec> read_tests(reader& r, const node& n, const str& p) {
  std::vector<test_spec> out;
  std::map<std::string, std::string> seen; // test_id -> where
  auto& a = r.array(n, p, true);
  for (size_t i = 0; i < a.size(); ++i) {
    auto ip = p + "[" + std::to_string(i) + "]";
    test_spec spec;
    read_fields(r, r.table(a[i], ip), ip, spec, test_spec_fields);
    if (spec.requirements.test_id.empty())
      r.fail(a[i], ip, "missing 'test_id'");
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
  {"tests", [](reader& r, const node& n, const str& p,
               config& x) { x.tests = read_tests(r, n, p); }},
  {"log_level",
   [](reader& r, const node& n, const str& p, config& x) {
     auto s = r.string(n, p);
     try {
       x.log_level = normalize_log_level(s, p);
     } catch (const config_error&) {
       r.fail(n, p,
              "unknown log level '" + s
                + "' (expected DEBUG, INFO, WARNING or ERROR)");
     }
   }},
  {"max_workers",
   [](reader& r, const node& n, const str& p, config& x) {
     x.max_workers = r.integer(n, p, 0, int_max);
   }},
  {"default_duration",
   [](reader& r, const node& n, const str& p, config& x) {
     x.default_duration = r.number(n, p, bound::positive);
   }},
};

// -- JSON ---------------------------------------------------------------------

// Deeper nesting than any valid config has; the limit keeps the recursive
// conversion below from exhausting the stack on hostile input.
constexpr int max_json_depth = 64;

void json_into_table(toml::table& t, const std::string& key,
                     const nlohmann::json& j, const std::string& path,
                     const std::string& file, int depth);
void json_into_array(toml::array& a, const nlohmann::json& j,
                     const std::string& path, const std::string& file,
                     int depth);

/// Converts `j` and hands the result to `put`.
template<class Put>
void convert_json(const nlohmann::json& j, const std::string& path,
                  const std::string& file, int depth, Put put) {
  auto error = [&](const std::string& what) {
    return config_error(file + ": " + (path.empty() ? "top level" : path) + ": "
                        + what);
  };
  if (depth > max_json_depth)
    throw error("nested more than " + std::to_string(max_json_depth)
                + " levels deep");
  using vt = nlohmann::json::value_t;
  switch (j.type()) {
    case vt::object: {
      toml::table t;
      for (auto& [k, v] : j.items())
        json_into_table(t, k, v, child(path, k), file, depth + 1);
      put(std::move(t));
      break;
    }
    case vt::array: {
      toml::array a;
      for (size_t i = 0; i < j.size(); ++i)
        json_into_array(a, j[i], path + "[" + std::to_string(i) + "]", file,
                        depth + 1);
      put(std::move(a));
      break;
    }
    case vt::string:
      put(j.get<std::string>());
      break;
    case vt::boolean:
      put(j.get<bool>());
      break;
    case vt::number_integer:
      put(j.get<int64_t>());
      break;
    case vt::number_unsigned: {
      auto u = j.get<uint64_t>();
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        throw error("integer " + std::to_string(u) + " is too large");
      put(static_cast<int64_t>(u));
      break;
    }
    case vt::number_float:
      put(j.get<double>());
      break;
    case vt::null:
      throw error("null is not a valid value");
    default:
      throw error("unsupported JSON value");
  }
}

void json_into_table(toml::table& t, const std::string& key,
                     const nlohmann::json& j, const std::string& path,
                     const std::string& file, int depth) {
  convert_json(j, path, file, depth,
               [&](auto&& x) { t.insert_or_assign(key, std::move(x)); });
}

void json_into_array(toml::array& a, const nlohmann::json& j,
                     const std::string& path, const std::string& file,
                     int depth) {
  convert_json(j, path, file, depth,
               [&](auto&& x) { a.push_back(std::move(x)); });
}

std::string line_col_at(std::string_view text, size_t offset) {
  offset = std::min(offset, text.size());
  size_t line = 1, col = 1;
  for (size_t i = 0; i < offset; ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return std::to_string(line) + ":" + std::to_string(col);
}

toml::table parse_json(std::string_view text, const std::string& file) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::parse_error& e) {
    // e.byte counts from 1 and points at the character that broke parsing.
    size_t offset = e.byte > 0 ? e.byte - 1 : 0;
    std::string detail = e.what();
    // Drop nlohmann's "[json.exception...] parse error at line L, column C: "
    // prefix: the position is given in our own format.
    if (auto p = detail.find("column "); p != std::string::npos)
      if (auto q = detail.find(": ", p); q != std::string::npos)
        detail = detail.substr(q + 2);
    throw config_error(file + ":" + line_col_at(text, offset)
                       + ": JSON syntax error at byte " + std::to_string(e.byte)
                       + ": " + detail);
  } catch (const nlohmann::json::exception& e) {
    throw config_error(file + ": invalid JSON: " + e.what());
  }
  if (!j.is_object())
    throw config_error(file + ": top level: expected a JSON object, got "
                       + std::string{j.type_name()});
  toml::table t;
  convert_json(j, "", file, 0, [&](auto&& x) {
    if constexpr (std::is_same_v<std::decay_t<decltype(x)>, toml::table>)
      t = std::move(x);
  });
  return t;
}

// -- files --------------------------------------------------------------------

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size()
         && lower(s.substr(s.size() - suffix.size())) == suffix;
}

config_format detect(std::string_view text, std::string_view name) {
  if (ends_with(name, ".json"))
    return config_format::json;
  if (ends_with(name, ".toml"))
    return config_format::toml;
  // A TOML document cannot start with '{' (no top-level inline table).
  size_t i = 0;
  if (text.substr(0, 3) == "\xEF\xBB\xBF")
    i = 3;
  while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i])))
    ++i;
  return i < text.size() && text[i] == '{' ? config_format::json
                                           : config_format::toml;
}

std::string read_text_file(const std::string& path) {
  namespace fs = std::filesystem;
  if (path.empty())
    throw config_error("config file path is empty");
  std::error_code ec;
  auto st = fs::status(path, ec);
  if (st.type() == fs::file_type::not_found)
    throw config_error(path + ": config file not found");
  if (st.type() == fs::file_type::directory)
    throw config_error(path + ": is a directory, not a config file");
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw config_error(path
                       + ": cannot open config file: " + std::strerror(errno));
  std::ostringstream out;
  out << in.rdbuf();
  if (in.bad())
    throw config_error(path + ": cannot read config file");
  return out.str();
}

} // namespace

// -- built-in defaults --------------------------------------------------------

namespace {

test_configuration make_size(int workers, int tests, double duration,
                             std::string description) {
  test_configuration x;
  x.workers = workers;
  x.tests = tests;
  x.duration = duration;
  x.description = std::move(description);
  return x;
}

} // namespace

config default_config() {
  config cfg;
  auto& sizes = cfg.test_configurations;
  // small and medium are the reference's; the scenario_* sizes keep every
  // shipped scenario well under a minute.
  sizes["small"]
    = make_size(5, 20, 10, "Small-scale test with few workers and tests");
  sizes["medium"] = make_size(
    20, 100, 30, "Medium-scale test with moderate workers and tests");
  sizes["large"]
    = make_size(50, 500, 60, "Large-scale test with many workers and tests");
  sizes["scenario_small"]
    = make_size(20, 200, 5, "Scenario size: 20 workers, 200 tests over 5 s");
  sizes["scenario_medium"]
    = make_size(30, 500, 8, "Scenario size: 30 workers, 500 tests over 8 s");
  sizes["scenario_large"] = make_size(
    50, 1000, 10, "Scenario size: 50 workers, 1000 tests over 10 s");

  auto& workers = cfg.worker_profiles;
  {
    auto& w = workers["balanced"];
    w.memory_distribution = {4, 8, 16, 32};
    w.cuda_distribution = {0, 1, 2, 4};
    w.description = "Balanced mix of CPU and GPU workers";
  }
  {
    auto& w = workers["cpu_heavy"];
    w.memory_distribution = {8, 16, 32, 64};
    w.cuda_distribution = {0, 0, 0, 1};
    w.description = "Mostly CPU workers with high memory";
  }
  {
    auto& w = workers["gpu_heavy"];
    w.memory_distribution = {16, 32, 64};
    w.cuda_distribution = {1, 2, 4, 8};
    w.description = "GPU servers with several devices each";
  }
  {
    auto& w = workers["heterogeneous"];
    w.memory_distribution = {2, 4, 8, 16, 32, 64, 128};
    w.cuda_distribution = {0, 0, 0, 1, 2, 8};
    w.cores_distribution = {1, 2, 4, 8, 16, 32};
    w.speed_distribution = {0.5, 1, 1, 2, 4};
    w.description = "From small slow machines to large fast GPU servers";
  }
  {
    auto& w = workers["gpu_scarce"];
    w.memory_distribution = {8, 16, 32};
    w.cuda_distribution = {0, 0, 0, 0, 1, 2};
    w.description = "About one worker in three has a GPU";
  }
  {
    auto& w = workers["memory_constrained"];
    w.memory_distribution = {4, 8};
    w.cuda_distribution = {0, 0, 1};
    w.cores_distribution = {2, 4};
    w.description = "Small machines where memory is the bottleneck";
  }
  {
    auto& w = workers["few_slots"];
    w.memory_distribution = {8, 16};
    w.cuda_distribution = {0};
    w.cores_distribution = {1, 2};
    w.description = "CPU workers with one or two test slots each";
  }

  auto& tests = cfg.test_profiles;
  {
    auto& t = tests["balanced"];
    t.memory_requirements = {0.5, 1, 2, 4, 8};
    t.cuda_requirements = {0, 0, 0, 1, 2};
    t.priority_distribution = {1, 2, 2, 3, 3, 3, 4, 4, 5};
    t.description = "Balanced mix of CPU and GPU tests";
  }
  {
    auto& t = tests["quick"];
    t.memory_requirements = {0.5, 1, 2};
    t.cuda_requirements = {0, 0, 0, 1};
    t.duration_distribution = {0.05, 0.1, 0.2};
    t.description = "Short CPU-mostly tests";
  }
  {
    auto& t = tests["memory_intensive"];
    t.memory_requirements = {2, 4, 6, 8};
    t.cuda_requirements = {0};
    t.duration_distribution = {0.2, 0.5, 1.0};
    t.description = "Tests that need a large share of a worker's memory";
  }
  {
    auto& t = tests["gpu_intensive"];
    t.memory_requirements = {1, 2, 4};
    t.cuda_requirements = {0, 0, 1, 1, 2};
    t.duration_distribution = {0.1, 0.3, 0.6};
    t.description = "Most tests need one or two GPUs";
  }
  {
    auto& t = tests["long_tail"];
    t.memory_requirements = {0.5, 1, 2};
    t.cuda_requirements = {0};
    // Drawn uniformly, so repeats set the weights: mostly short tests, a few
    // 60 times longer.
    t.duration_distribution = {0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05,
                               0.1,  0.1,  0.1,  0.1,  0.2,  0.2,  0.5,  3.0};
    t.description = "Mostly short tests with a heavy tail of long ones";
  }
  {
    auto& t = tests["low_priority_long"];
    t.memory_requirements = {0.5, 1, 2};
    t.cuda_requirements = {0};
    t.priority_distribution = {4, 5};
    t.duration_distribution = {0.5, 1.0};
    t.description = "Low-priority tests that hold a slot for a while";
  }
  return cfg;
}

// -- public -------------------------------------------------------------------

void merge_config_string(config& cfg, std::string_view text,
                         std::string_view name, config_format format) {
  std::string file{name};
  if (format == config_format::automatic)
    format = detect(text, name);
  toml::table doc;
  if (format == config_format::json) {
    doc = parse_json(text, file);
  } else {
    try {
      doc = toml::parse(text, file);
    } catch (const toml::parse_error& e) {
      auto& b = e.source().begin;
      throw config_error(file + ":" + std::to_string(b.line) + ":"
                         + std::to_string(b.column) + ": "
                         + std::string{e.description()});
    }
  }
  // Work on a copy so that a bad file leaves `cfg` untouched.
  config next = cfg;
  reader r{file};
  read_fields(r, doc, "", next, top_fields);
  for (auto& w : r.warnings())
    next.warnings.push_back(std::move(w));
  validate(next);
  next.sources.push_back(file);
  cfg = std::move(next);
}

void merge_config_file(config& cfg, const std::string& path) {
  auto text = read_text_file(path);
  merge_config_string(cfg, text, path, config_format::automatic);
}

config load_config(const std::string& path) {
  auto cfg = default_config();
  merge_config_file(cfg, path);
  return cfg;
}

config load_config_from_string(std::string_view text, std::string_view name,
                               config_format format) {
  auto cfg = default_config();
  merge_config_string(cfg, text, name, format);
  return cfg;
}

void validate(const config& cfg) {
  if (auto problem = cfg.scheduler.validate(); !problem.empty())
    throw config_error(problem);
  for (auto& entry : cfg.scenario_configurations) {
    // Not a structured binding: the lambda below captures the name.
    auto& name = entry.first;
    auto& s = entry.second;
    auto where = (s.origin.empty() ? std::string{"built-in"} : s.origin)
                 + ": scenario_configurations." + name + ": ";
    auto check = [&](const char* key, const std::string& value,
                     std::vector<std::string> defined, const char* section) {
      if (std::find(defined.begin(), defined.end(), value) != defined.end())
        return;
      std::string msg = where + "scenario '" + name + "' references " + key
                        + " '" + value + "', which is not defined in "
                        + section;
      if (auto guess = did_you_mean(value, defined); !guess.empty())
        msg += " (did you mean '" + guess + "'?)";
      throw config_error(msg + "; defined: " + join(defined));
    };
    check("test_config", s.test_config, keys_of(cfg.test_configurations),
          "test_configurations");
    check("worker_profile", s.worker_profile, keys_of(cfg.worker_profiles),
          "worker_profiles");
    check("test_profile", s.test_profile, keys_of(cfg.test_profiles),
          "test_profiles");
  }
}

std::string normalize_log_level(std::string_view level,
                                std::string_view source) {
  std::string up{level};
  for (auto& c : up)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (up == "DEBUG" || up == "INFO" || up == "WARNING" || up == "ERROR")
    return up;
  throw config_error(std::string{source} + ": unknown log level '"
                     + std::string{level}
                     + "' (expected DEBUG, INFO, WARNING or ERROR)");
}

env_lookup process_environment() {
  return [](const char* name) -> std::optional<std::string> {
    if (auto v = std::getenv(name))
      return std::string{v};
    return std::nullopt;
  };
}

namespace {

std::optional<std::string> env_value(const env_lookup& env, const char* name) {
  auto v = env(name);
  if (v && v->empty())
    return std::nullopt;
  return v;
}

} // namespace

void apply_environment(config& cfg, const env_lookup& env) {
  if (auto v = env_value(env, "LB_LOG_LEVEL"))
    cfg.log_level = normalize_log_level(*v, "LB_LOG_LEVEL");
  if (auto v = env_value(env, "LB_MAX_WORKERS")) {
    errno = 0;
    char* end = nullptr;
    long long n = std::strtoll(v->c_str(), &end, 10);
    if (end == v->c_str() || *end != '\0' || errno == ERANGE || n < 1
        || n > std::numeric_limits<int>::max())
      throw config_error("LB_MAX_WORKERS: expected a positive integer, got '"
                         + *v + "'");
    cfg.max_workers = static_cast<int>(n);
  }
  if (auto v = env_value(env, "LB_DEFAULT_DURATION")) {
    errno = 0;
    char* end = nullptr;
    double d = std::strtod(v->c_str(), &end);
    if (end == v->c_str() || *end != '\0' || errno == ERANGE
        || !std::isfinite(d) || !(d > 0))
      throw config_error(
        "LB_DEFAULT_DURATION: expected a positive number of seconds, got '" + *v
        + "'");
    cfg.default_duration = d;
  }
}

std::string config_path(const std::string& flag, const env_lookup& env) {
  if (!flag.empty())
    return flag;
  return env_value(env, "LB_CONFIG_PATH").value_or("");
}

std::string shipped_scenarios_path(const env_lookup& env) {
  namespace fs = std::filesystem;
  if (auto v = env_value(env, "ALB_SCENARIOS_PATH"))
    return *v;
  std::vector<fs::path> candidates;
  std::error_code ec;
  auto exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    auto dir = exe.parent_path();
    // Installed layout first, then a build tree inside the source tree
    // (build-x/bin/alb or build-x/tests/<suite>).
    candidates.push_back(dir / "../share/alb/scenarios.toml");
    candidates.push_back(dir / "../configs/scenarios.toml");
    candidates.push_back(dir / "../../configs/scenarios.toml");
  }
#ifdef ALB_SCENARIOS_FILE
  candidates.emplace_back(ALB_SCENARIOS_FILE);
#endif
  for (auto& c : candidates)
    if (fs::is_regular_file(c, ec))
      return fs::weakly_canonical(c, ec).string();
  return {};
}

void merge_shipped_scenarios(config& cfg, const env_lookup& env) {
  auto path = shipped_scenarios_path(env);
  if (path.empty())
    throw config_error("cannot find the shipped scenario file scenarios.toml "
                       "(set ALB_SCENARIOS_PATH to its location)");
  merge_config_file(cfg, path);
}

config load_effective_config(const std::string& flag, const env_lookup& env) {
  auto cfg = default_config();
  merge_shipped_scenarios(cfg, env);
  auto path = config_path(flag, env);
  if (!path.empty()) {
    try {
      merge_config_file(cfg, path);
    } catch (const config_error& e) {
      if (flag.empty())
        throw config_error(std::string{e.what()} + " (from LB_CONFIG_PATH)");
      throw;
    }
  }
  apply_environment(cfg, env);
  return cfg;
}

void check_workers(const config& cfg, int requested, std::string_view what) {
  if (requested < 1)
    throw config_error(std::string{what} + ": needs at least 1 worker, got "
                       + std::to_string(requested));
  if (cfg.max_workers > 0 && requested > cfg.max_workers)
    throw config_error(
      std::string{what} + ": asks for " + std::to_string(requested)
      + " workers, more than the limit of " + std::to_string(cfg.max_workers)
      + " (LB_MAX_WORKERS / max_workers)");
}

int peak_workers(const config& cfg, const scenario_configuration& s) {
  auto tc = cfg.test_configurations.find(s.test_config);
  int initial = tc == cfg.test_configurations.end() ? 0 : tc->second.workers;
  long long current = initial, peak = initial;
  for (auto& ev : s.events) {
    auto n = event_worker_count(ev, initial);
    if (ev.action == scenario_action::add_workers)
      current += n;
    else if (ev.action != scenario_action::submit_burst)
      current -= std::min<long long>(n, current);
    peak = std::max(peak, current);
  }
  return static_cast<int>(
    std::min<long long>(peak, std::numeric_limits<int>::max()));
}

const scenario_configuration& find_scenario(const config& cfg,
                                            const std::string& name) {
  auto i = cfg.scenario_configurations.find(name);
  if (i != cfg.scenario_configurations.end())
    return i->second;
  auto names = keys_of(cfg.scenario_configurations);
  std::string msg = "unknown scenario '" + name + "'";
  if (auto guess = did_you_mean(name, names); !guess.empty())
    msg += " (did you mean '" + guess + "'?)";
  if (names.empty())
    msg += "; no scenarios are defined";
  else
    msg += "; available: " + join(names);
  throw config_error(msg);
}

std::vector<std::pair<std::string, std::string>>
scenario_list(const config& cfg) {
  std::vector<std::pair<std::string, std::string>> out;
  for (auto& [name, s] : cfg.scenario_configurations)
    out.emplace_back(name, s.description);
  return out;
}

} // namespace alb
