// Scenarios and the checks across sections: action names, worker counts of
// events, the cross-reference validation and the questions commands ask of a
// loaded configuration.

#include "runtime/config.hpp"
#include "runtime/config/text.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace alb {

using config_detail::join;
using config_detail::keys_of;

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
