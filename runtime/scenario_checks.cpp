#include "runtime/scenario_checks.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include <nlohmann/json.hpp>

#include "runtime/run_stats.hpp"

namespace alb {

const char* to_string(comparison c) {
  switch (c) {
    case comparison::less:
      return "<";
    case comparison::less_equal:
      return "<=";
    case comparison::greater:
      return ">";
    case comparison::greater_equal:
      return ">=";
    case comparison::equal:
      return "==";
  }
  return "?";
}

std::optional<comparison> parse_comparison(std::string_view s) {
  if (s == "<")
    return comparison::less;
  if (s == "<=")
    return comparison::less_equal;
  if (s == ">")
    return comparison::greater;
  if (s == ">=")
    return comparison::greater_equal;
  if (s == "==")
    return comparison::equal;
  return std::nullopt;
}

namespace {

std::string number_text(double x) {
  std::ostringstream os;
  os.precision(4);
  os << x;
  return os.str();
}

std::optional<double> number_at(const nlohmann::json& j, const char* key) {
  auto i = j.find(key);
  if (i == j.end() || !i->is_number())
    return std::nullopt;
  return i->get<double>();
}

// Time (seconds) of the first burst of extra tests, from the configuration's
// events; none without one.
std::optional<double> first_burst(const nlohmann::json& doc) {
  auto c = doc.find("configuration");
  if (c == doc.end() || !c->contains("events"))
    return std::nullopt;
  for (auto& ev : c->at("events"))
    if (ev.value("action", "") == "submit_burst")
      return ev.value("at_seconds", 0.0);
  return std::nullopt;
}

std::optional<double> queue_figure(const nlohmann::json& doc, int which) {
  auto ts = doc.find("time_series");
  if (ts == doc.end() || !ts->contains("queue_depth"))
    return std::nullopt;
  auto& q = ts->at("queue_depth");
  if (q.empty())
    return 0.0;
  if (which == 0) // final
    return q.back().at(1).get<double>();
  auto burst = first_burst(doc);
  if (!burst)
    return std::nullopt;
  // A sample is the state at the end of its bucket; the bucket holding the
  // burst counts as after it.
  double width
    = q.size() > 1 ? q[1].at(0).get<double>() - q[0].at(0).get<double>() : 0;
  double best = 0;
  for (auto& p : q) {
    auto t = p.at(0).get<double>();
    bool after = t + width > *burst + 1e-9;
    if ((which == 1) == after)
      best = std::max(best, p.at(1).get<double>());
  }
  return best;
}

using derive_fn = std::optional<double> (*)(const nlohmann::json&);

struct derived {
  const char* name;
  const char* meaning;
  derive_fn fn;
};

const derived derived_table[] = {
  {"lost_tests",
   "tests neither completed, failed nor cancelled, plus tests still pending",
   [](const nlohmann::json& doc) -> std::optional<double> {
     auto& m = doc.at("metrics");
     auto total = number_at(m, "total_tests");
     if (!total)
       return std::nullopt;
     auto ended = number_at(m, "completed_tests").value_or(0)
                  + number_at(m, "failed_tests").value_or(0)
                  + number_at(m, "cancelled_tests").value_or(0);
     return std::fabs(*total - ended)
            + number_at(m, "pending_tests").value_or(0);
   }},
  {"peak_reservation",
   "highest fraction of any worker's memory or accelerators reserved",
   [](const nlohmann::json& doc) -> std::optional<double> {
     auto& m = doc.at("metrics");
     auto mem = number_at(m, "max_memory_reservation");
     auto acc = number_at(m, "max_accelerator_reservation");
     if (!mem || !acc)
       return std::nullopt;
     return std::max(*mem, *acc);
   }},
  {"assignment_cv",
   "worker_assignment_stddev / worker_assignment_mean: spread of tests "
   "placed per worker relative to the mean",
   [](const nlohmann::json& doc) -> std::optional<double> {
     auto& m = doc.at("metrics");
     auto sd = number_at(m, "worker_assignment_stddev");
     auto mean = number_at(m, "worker_assignment_mean");
     if (!sd || !mean)
       return std::nullopt;
     return *mean > 0 ? *sd / *mean : 0;
   }},
  {"assignment_range_ratio", "worker_assignment_range / worker_assignment_mean",
   [](const nlohmann::json& doc) -> std::optional<double> {
     auto& m = doc.at("metrics");
     auto range = number_at(m, "worker_assignment_range");
     auto mean = number_at(m, "worker_assignment_mean");
     if (!range || !mean)
       return std::nullopt;
     return *mean > 0 ? *range / *mean : 0;
   }},
  {"moved_tests",
   "queued tests migrated off busy workers plus stolen by idle "
   "ones (migrated_tests + stolen_tests)",
   [](const nlohmann::json& doc) -> std::optional<double> {
     auto& m = doc.at("metrics");
     auto a = number_at(m, "migrated_tests");
     auto b = number_at(m, "stolen_tests");
     if (!a || !b)
       return std::nullopt;
     return *a + *b;
   }},
  {"queue_depth_final", "queue depth of the last time-series sample",
   [](const nlohmann::json& doc) { return queue_figure(doc, 0); }},
  {"queue_depth_peak_after_burst",
   "deepest queue from the first submit_burst event on",
   [](const nlohmann::json& doc) { return queue_figure(doc, 1); }},
  {"queue_depth_peak_before_burst",
   "deepest queue before the first submit_burst event",
   [](const nlohmann::json& doc) { return queue_figure(doc, 2); }},
};

const derived* find_derived(const std::string& name) {
  for (auto& d : derived_table)
    if (name == d.name)
      return &d;
  return nullptr;
}

// Keys of `metrics` a run writes (from an empty run's serialization, so
// the list cannot drift from run_metrics).
const nlohmann::json& metric_keys() {
  static const nlohmann::json keys = [] {
    nlohmann::json j = run_metrics{};
    return j;
  }();
  return keys;
}

std::vector<std::string> split_dots(const std::string& s) {
  std::vector<std::string> out;
  std::string part;
  std::istringstream in{s};
  while (std::getline(in, part, '.'))
    out.push_back(part);
  return out;
}

} // namespace

const std::vector<std::pair<std::string, std::string>>& derived_metrics() {
  static const auto list = [] {
    std::vector<std::pair<std::string, std::string>> out;
    for (auto& d : derived_table)
      out.emplace_back(d.name, d.meaning);
    return out;
  }();
  return list;
}

std::string metric_problem(const std::string& metric) {
  if (find_derived(metric))
    return {};
  // A path into an empty run's metrics: every key and nested key exists.
  const nlohmann::json* at = &metric_keys();
  for (auto& part : split_dots(metric)) {
    if (!at->is_object() || !at->contains(part)) {
      std::string names;
      for (auto& d : derived_table)
        names += std::string{names.empty() ? "" : ", "} + d.name;
      return "unknown metric '" + metric
             + "' (expected a key of the result's metrics, e.g. "
               "p99_latency or latency_by_priority.1.p99_latency, or one "
               "of "
             + names + ")";
    }
    at = &at->at(part);
  }
  if (!at->is_number())
    return "metric '" + metric + "' is not a number";
  return {};
}

std::optional<double> measure(const nlohmann::json& doc,
                              const std::string& metric) {
  if (!doc.contains("metrics"))
    return std::nullopt;
  if (auto d = find_derived(metric))
    return d->fn(doc);
  const nlohmann::json* at = &doc.at("metrics");
  for (auto& part : split_dots(metric)) {
    if (!at->is_object() || !at->contains(part))
      return std::nullopt;
    at = &at->at(part);
  }
  if (!at->is_number())
    return std::nullopt;
  return at->get<double>();
}

std::string check_outcome::detail() const {
  auto& e = expectation;
  std::string s = e.metric + " = "
                  + (found ? number_text(measured) : std::string{"missing"})
                  + " (" + to_string(e.op) + " ";
  if (e.than.empty())
    s += number_text(bound);
  else
    s += (e.threshold == 1 ? "" : number_text(e.threshold) + " x ") + e.than
         + " = " + number_text(bound);
  return s + ")";
}

std::vector<check_outcome>
evaluate(const std::vector<scenario_expectation>& expectations,
         const nlohmann::json& doc) {
  std::vector<check_outcome> out;
  for (auto& e : expectations) {
    check_outcome c;
    c.expectation = e;
    auto v = measure(doc, e.metric);
    std::optional<double> bound = e.threshold;
    if (!e.than.empty()) {
      auto other = measure(doc, e.than);
      bound
        = other ? std::optional<double>{e.threshold * *other} : std::nullopt;
    }
    c.found = v.has_value() && bound.has_value();
    c.measured = v.value_or(0);
    c.bound = bound.value_or(0);
    if (c.found) {
      auto x = c.measured;
      auto b = c.bound;
      switch (e.op) {
        case comparison::less:
          c.passed = x < b;
          break;
        case comparison::less_equal:
          c.passed = x <= b + 1e-9;
          break;
        case comparison::greater:
          c.passed = x > b;
          break;
        case comparison::greater_equal:
          c.passed = x + 1e-9 >= b;
          break;
        case comparison::equal:
          c.passed = std::fabs(x - b) <= 1e-9;
          break;
      }
    }
    out.push_back(std::move(c));
  }
  return out;
}

const std::vector<scenario_expectation>& common_expectations() {
  static const std::vector<scenario_expectation> list = {
    {"no test lost", "lost_tests", comparison::equal, 0, ""},
    {"no worker oversubscribed", "peak_reservation", comparison::less_equal, 1,
     ""},
  };
  return list;
}

} // namespace alb
