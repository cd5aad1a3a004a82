// Static checks of the shipped Grafana dashboards and provisioning: each
// dashboard is valid JSON at Grafana 13's schema (42), panel ids are unique,
// every panel queries through the `datasource` variable, and every query
// names only alb metric families that the metrics layer really exports.

#define BOOST_TEST_MODULE dashboards
#include <boost/test/unit_test.hpp>

#include "metrics/prometheus_observer.hpp"
#include "metrics/registry.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const fs::path source_dir{ALB_SOURCE_DIR};

std::string read(const fs::path& p) {
  std::ifstream in{p};
  BOOST_REQUIRE_MESSAGE(in, "cannot open " << p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<fs::path> dashboard_files() {
  std::vector<fs::path> result;
  for (auto& entry : fs::directory_iterator{source_dir / "grafana/dashboards"})
    if (entry.path().extension() == ".json")
      result.push_back(entry.path());
  std::sort(result.begin(), result.end());
  return result;
}

json load(const fs::path& p) {
  try {
    return json::parse(read(p));
  } catch (const json::parse_error& e) {
    BOOST_FAIL(p.filename().string() << " is not valid JSON: " << e.what());
  }
  return {};
}

/// Every panel, including those nested in collapsed rows.
void collect_panels(const json& panels, std::vector<json>& out) {
  for (auto& p : panels) {
    out.push_back(p);
    if (p.contains("panels"))
      collect_panels(p["panels"], out);
  }
}

std::vector<json> panels_of(const json& dash) {
  std::vector<json> result;
  if (dash.contains("panels"))
    collect_panels(dash["panels"], result);
  return result;
}

bool uses_datasource_variable(const json& ds) {
  if (ds.is_string())
    return ds == "$datasource" || ds == "${datasource}";
  return ds.is_object() && ds.value("type", "") == "prometheus"
         && (ds.value("uid", "") == "${datasource}"
             || ds.value("uid", "") == "$datasource");
}

/// Sample lines of a real scrape (a joined worker makes the per-worker
/// families appear).
std::vector<std::string> exported_lines() {
  alb::metrics::registry reg;
  alb::metrics::prometheus_observer obs{reg};
  obs.on_worker_joined(0, "w");
  std::vector<std::string> result;
  std::istringstream in{reg.scrape()};
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && line[0] != '#')
      result.push_back(line);
  return result;
}

/// Metric family names the registry exports (histograms with their
/// _bucket/_sum/_count series), from a real scrape.
std::set<std::string> exported_names() {
  std::set<std::string> result;
  for (auto& line : exported_lines())
    result.insert(line.substr(0, line.find_first_of("{ ")));
  return result;
}

/// Metric names a query refers to: alb's own and the standard process ones.
const std::regex metric_name{R"(\b((?:alb|process)_[a-z0-9_]+))"};

} // namespace

BOOST_AUTO_TEST_CASE(there_are_the_four_dashboards) {
  std::set<std::string> uids;
  for (auto& p : dashboard_files())
    uids.insert(load(p).value("uid", ""));
  for (auto uid :
       {"alb-overview", "alb-workers", "alb-scheduling", "alb-cluster"})
    BOOST_TEST(uids.count(uid) == 1u, "missing dashboard " << uid);
}

BOOST_AUTO_TEST_CASE(dashboards_are_loadable_by_grafana) {
  std::set<std::string> uids;
  for (auto& p : dashboard_files()) {
    BOOST_TEST_CONTEXT(p.filename().string()) {
      auto d = load(p);
      BOOST_TEST(d.is_object());
      // Grafana 13's schema (tests/dashboards_ts checks the keys against it).
      BOOST_TEST(d.value("schemaVersion", 0) >= 42);
      BOOST_TEST(!d.contains("style")); // a key Grafana no longer has
      BOOST_TEST(!d.value("title", "").empty());
      auto uid = d.value("uid", "");
      BOOST_TEST(!uid.empty());
      BOOST_TEST(uid.size() <= 40u); // Grafana's limit
      BOOST_TEST(uids.insert(uid).second, "duplicate uid " << uid);
      // A provisioned dashboard must not carry a database id.
      BOOST_TEST((!d.contains("id") || d["id"].is_null()));
      BOOST_TEST(d["panels"].is_array());
      BOOST_TEST(!d["panels"].empty());
    }
  }
}

BOOST_AUTO_TEST_CASE(panel_ids_are_unique_and_grid_positions_valid) {
  for (auto& p : dashboard_files()) {
    BOOST_TEST_CONTEXT(p.filename().string()) {
      std::set<int> ids;
      for (auto& panel : panels_of(load(p))) {
        BOOST_REQUIRE(panel.contains("id"));
        int id = panel["id"];
        BOOST_TEST(ids.insert(id).second, "duplicate panel id " << id);
        auto& g = panel["gridPos"];
        BOOST_TEST(g["w"].get<int>() >= 1);
        BOOST_TEST(g["x"].get<int>() + g["w"].get<int>() <= 24);
        BOOST_TEST(g["h"].get<int>() >= 1);
        BOOST_TEST(!panel.value("title", "").empty());
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(every_dashboard_has_a_prometheus_datasource_variable) {
  for (auto& p : dashboard_files()) {
    BOOST_TEST_CONTEXT(p.filename().string()) {
      auto d = load(p);
      bool found = false;
      for (auto& v : d["templating"]["list"])
        if (v.value("name", "") == "datasource") {
          found = true;
          BOOST_TEST(v.value("type", "") == "datasource");
          BOOST_TEST(v.value("query", "") == "prometheus");
        }
      BOOST_TEST(found, "no datasource variable");
      // Other query variables must also go through it.
      for (auto& v : d["templating"]["list"])
        if (v.value("type", "") == "query")
          BOOST_TEST(uses_datasource_variable(v["datasource"]),
                     "variable " << v.value("name", ""));
    }
  }
}

BOOST_AUTO_TEST_CASE(every_panel_target_uses_the_variable_and_has_a_query) {
  for (auto& p : dashboard_files()) {
    auto d = load(p);
    std::size_t queries = 0;
    for (auto& panel : panels_of(d)) {
      if (panel.value("type", "") == "row")
        continue;
      BOOST_TEST_CONTEXT(p.filename().string()
                         << " panel " << panel.value("title", "")) {
        BOOST_TEST(uses_datasource_variable(panel["datasource"]));
        BOOST_REQUIRE(panel.contains("targets"));
        BOOST_TEST(!panel["targets"].empty());
        std::set<std::string> refs;
        for (auto& t : panel["targets"]) {
          BOOST_TEST(uses_datasource_variable(t["datasource"]));
          BOOST_TEST(refs.insert(t.value("refId", "")).second,
                     "duplicate refId");
          auto expr = t.value("expr", "");
          BOOST_TEST(expr.find_first_not_of(" \t\n") != std::string::npos,
                     "empty expr");
          ++queries;
        }
      }
    }
    BOOST_TEST(queries > 0u);
  }
}

BOOST_AUTO_TEST_CASE(queries_name_only_exported_metrics) {
  auto names = exported_names();
  // Sanity: the scrape really listed the families.
  BOOST_REQUIRE(names.count("alb_tests_completed_total") == 1);
  BOOST_REQUIRE(names.count("alb_worker_load_ratio") == 1);
  std::set<std::string> used;
  for (auto& p : dashboard_files()) {
    for (auto& panel : panels_of(load(p))) {
      if (!panel.contains("targets"))
        continue;
      for (auto& t : panel["targets"]) {
        auto expr = t.value("expr", "");
        for (std::sregex_iterator i{expr.begin(), expr.end(), metric_name}, e;
             i != e; ++i) {
          auto name = (*i)[1].str();
          used.insert(name);
          BOOST_TEST(names.count(name) == 1u,
                     p.filename().string()
                       << " panel '" << panel.value("title", "")
                       << "' queries unknown " << name);
        }
      }
    }
  }
  // The dashboards cover the core families.
  for (auto n :
       {"alb_tests_completed_total", "alb_queue_depth",
        "alb_assignment_wait_seconds_bucket", "alb_worker_load_ratio",
        "alb_adaptive_choices_total", "alb_tests_migrated_total",
        "alb_tests_stolen_total", "alb_scheduling_decision_seconds_bucket",
        "alb_nodes_connected", "alb_workers_joined_total",
        "alb_tests_cancelled_total", "process_resident_memory_bytes",
        "process_cpu_seconds_total"})
    BOOST_TEST(used.count(n) == 1u, "no panel shows " << n);
}

BOOST_AUTO_TEST_CASE(label_matchers_select_exported_label_values) {
  // `name{..., label="value"}` in a query must match a series the registry
  // really has: a matcher on a label value that is not exported (say
  // state="registered") returns nothing, or worse, the wrong thing.
  auto lines = exported_lines();
  const std::regex selector{R"(\b((?:alb|process)_[a-z0-9_]+)\{([^}]*)\})"};
  const std::regex equality{R"re((\w+)="([^"]*)")re"};
  std::size_t checked = 0;
  for (auto& p : dashboard_files()) {
    for (auto& panel : panels_of(load(p))) {
      for (auto& t : panel.value("targets", json::array())) {
        auto expr = t.value("expr", "");
        for (std::sregex_iterator i{expr.begin(), expr.end(), selector}, e;
             i != e; ++i) {
          auto name = (*i)[1].str();
          auto inner = (*i)[2].str();
          for (std::sregex_iterator j{inner.begin(), inner.end(), equality}, f;
               j != f; ++j) {
            auto matcher = (*j)[1].str() + "=\"" + (*j)[2].str() + "\"";
            bool found = std::any_of(
              lines.begin(), lines.end(), [&](const std::string& l) {
                return l.compare(0, name.size() + 1, name + "{") == 0
                       && l.find(matcher) != std::string::npos;
              });
            ++checked;
            BOOST_TEST(found, p.filename().string()
                                << " panel '" << panel.value("title", "")
                                << "' selects " << name << "{" << matcher
                                << "}, which is not exported");
          }
        }
      }
    }
  }
  BOOST_TEST(checked >= 3u);
}

BOOST_AUTO_TEST_CASE(provisioning_points_at_the_dashboards) {
  auto provider = read(source_dir / "grafana/provisioning/dashboards/alb.yml");
  BOOST_TEST(provider.find("type: file") != std::string::npos);
  auto compose = read(source_dir / "grafana/docker-compose.yml");
  // The provider's path must be where compose mounts grafana/dashboards.
  std::smatch m;
  BOOST_REQUIRE(std::regex_search(provider, m, std::regex{R"(path:\s*(\S+))"}));
  BOOST_TEST(compose.find("./dashboards:" + m[1].str()) != std::string::npos);
  auto ds
    = read(source_dir / "grafana/provisioning/datasources/prometheus.yml");
  BOOST_TEST(ds.find("type: prometheus") != std::string::npos);
  BOOST_TEST(compose.find("../configs/prometheus.yml:") != std::string::npos);
}
