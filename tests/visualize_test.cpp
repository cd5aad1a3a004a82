// Tests of `alb visualize` (report/visualize.hpp and bin/cmd_visualize.cpp):
// every chart of every result kind renders as a real PNG and SVG, also for
// empty, one-worker and single-point inputs; bad inputs fail with one error
// naming the file and what is missing, and write nothing.

#define BOOST_TEST_MODULE visualize
#include <boost/test/unit_test.hpp>

#include "report/visualize.hpp"

#include <nlohmann/json.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

namespace fs = std::filesystem;
using namespace alb::report;

namespace {

fs::path sample(const std::string& name) {
  return fs::path(ALB_SOURCE_DIR) / "tests" / "data" / "visualize" / name;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// A fresh directory under the system temp dir, removed afterwards.
struct temp_dir {
  fs::path path;

  temp_dir() {
    std::string tmpl = (fs::temp_directory_path() / "alb_viz_XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr)
      throw std::runtime_error("mkdtemp failed");
    path = tmpl;
  }

  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::uint32_t be32(const std::string& s, std::size_t at) {
  auto b = [&](std::size_t i) {
    return static_cast<std::uint32_t>(static_cast<unsigned char>(s[at + i]));
  };
  return (b(0) << 24) | (b(1) << 16) | (b(2) << 8) | b(3);
}

/// A PNG file: signature, an IHDR with a non-empty size, an IEND at the end,
/// and more than 1 KB (a chart, not an empty canvas).
void check_png(const fs::path& p) {
  BOOST_TEST_CONTEXT(p.string()) {
    BOOST_REQUIRE(fs::is_regular_file(p));
    auto bytes = slurp(p);
    BOOST_TEST(bytes.size() > 1024u);
    BOOST_REQUIRE(bytes.size() > 33u);
    BOOST_TEST((bytes.compare(0, 8, "\x89PNG\r\n\x1a\n", 8) == 0));
    BOOST_TEST(bytes.compare(12, 4, "IHDR") == 0);
    BOOST_TEST(be32(bytes, 16) > 100u); // width
    BOOST_TEST(be32(bytes, 20) > 100u); // height
    BOOST_TEST(bytes.compare(bytes.size() - 8, 4, "IEND") == 0);
  }
}

/// An SVG file: an <svg> root and balanced tags (a small XML well-formedness
/// check: every element opened is closed, in order).
void check_svg(const fs::path& p) {
  BOOST_TEST_CONTEXT(p.string()) {
    BOOST_REQUIRE(fs::is_regular_file(p));
    auto text = slurp(p);
    BOOST_TEST(text.size() > 512u);
    BOOST_TEST(text.find("<svg") != std::string::npos);
    std::vector<std::string> open;
    std::size_t elements = 0;
    bool ok = true;
    std::string problem;
    for (std::size_t i = text.find('<'); i != std::string::npos && ok;
         i = text.find('<', i)) {
      auto skip_to = [&](const char* end) {
        auto e = text.find(end, i);
        ok = e != std::string::npos;
        if (!ok)
          problem = std::string("unterminated ") + end;
        i = ok ? e + std::strlen(end) : text.size();
      };
      if (text.compare(i, 4, "<!--") == 0) {
        skip_to("-->");
        continue;
      }
      if (text.compare(i, 9, "<![CDATA[") == 0) {
        skip_to("]]>");
        continue;
      }
      if (text.compare(i, 2, "<?") == 0) {
        skip_to("?>");
        continue;
      }
      if (text.compare(i, 2, "<!") == 0) {
        skip_to(">");
        continue;
      }
      // Find the end of the tag, skipping quoted attribute values.
      std::size_t j = i + 1;
      char quote = 0;
      for (; j < text.size(); ++j) {
        char c = text[j];
        if (quote) {
          if (c == quote)
            quote = 0;
        } else if (c == '"' || c == '\'') {
          quote = c;
        } else if (c == '>') {
          break;
        }
      }
      if (j >= text.size()) {
        ok = false;
        problem = "unterminated tag";
        break;
      }
      std::string tag = text.substr(i + 1, j - i - 1);
      i = j + 1;
      bool closing = !tag.empty() && tag[0] == '/';
      bool self = !tag.empty() && tag.back() == '/';
      std::string name = tag.substr(closing ? 1 : 0);
      name = name.substr(0, name.find_first_of(" \t\r\n/"));
      if (closing) {
        if (open.empty() || open.back() != name) {
          ok = false;
          problem = "unexpected </" + name + ">";
        } else {
          open.pop_back();
        }
      } else if (!self) {
        open.push_back(name);
        ++elements;
      } else {
        ++elements;
      }
    }
    BOOST_TEST(ok, "SVG is not well formed: " << problem);
    BOOST_TEST(open.empty(), "unclosed SVG elements: " << open.size());
    BOOST_TEST(elements > 5u);
  }
}

visualize_result render(const std::string& file, const fs::path& out,
                        std::optional<result_kind> kind = std::nullopt) {
  visualize_options opts;
  opts.input = sample(file);
  opts.output_dir = out;
  opts.kind = kind;
  opts.stamp = "20261127T221500";
  return visualize(opts);
}

/// Every chart exists as PNG, SVG, script and data, and the index shows them.
void check_charts(const visualize_result& res, result_kind kind,
                  const std::vector<std::string>& names) {
  BOOST_TEST(to_string(res.kind) == to_string(kind));
  std::vector<std::string> got;
  for (const auto& c : res.charts)
    got.push_back(c.name);
  BOOST_TEST(got == names, boost::test_tools::per_element());
  auto index = slurp(res.index_html);
  BOOST_TEST(index.find("<html") != std::string::npos);
  for (const auto& c : res.charts) {
    BOOST_TEST(c.png.filename().string()
               == std::string(to_string(kind)) + "_" + c.name
                    + "_20261127T221500.png");
    check_png(c.png);
    check_svg(c.svg);
    BOOST_TEST(fs::is_regular_file(c.script));
    BOOST_TEST(fs::is_regular_file(c.data));
    BOOST_TEST(index.find("<img src=\"" + c.png.filename().string() + "\"")
               != std::string::npos);
    BOOST_TEST(index.find("href=\"" + c.svg.filename().string() + "\"")
               != std::string::npos);
  }
}

const std::vector<std::string> stress_charts
  = {"summary", "latency", "throughput", "dashboard"};
const std::vector<std::string> spike_charts
  = {"timeline", "correlation", "summary"};
const std::vector<std::string> benchmark_charts
  = {"throughput", "latency", "efficiency", "heatmap", "strategies"};

/// Expects `visualize` to fail with `code` and a message containing every
/// one of `parts`, without creating the output directory.
void expect_failure(visualize_options opts, visualize_ec code,
                    const std::vector<std::string>& parts) {
  temp_dir tmp;
  opts.output_dir = tmp.path / "out";
  try {
    visualize(opts);
    BOOST_FAIL("visualize succeeded on " << opts.input);
  } catch (const visualize_error& e) {
    std::string what = e.what();
    BOOST_TEST_MESSAGE("error: " << what);
    BOOST_TEST(to_string(e.code()) == to_string(code));
    for (const auto& p : parts)
      BOOST_TEST(what.find(p) != std::string::npos,
                 "'" << what << "' does not contain '" << p << "'");
  }
  BOOST_TEST(!fs::exists(opts.output_dir), "charts were written");
}

visualize_options input(const std::string& file,
                        std::optional<result_kind> kind = std::nullopt) {
  visualize_options opts;
  opts.input = sample(file);
  opts.kind = kind;
  return opts;
}

/// Runs a shell command line, returns its exit status; output goes to `log`.
int run(const std::string& cmd, const fs::path& log) {
  int rc = std::system((cmd + " >'" + log.string() + "' 2>&1").c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

std::string alb_command() {
  return std::string("'") + ALB_BINARY + "'";
}

/// One block of a chart's data file (`index N` in its script).
struct dat_block {
  /// The comment after "# index N: ".
  std::string comment;
  /// Whitespace-separated fields of each row.
  std::vector<std::vector<std::string>> rows;
};

/// Splits a chart's data file into its blocks.
std::vector<dat_block> data_blocks(const fs::path& p) {
  std::vector<dat_block> out;
  std::istringstream in(slurp(p));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("# index ", 0) == 0) {
      out.emplace_back();
      out.back().comment = line.substr(line.find(": ") + 2);
    } else if (!line.empty() && line[0] != '#' && !out.empty()) {
      std::istringstream fields(line);
      std::vector<std::string> row;
      for (std::string f; fields >> f;)
        row.push_back(f);
      out.back().rows.push_back(row);
    }
  }
  return out;
}

/// The entries of a benchmark sample by (strategy, workers, tests).
std::map<std::tuple<std::string, double, double>, nlohmann::json>
bench_cells(const std::string& file) {
  std::map<std::tuple<std::string, double, double>, nlohmann::json> out;
  auto j = nlohmann::json::parse(slurp(sample(file)));
  for (auto& e : j["results"])
    out[{e["strategy"].get<std::string>(), e["workers"].get<double>(),
         e["tests"].get<double>()}]
      = e["metrics"];
  return out;
}

/// Whether `a` and `b` agree to the 10 digits the data files carry.
bool same(double a, double b) {
  return std::abs(a - b) <= 1e-8 * std::max(1.0, std::abs(b));
}

/// Reads "NAME at 100 tests: ..." into (NAME, 100); false if it is not so.
bool fixed_count(const std::string& comment, const std::string& what,
                 std::string& name, double& count) {
  auto at = comment.find(" at ");
  auto colon = comment.find(": ");
  if (at == std::string::npos || colon == std::string::npos || colon < at)
    return false;
  name = comment.substr(0, at);
  auto rest = comment.substr(at + 4, colon - at - 4);
  auto sp = rest.find(' ');
  if (sp == std::string::npos || rest.substr(sp + 1) != what)
    return false;
  count = std::stod(rest.substr(0, sp));
  return true;
}

} // namespace

// -- stress -------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(stress_renders_every_chart) {
  temp_dir tmp;
  auto res = render("stress.json", tmp.path);
  check_charts(res, result_kind::stress, stress_charts);
  // The scripts are kept for restyling and name their data file.
  auto gp = slurp(res.charts[1].script);
  BOOST_TEST(gp.find("stress_latency_20261127T221500.dat")
             != std::string::npos);
  BOOST_TEST(gp.find("set ylabel 'Latency (") != std::string::npos);
  BOOST_TEST(gp.find("Time since start (s)") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(stress_throughput_axis_names_the_sample_width) {
  // Samples 0.25 s apart: a rate per 0.25 s bucket, not per second.
  temp_dir tmp;
  auto text = slurp(sample("stress.json"));
  auto j = nlohmann::json::parse(text);
  for (auto& pt : j["time_series"]["throughput"])
    pt[0] = pt[0].get<double>() * 0.25;
  auto file = tmp.path / "quarter.json";
  std::ofstream{file} << j.dump();
  visualize_options opts;
  opts.input = file;
  opts.output_dir = tmp.path / "out";
  opts.stamp = "x";
  auto res = visualize(opts);
  auto gp = slurp(res.charts[2].script);
  BOOST_TEST(gp.find("set ylabel 'Throughput (tests/s, per 0.25 s sample)'")
               != std::string::npos,
             gp);
}

BOOST_AUTO_TEST_CASE(stress_without_type_key_and_with_nan_is_detected) {
  temp_dir tmp;
  auto res = render("stress_original.json", tmp.path);
  check_charts(res, result_kind::stress, stress_charts);
}

BOOST_AUTO_TEST_CASE(stress_with_empty_time_series_draws_no_data_charts) {
  temp_dir tmp;
  auto res = render("stress_empty.json", tmp.path);
  check_charts(res, result_kind::stress, stress_charts);
  BOOST_TEST(slurp(res.charts[1].script).find("No data") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(stress_with_one_worker_and_single_point) {
  temp_dir tmp;
  auto res = render("stress_single.json", tmp.path);
  check_charts(res, result_kind::stress, stress_charts);
}

BOOST_AUTO_TEST_CASE(stress_file_rendered_as_spike_detects_spikes) {
  temp_dir tmp;
  auto res = render("stress.json", tmp.path, result_kind::spike);
  check_charts(res, result_kind::spike, spike_charts);
}

// -- spike --------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(spike_renders_every_chart_with_spikes_shaded) {
  temp_dir tmp;
  auto res = render("spike.json", tmp.path);
  check_charts(res, result_kind::spike, spike_charts);
  auto gp = slurp(res.charts[0].script);
  // Two spikes from the file, each shaded in both panels.
  BOOST_TEST(gp.find("set object 2 rect from 35") != std::string::npos);
  BOOST_TEST(gp.find("500 tests") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(spike_without_spike_list_detects_them) {
  temp_dir tmp;
  auto res = render("spike_detect.json", tmp.path);
  check_charts(res, result_kind::spike, spike_charts);
  auto gp = slurp(res.charts[0].script);
  BOOST_TEST(gp.find("detected") != std::string::npos);
  BOOST_TEST(gp.find("set object 1 rect") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(spike_with_empty_time_series) {
  temp_dir tmp;
  auto res = render("spike_empty.json", tmp.path);
  check_charts(res, result_kind::spike, spike_charts);
}

BOOST_AUTO_TEST_CASE(spike_with_single_point_and_zero_width_spike) {
  temp_dir tmp;
  auto res = render("spike_single.json", tmp.path);
  check_charts(res, result_kind::spike, spike_charts);
}

BOOST_AUTO_TEST_CASE(detect_spikes_finds_runs_above_two_sigma) {
  std::vector<std::pair<double, double>> s;
  for (int i = 0; i < 30; ++i)
    s.emplace_back(i, (i >= 10 && i <= 12) ? 50.0 : 10.0 + (i % 3));
  auto spikes = detect_spikes(s);
  BOOST_REQUIRE_EQUAL(spikes.size(), 1u);
  BOOST_TEST(spikes[0].start == 9.5);
  BOOST_TEST(spikes[0].end == 12.5);
}

BOOST_AUTO_TEST_CASE(detect_spikes_needs_variation_and_three_samples) {
  BOOST_TEST(detect_spikes({}).empty());
  BOOST_TEST(detect_spikes({{0, 1}, {1, 100}}).empty());
  BOOST_TEST(detect_spikes({{0, 5}, {1, 5}, {2, 5}, {3, 5}}).empty());
}

// -- benchmark
// ------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(benchmark_renders_every_chart) {
  temp_dir tmp;
  auto res = render("benchmark.json", tmp.path);
  check_charts(res, result_kind::benchmark, benchmark_charts);
  auto gp = slurp(res.charts[3].script);
  BOOST_TEST(gp.find("with boxxyerror fc palette") != std::string::npos);
}

// A grid with holes (30 and 50 workers ran only 100 tests, adaptive never
// ran 30 workers): averaging over test counts per worker count would compare
// unlike things. Every point must be one configuration.
BOOST_AUTO_TEST_CASE(benchmark_throughput_points_are_one_configuration_each) {
  temp_dir tmp;
  auto res = render("benchmark_holes.json", tmp.path);
  check_charts(res, result_kind::benchmark, benchmark_charts);
  auto cells = bench_cells("benchmark_holes.json");
  auto blocks = data_blocks(res.charts[0].data);
  BOOST_REQUIRE(!blocks.empty());
  std::set<double> counts;
  std::size_t points = 0;
  for (auto& b : blocks) {
    std::string strategy;
    double tests = 0;
    BOOST_REQUIRE_MESSAGE(fixed_count(b.comment, "tests", strategy, tests),
                          "block '" << b.comment << "' mixes test counts");
    counts.insert(tests);
    for (auto& row : b.rows) {
      auto it = cells.find({strategy, std::stod(row[0]), tests});
      BOOST_REQUIRE_MESSAGE(it != cells.end(), b.comment << " " << row[0]);
      BOOST_TEST(
        same(std::stod(row[1]), it->second["avg_throughput"].get<double>()),
        b.comment << " at " << row[0] << " workers");
      ++points;
    }
  }
  BOOST_TEST(counts == (std::set<double>{20, 100, 500}));
  BOOST_TEST(points == cells.size());
  // Each test count is its own panel, named by what it holds.
  auto gp = slurp(res.charts[0].script);
  BOOST_TEST(gp.find("set multiplot") != std::string::npos);
  BOOST_TEST(gp.find("'100 tests'") != std::string::npos, gp);
  BOOST_TEST(gp.find("mean over") == std::string::npos, gp);
}

BOOST_AUTO_TEST_CASE(
  benchmark_latency_and_utilization_points_are_one_configuration) {
  temp_dir tmp;
  auto res = render("benchmark_holes.json", tmp.path);
  auto cells = bench_cells("benchmark_holes.json");
  // Latency against tests, one panel per worker count.
  std::size_t points = 0;
  for (auto& b : data_blocks(res.charts[1].data)) {
    std::string name;
    double workers = 0;
    BOOST_REQUIRE_MESSAGE(fixed_count(b.comment, "workers", name, workers),
                          "block '" << b.comment << "' mixes worker counts");
    auto sp = name.rfind(' ');
    auto strategy = name.substr(0, sp), which = name.substr(sp + 1);
    double scale = b.comment.find("latency_ms") != std::string::npos ? 1e3 : 1;
    for (auto& row : b.rows) {
      auto it = cells.find({strategy, workers, std::stod(row[0])});
      BOOST_REQUIRE(it != cells.end());
      BOOST_TEST(same(std::stod(row[1]),
                      it->second[which + "_latency"].get<double>() * scale),
                 b.comment << " at " << row[0] << " tests");
      ++points;
    }
  }
  BOOST_TEST(points == 2 * cells.size()); // p50 and p99
  // Utilization bars, one panel per test count.
  points = 0;
  for (auto& b : data_blocks(res.charts[2].data)) {
    std::string name;
    double tests = 0;
    BOOST_REQUIRE_MESSAGE(fixed_count(b.comment, "tests", name, tests),
                          "block '" << b.comment << "' mixes test counts");
    double workers = std::stod(name.substr(0, name.find(' ')));
    const char* order[] = {"round_robin", "least_loaded", "adaptive"};
    for (auto& row : b.rows) {
      auto strategy = order[static_cast<int>(std::lround(std::stod(row[0])))];
      auto it = cells.find({strategy, workers, tests});
      BOOST_REQUIRE(it != cells.end());
      BOOST_TEST(same(std::stod(row[1]),
                      it->second["worker_utilization"].get<double>() * 100),
                 b.comment << " " << strategy);
      ++points;
    }
  }
  BOOST_TEST(points == cells.size());
}

BOOST_AUTO_TEST_CASE(benchmark_strategy_means_cover_what_every_strategy_ran) {
  temp_dir tmp;
  auto res = render("benchmark_holes.json", tmp.path);
  auto cells = bench_cells("benchmark_holes.json");
  auto gp = slurp(res.charts[4].script);
  // 5 worker counts x 3 test counts is 15, but 11 were run, and adaptive
  // lacks one of them: the means are over the 10 every strategy ran.
  BOOST_TEST(gp.find("15 configurations") == std::string::npos, gp);
  BOOST_TEST(gp.find("mean over the 10 configurations every strategy ran (1 "
                     "run by only some left out)")
               != std::string::npos,
             gp);
  auto blocks = data_blocks(res.charts[4].data);
  BOOST_REQUIRE(blocks.size() == 1u);
  const char* order[] = {"round_robin", "least_loaded", "adaptive"};
  BOOST_REQUIRE(blocks[0].rows.size() == 3u);
  for (auto& row : blocks[0].rows) {
    std::string strategy = order[std::stoi(row[0])];
    double sum = 0;
    int n = 0;
    for (auto& [key, m] : cells)
      if (std::get<0>(key) == strategy && std::get<1>(key) != 30) {
        sum += m["makespan"].get<double>();
        ++n;
      }
    BOOST_TEST(n == 10);
    BOOST_TEST(same(std::stod(row[1]), sum / n), strategy);
  }
}

BOOST_AUTO_TEST_CASE(benchmark_repeats_are_averaged_and_said_so) {
  temp_dir tmp;
  auto j = nlohmann::json::parse(slurp(sample("benchmark_holes.json")));
  // Every configuration twice (as `alb benchmark --seeds` may write), the
  // second run of round_robin at 5 workers and 20 tests 2 tests/s faster.
  auto twice = j["results"];
  for (auto e : j["results"]) {
    if (e["strategy"] == "round_robin" && e["workers"] == 5 && e["tests"] == 20)
      e["metrics"]["avg_throughput"]
        = e["metrics"]["avg_throughput"].get<double>() + 2;
    twice.push_back(e);
  }
  j["results"] = twice;
  auto file = tmp.path / "repeats.json";
  std::ofstream{file} << j.dump();
  visualize_options opts;
  opts.input = file;
  opts.output_dir = tmp.path / "out";
  opts.stamp = "x";
  auto res = visualize(opts);
  auto gp = slurp(res.charts[0].script);
  BOOST_TEST(gp.find("64 results in 11 configurations") != std::string::npos,
             gp);
  BOOST_TEST(gp.find("each point the mean of 2 runs") != std::string::npos);
  auto cells = bench_cells("benchmark_holes.json");
  auto want = cells[{"round_robin", 5, 20}]["avg_throughput"].get<double>() + 1;
  bool found = false;
  for (auto& b : data_blocks(res.charts[0].data))
    if (b.comment.rfind("round_robin at 20 tests", 0) == 0)
      for (auto& row : b.rows)
        if (row[0] == "5") {
          found = true;
          BOOST_TEST(same(std::stod(row[1]), want));
        }
  BOOST_TEST(found);
}

BOOST_AUTO_TEST_CASE(benchmark_as_bare_list_is_detected) {
  temp_dir tmp;
  auto res = render("benchmark_list.json", tmp.path);
  check_charts(res, result_kind::benchmark, benchmark_charts);
  // One test count: latency scales against workers.
  BOOST_TEST(slurp(res.charts[1].script).find("set xlabel 'Workers'")
             != std::string::npos);
}

BOOST_AUTO_TEST_CASE(benchmark_with_one_worker_and_one_entry) {
  temp_dir tmp;
  auto res = render("benchmark_single.json", tmp.path);
  check_charts(res, result_kind::benchmark, benchmark_charts);
}

BOOST_AUTO_TEST_CASE(benchmark_without_results_draws_no_data_charts) {
  temp_dir tmp;
  auto res = render("benchmark_empty.json", tmp.path);
  check_charts(res, result_kind::benchmark, benchmark_charts);
}

BOOST_AUTO_TEST_CASE(strings_from_the_input_cannot_run_commands) {
  temp_dir tmp;
  auto marker = tmp.path / "pwned";
  auto file = tmp.path / "evil.json";
  std::string m = marker.string();
  std::ofstream(file)
    << R"({"type":"benchmark","results":[)"
    << R"({"workers":2,"tests":4,"strategy":"a'; system('touch )" << m
    << R"(') #","metrics":{"avg_throughput":1,"worker_utilization":0.5}},)"
    << R"({"workers":2,"tests":4,"strategy":"b`touch )" << m
    << R"(`\"\n@x","metrics":{"avg_throughput":2,"makespan":3}}]})";
  visualize_options opts;
  opts.input = file;
  opts.output_dir = tmp.path / "out";
  auto res = visualize(opts);
  BOOST_TEST(res.charts.size() == 5u);
  for (const auto& c : res.charts)
    check_png(c.png);
  BOOST_TEST(!fs::exists(marker));
}

// -- errors
// ---------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(malformed_json_is_an_input_error) {
  expect_failure(input("malformed.json"), visualize_ec::malformed_json,
                 {"malformed.json", "malformed JSON", "line 2"});
  visualize_error e(visualize_ec::malformed_json, "x");
  BOOST_TEST(e.exit_status() == 2);
}

BOOST_AUTO_TEST_CASE(benchmark_type_on_a_stress_file_names_results) {
  expect_failure(
    input("stress.json", result_kind::benchmark), visualize_ec::wrong_shape,
    {"stress.json", "not a benchmark result", "missing \"results\""});
}

BOOST_AUTO_TEST_CASE(stress_type_on_a_benchmark_file_names_metrics) {
  expect_failure(
    input("benchmark.json", result_kind::stress), visualize_ec::wrong_shape,
    {"benchmark.json", "not a stress result", "missing \"metrics\""});
}

BOOST_AUTO_TEST_CASE(missing_metrics_is_named) {
  expect_failure(input("no_metrics.json"), visualize_ec::wrong_shape,
                 {"no_metrics.json", "missing \"metrics\""});
}

BOOST_AUTO_TEST_CASE(benchmark_entry_without_strategy_is_named) {
  expect_failure(input("bad_entry.json"), visualize_ec::wrong_shape,
                 {"bad_entry.json", "results[0]", "\"strategy\""});
}

BOOST_AUTO_TEST_CASE(missing_input_file_is_an_input_error) {
  expect_failure(input("does_not_exist.json"), visualize_ec::input_unreadable,
                 {"does_not_exist.json", "no such file"});
}

BOOST_AUTO_TEST_CASE(missing_gnuplot_is_a_clear_error) {
  auto opts = input("stress.json");
  opts.gnuplot = "/nonexistent/gnuplot";
  expect_failure(opts, visualize_ec::gnuplot_missing, {"gnuplot not found"});
  visualize_error e(visualize_ec::gnuplot_missing, "x");
  BOOST_TEST(e.exit_status() == 1);
}

// -- the command line
// -------------------------------------------------------------

BOOST_AUTO_TEST_CASE(cli_renders_charts_and_index) {
  temp_dir tmp;
  auto out = tmp.path / "viz";
  int rc
    = run(alb_command() + " visualize '" + sample("benchmark.json").string()
            + "' --output-dir '" + out.string() + "' --type benchmark",
          tmp.path / "log");
  BOOST_TEST(rc == 0, slurp(tmp.path / "log"));
  BOOST_TEST(fs::is_regular_file(out / "index.html"));
  std::size_t pngs = 0;
  for (const auto& e : fs::directory_iterator(out))
    pngs += e.path().extension() == ".png";
  BOOST_TEST(pngs == benchmark_charts.size());
}

BOOST_AUTO_TEST_CASE(cli_exits_2_on_bad_input_and_writes_nothing) {
  temp_dir tmp;
  auto out = tmp.path / "viz";
  for (std::string args :
       {"'" + sample("malformed.json").string() + "'",
        "'" + sample("stress.json").string() + "' --type benchmark",
        "'" + sample("no_metrics.json").string() + "'",
        "'" + (tmp.path / "missing.json").string() + "'"}) {
    BOOST_TEST_CONTEXT(args) {
      int rc = run(alb_command() + " visualize " + args + " --output-dir '"
                     + out.string() + "'",
                   tmp.path / "log");
      auto log = slurp(tmp.path / "log");
      BOOST_TEST(rc == 2, log);
      BOOST_TEST(log.rfind("alb: error: ", 0) == 0u, log);
      BOOST_TEST(!fs::exists(out));
    }
  }
  int rc = run(alb_command() + " visualize '" + sample("stress.json").string()
                 + "' --type bogus",
               tmp.path / "log");
  BOOST_TEST(rc == 2);
}

BOOST_AUTO_TEST_CASE(cli_exits_1_without_gnuplot) {
  temp_dir tmp;
  int rc = run("PATH=/nonexistent " + alb_command() + " visualize '"
                 + sample("stress.json").string() + "' --output-dir '"
                 + (tmp.path / "viz").string() + "'",
               tmp.path / "log");
  auto log = slurp(tmp.path / "log");
  BOOST_TEST(rc == 1, log);
  BOOST_TEST(log.find("gnuplot not found") != std::string::npos, log);
}

BOOST_AUTO_TEST_CASE(cli_help_describes_the_options) {
  temp_dir tmp;
  int rc = run(alb_command() + " visualize --help", tmp.path / "log");
  auto log = slurp(tmp.path / "log");
  BOOST_TEST(rc == 0);
  for (const char* s : {"INPUT", "--output-dir", "--type", "gnuplot"})
    BOOST_TEST(log.find(s) != std::string::npos, s);
}
