// `alb visualize`: reads a result, builds its charts, renders them with
// gnuplot and writes the index. The parts live in report/visualize/.

#include "report/visualize.hpp"

#include "report/visualize/bench_charts.hpp"
#include "report/visualize/gnuplot.hpp"
#include "report/visualize/index_html.hpp"
#include "report/visualize/results.hpp"
#include "report/visualize/run_charts.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <ctime>
#include <fstream>
#include <system_error>

namespace alb::report {

using namespace viz;

namespace {

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out)
    fail(visualize_ec::output_failed, path.string() + ": cannot write");
}

std::string now_stamp() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y%m%dT%H%M%S", &tm);
  return buf;
}

} // namespace

const char* to_string(result_kind x) {
  switch (x) {
    case result_kind::stress:
      return "stress";
    case result_kind::benchmark:
      return "benchmark";
    case result_kind::spike:
      return "spike";
  }
  return "stress";
}

std::optional<result_kind> parse_result_kind(std::string_view name) {
  if (name == "stress" || name == "scenario")
    return result_kind::stress;
  if (name == "benchmark")
    return result_kind::benchmark;
  if (name == "spike")
    return result_kind::spike;
  return std::nullopt;
}

const char* to_string(visualize_ec x) {
  switch (x) {
    case visualize_ec::input_unreadable:
      return "input_unreadable";
    case visualize_ec::malformed_json:
      return "malformed_json";
    case visualize_ec::wrong_shape:
      return "wrong_shape";
    case visualize_ec::gnuplot_missing:
      return "gnuplot_missing";
    case visualize_ec::gnuplot_failed:
      return "gnuplot_failed";
    case visualize_ec::output_failed:
      return "output_failed";
  }
  return "unknown";
}

visualize_error::visualize_error(visualize_ec code, const std::string& what)
  : std::runtime_error(what), code_(code) {
  // nop
}

int visualize_error::exit_status() const noexcept {
  switch (code_) {
    case visualize_ec::input_unreadable:
    case visualize_ec::malformed_json:
    case visualize_ec::wrong_shape:
      return 2;
    default:
      return 1;
  }
}

std::vector<time_interval>
detect_spikes(const std::vector<std::pair<double, double>>& s) {
  std::vector<time_interval> out;
  if (s.size() < 3)
    return out;
  double n = static_cast<double>(s.size());
  double mean = 0;
  for (const auto& p : s)
    mean += p.second / n;
  double var = 0;
  for (const auto& p : s)
    var += (p.second - mean) * (p.second - mean) / n;
  double sd = std::sqrt(var);
  if (!(sd > 0))
    return out;
  double limit = mean + 2 * sd;
  std::vector<double> gaps;
  for (std::size_t i = 1; i < s.size(); ++i)
    gaps.push_back(s[i].first - s[i - 1].first);
  std::nth_element(gaps.begin(), gaps.begin() + gaps.size() / 2, gaps.end());
  double half = std::max(gaps[gaps.size() / 2], 0.0) / 2;
  for (std::size_t i = 0; i < s.size();) {
    if (s[i].second <= limit) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j + 1 < s.size() && s[j + 1].second > limit)
      ++j;
    out.push_back({s[i].first - half, s[j].first + half});
    i = j + 1;
  }
  return out;
}

visualize_result visualize(const visualize_options& opts) {
  const std::string input = opts.input.string();
  // Read and validate everything before touching the output directory.
  json j = load_json(opts.input);
  result_kind kind = opts.kind ? *opts.kind : detect_kind(j, input);
  const std::string label = opts.input.filename().string();
  std::vector<chart_spec> specs;
  if (kind == result_kind::benchmark)
    specs = bench_charts(parse_bench(j, input), label);
  else
    specs = run_charts(parse_run(j, kind, input), kind, label);
  auto program = find_program(opts.gnuplot);
  if (!program)
    fail(visualize_ec::gnuplot_missing,
         "gnuplot not found (looked for '" + opts.gnuplot
           + "'); install it, e.g. apt-get install gnuplot-nox");
  std::string stamp;
  for (char c : opts.stamp.empty() ? now_stamp() : opts.stamp)
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')
      stamp += c;
  if (stamp.empty())
    stamp = now_stamp();
  std::error_code ec;
  fs::create_directories(opts.output_dir, ec);
  if (ec || !fs::is_directory(opts.output_dir))
    fail(visualize_ec::output_failed,
         opts.output_dir.string() + ": cannot create the output directory"
           + (ec ? ": " + ec.message() : std::string()));
  visualize_result res;
  res.kind = kind;
  for (const auto& spec : specs) {
    std::string base
      = std::string(to_string(kind)) + "_" + spec.name + "_" + stamp;
    chart_output out;
    out.name = spec.name;
    out.title = spec.title;
    out.png = opts.output_dir / (base + ".png");
    out.svg = opts.output_dir / (base + ".svg");
    out.script = opts.output_dir / (base + ".gp");
    out.data = opts.output_dir / (base + ".dat");
    write_file(out.data, spec.data.text().empty() ? "# no data for this chart\n"
                                                  : spec.data.text() + "\n");
    write_file(out.script, script_text(spec, base, input));
    for (const auto& p : {out.png, out.svg})
      fs::remove(p, ec);
    auto [rc, output] = run_gnuplot(*program, opts.output_dir, base + ".gp");
    bool rendered = true;
    for (const auto& p : {out.png, out.svg})
      rendered
        = rendered && fs::is_regular_file(p, ec) && fs::file_size(p, ec) > 0;
    if (rc != 0 || !rendered) {
      while (!output.empty() && (output.back() == '\n' || output.back() == ' '))
        output.pop_back();
      if (output.size() > 2000)
        output = "..." + output.substr(output.size() - 2000);
      fail(visualize_ec::gnuplot_failed,
           "gnuplot failed to render " + out.script.string() + " (exit status "
             + std::to_string(rc) + ")"
             + (output.empty() ? "" : ":\n" + output));
    }
    res.charts.push_back(std::move(out));
  }
  res.index_html = opts.output_dir / "index.html";
  write_file(res.index_html, index_html(res, input, stamp, specs));
  return res;
}

} // namespace alb::report
