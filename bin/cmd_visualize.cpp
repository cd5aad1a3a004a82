// `alb visualize`: charts (PNG and SVG, via gnuplot) from a result file.

#include "bin/commands.hpp"

#include "report/visualize.hpp"

#include <CLI/CLI.hpp>

#include <iostream>
#include <memory>
#include <string>

namespace alb::cli {

namespace {

struct visualize_args {
  std::string input;
  std::string output_dir = "visualizations";
  std::string type;
};

int run_visualize(const visualize_args& args) {
  report::visualize_options opts;
  opts.input = args.input;
  opts.output_dir = args.output_dir;
  if (!args.type.empty())
    opts.kind = report::parse_result_kind(args.type);
  try {
    auto res = report::visualize(opts);
    std::cout << "Rendered " << res.charts.size() << " "
              << report::to_string(res.kind) << " charts (PNG and SVG) into "
              << args.output_dir << ":\n";
    for (const auto& c : res.charts)
      std::cout << "  " << c.title << ": " << c.png.string() << ", "
                << c.svg.filename().string() << "\n";
    std::cout << "Open " << res.index_html.string()
              << " to see them all; the .gp scripts and .dat files beside "
                 "them re-render the charts.\n";
    return 0;
  } catch (const report::visualize_error& e) {
    std::cerr << "alb: error: " << e.what() << "\n";
    return e.exit_status();
  } catch (const std::exception& e) {
    std::cerr << "alb: error: " << args.input << ": " << e.what() << "\n";
    return 1;
  }
}

} // namespace

void add_visualize(CLI::App& app, int& rc) {
  auto args = std::make_shared<visualize_args>();
  auto* sub = app.add_subcommand(
    "visualize", "Turn a result JSON file into charts (PNG and SVG)");
  sub->add_option("INPUT", args->input, "Result JSON file to visualize")
    ->required();
  sub
    ->add_option("-o,--output-dir", args->output_dir,
                 "Directory for the charts, created if missing")
    ->capture_default_str();
  sub
    ->add_option("-t,--type", args->type,
                 "Kind of result: stress, benchmark or spike (default: "
                 "detected from the file)")
    ->check(CLI::IsMember({"stress", "benchmark", "spike"}));
  sub->footer(
    "Reads a result file written by `alb stress`, `alb scenario`,\n"
    "`alb spike` or `alb benchmark`, renders each chart with gnuplot as PNG\n"
    "and SVG and writes an index.html showing them all. The gnuplot script\n"
    "(.gp) and data (.dat) of every chart stay beside it: edit the script\n"
    "and run `gnuplot NAME.gp` in the output directory to restyle it.\n"
    "\n"
    "Charts (files named KIND_CHART_YYYYMMDDTHHMMSS.{png,svg,gp,dat}):\n"
    "  stress     summary (bar charts of key metrics), latency and\n"
    "             throughput over time, dashboard (all on one sheet,\n"
    "             with queue depth and workers when recorded)\n"
    "  benchmark  throughput vs workers per strategy and worker\n"
    "             efficiency (utilization per strategy), one panel per\n"
    "             test count; latency scaling (p50/p99), one panel per\n"
    "             worker count; utilization heatmap (workers x tests);\n"
    "             strategy comparison (makespan and throughput, mean over\n"
    "             the configurations every strategy ran). Every point is\n"
    "             one configuration.\n"
    "  spike      throughput and latency over time with the spikes\n"
    "             shaded, throughput vs latency scatter, summary\n"
    "\n"
    "Needs gnuplot with the pngcairo and svg terminals (Debian package\n"
    "gnuplot-nox). Exit status: 0 charts written, 1 gnuplot missing or\n"
    "failed, 2 bad or missing input (nothing written).\n"
    "Example: alb visualize bench.json --output-dir viz --type benchmark");
  sub->callback([args, &rc] { rc = run_visualize(*args); });
}

} // namespace alb::cli
