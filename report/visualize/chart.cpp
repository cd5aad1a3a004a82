#include "report/visualize/chart.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

namespace alb::report::viz {

namespace {

/// Integer tics for a count axis whose range is too small for gnuplot's own
/// choice to stay integral.
std::string count_tics(const char* name, axis a) {
  if (a.hi - a.lo > 8)
    return "";
  return std::string("set ") + name + " 1\n";
}

} // namespace

std::string panel_reset() {
  return "reset\n"
         "set border 3 lw 1 lc rgb '#404040'\n"
         "set tics out nomirror\n"
         "set grid ytics lt 1 lw 1 lc rgb '#e4e4e4'\n"
         "set key noautotitle\n"
         "set title font ',12'\n";
}

std::string range(const char* name, axis a) {
  return std::string("set ") + name + " [" + num(a.lo) + ":" + num(a.hi)
         + "]\n";
}

axis value_axis(double lo, double hi, double headroom) {
  if (!std::isfinite(lo) || !std::isfinite(hi))
    return {0, 1};
  lo = std::min(lo, 0.0);
  if (hi <= lo)
    return {lo, lo + 1};
  return {lo < 0 ? lo * headroom : 0, hi > 0 ? hi * headroom : hi};
}

axis time_axis(double lo, double hi) {
  if (!std::isfinite(lo) || !std::isfinite(hi))
    return {0, 1};
  if (hi - lo < 1e-9) {
    // A single instant: centre it, without negative times where avoidable.
    double half = lo > 0 ? std::min(lo, 1.0) : 0.5;
    return {lo - half, lo + half};
  }
  return {lo, hi};
}

std::string no_data_panel(const std::string& title_expr,
                          const std::string& message) {
  std::string s = panel_reset();
  s += "set title " + title_expr
       + "\n"
         "set border 15 lw 1 lc rgb '#b0b0b0'\n"
         "unset tics\nunset grid\n"
         "set xrange [0:1]\nset yrange [0:1]\n"
         "set label 1 "
       + gp_str("No data: " + message)
       + " at graph 0.5, graph 0.5 center font ',13' tc rgb '#606060'\n"
         "plot NaN notitle\n";
  return s;
}

std::string series_style(std::size_t n, bool steps, int pt) {
  auto p = std::to_string(pt);
  if (n <= 1)
    return "points pt " + p + " ps 1.4";
  if (steps)
    return "steps lw 2";
  if (n <= 60)
    return "linespoints lw 2 pt " + p + " ps 0.6";
  return "lines lw 2";
}

unit latency_unit(double max_seconds) {
  if (max_seconds > 0 && max_seconds < 1)
    return {1000, "ms"};
  return {1, "s"};
}

std::string rows_of(const series& s, double scale) {
  std::vector<double> gaps;
  for (std::size_t i = 1; i < s.size(); ++i)
    gaps.push_back(s[i].first - s[i - 1].first);
  double limit = std::numeric_limits<double>::infinity();
  if (gaps.size() >= 2) {
    std::nth_element(gaps.begin(), gaps.begin() + gaps.size() / 2, gaps.end());
    if (gaps[gaps.size() / 2] > 0)
      limit = gaps[gaps.size() / 2] * 1.5;
  }
  std::string rows;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i > 0 && s[i].first - s[i - 1].first > limit)
      rows += "\n";
    rows += num(s[i].first) + " " + num(s[i].second * scale) + "\n";
  }
  return rows;
}

std::string render_ts(const ts_panel& p) {
  std::string s = panel_reset();
  bool y2 = std::any_of(p.lines.begin(), p.lines.end(),
                        [](const ts_line& l) { return l.y2; });
  s += "set title " + p.title_expr + "\n";
  s += "set xlabel 'Time since start (s)'\n";
  s += "set ylabel " + gp_str(p.ylabel) + "\n";
  s += range("xrange", p.x) + range("yrange", p.y);
  if (y2) {
    s += "set border 11 lw 1 lc rgb '#404040'\n"
         "set y2tics out nomirror\nset ytics nomirror\n";
    s += "set y2label " + gp_str(p.y2label) + "\n" + range("y2range", p.y2);
    if (p.y2_counts)
      s += count_tics("y2tics", p.y2);
  }
  if (p.y_counts)
    s += count_tics("ytics", p.y);
  if (p.margin >= 0)
    s += "set lmargin " + std::to_string(p.margin) + "\nset rmargin "
         + std::to_string(p.margin) + "\n";
  if (p.lines.size() + p.hlines.size() + (p.shade.empty() ? 0 : 1) > 1)
    s += "set key below horizontal height 1.5\n";
  else
    s += "unset key\n";
  int obj = 1;
  for (const auto& sp : p.shade) {
    double a = sp.when.start, b = sp.when.end;
    if (b - a < (p.x.hi - p.x.lo) * 0.004) {
      double mid = (a + b) / 2, half = (p.x.hi - p.x.lo) * 0.002;
      a = mid - half;
      b = mid + half;
    }
    s += "set object " + std::to_string(obj) + " rect from " + num(a)
         + ", graph 0 to " + num(b) + ", graph 1 behind fc rgb '" + spike_color
         + "' fs transparent solid 0.18 noborder\n";
    if (p.shade.size() <= 8) {
      // Centred over the band, but kept inside the plot near its edges.
      double mid = (sp.when.start + sp.when.end) / 2;
      double frac = (mid - p.x.lo) / (p.x.hi - p.x.lo);
      std::string at = num(mid) + ", graph 0.97 center";
      if (frac < 0.04)
        at = "graph 0.005, graph 0.97 left";
      else if (frac > 0.96)
        at = "graph 0.995, graph 0.97 right";
      s += "set label " + std::to_string(obj) + " "
           + gp_str("spike " + std::to_string(obj)) + " at " + at
           + " front font ',9' tc rgb '#a04a00'\n";
    }
    ++obj;
  }
  std::vector<std::string> items;
  for (const auto& l : p.lines)
    items.push_back("data index " + std::to_string(l.block) + " using 1:2"
                    + (l.y2 ? " axes x1y2" : "") + " with "
                    + series_style(l.n, l.steps) + " lt " + std::to_string(l.lt)
                    + " title " + gp_str(l.title));
  for (const auto& h : p.hlines)
    items.push_back(num(h.y) + " with lines dt 2 lw 1.5 lc rgb '" + h.color
                    + "' title " + gp_str(h.title));
  if (!p.shade.empty())
    items.push_back(std::string("keyentry with boxes fc rgb '") + spike_color
                    + "' fs transparent solid 0.18 noborder title 'spike'");
  s += "plot ";
  for (std::size_t i = 0; i < items.size(); ++i)
    s += (i ? ", \\\n     " : "") + items[i];
  s += "\n";
  return s;
}

std::string category_tics(const std::vector<std::string>& names,
                          double width_px, const char* axis_name) {
  std::size_t chars = 0;
  for (const auto& n : names)
    chars += n.size() + 2;
  bool rotate = static_cast<double>(chars) * 7.5 > width_px;
  std::string s = std::string("set ") + axis_name + " (";
  for (std::size_t i = 0; i < names.size(); ++i)
    s += (i ? ", " : "") + gp_str(names[i]) + " " + std::to_string(i);
  s += ")";
  s += rotate ? " rotate by 30 right\n" : " norotate\n";
  return s;
}

std::string bar_panel(data_file& data, const std::string& title_expr,
                      const std::string& ylabel, const std::vector<bar>& bars,
                      double width_px, int first_color) {
  if (bars.empty())
    return no_data_panel(title_expr, "no such metrics in the file");
  std::string rows;
  double lo = 0, hi = 0;
  for (std::size_t i = 0; i < bars.size(); ++i) {
    rows += std::to_string(i) + " " + num(bars[i].value) + " "
            + dat_str(bars[i].text) + " "
            + std::to_string((first_color + i) % palette_size + 1) + "\n";
    lo = std::min(lo, bars[i].value);
    hi = std::max(hi, bars[i].value);
  }
  int b = data.add(printable(ylabel) + ": position value label colour", rows);
  std::vector<std::string> names;
  for (const auto& x : bars)
    names.push_back(x.label);
  std::string s = panel_reset();
  s += "set title " + title_expr + "\n";
  s += "set ylabel " + gp_str(ylabel) + "\n";
  s += range("xrange", {-0.6, static_cast<double>(bars.size()) - 0.4});
  s += range("yrange", value_axis(lo, hi, 1.18));
  s += category_tics(names, width_px);
  s += "set xtics scale 0\n";
  s += "set boxwidth 0.6\nset style fill solid 0.85 noborder\n";
  s += "plot data index " + std::to_string(b)
       + " using 1:2:4 with boxes lc variable notitle, \\\n"
         "     data index "
       + std::to_string(b)
       + " using 1:2:3 with labels offset 0,0.8 font ',9' notitle\n";
  return s;
}

std::string script_text(const chart_spec& ch, const std::string& base,
                        const std::string& input) {
  std::string s;
  s += "# " + printable(ch.title) + ": generated by `alb visualize` from "
       + printable(input) + ".\n";
  s += "# Re-render the PNG and SVG after restyling: run `gnuplot " + base
       + ".gp` in this directory.\n";
  s += "# The data is in " + base + ".dat (blocks selected with `index N`).\n";
  s += "base = " + gp_str(base) + "\n";
  s += "data = " + gp_str(base + ".dat") + "\n";
  s += "font = 'DejaVu Sans,10'\n";
  s += "width = " + std::to_string(ch.width) + "\n";
  s += "height = " + std::to_string(ch.height) + "\n";
  s += "do for [fmt in 'png svg'] {\n";
  s += "if (fmt eq 'png') {\n"
       "  set terminal pngcairo size width,height noenhanced font font\n"
       "} else {\n"
       "  set terminal svg size width,height dynamic noenhanced font font "
       "background '#ffffff'\n"
       "}\n";
  s += "set output base.'.'.fmt\n";
  for (int i = 0; i < palette_size; ++i)
    s += "set linetype " + std::to_string(i + 1) + " lc rgb '" + palette[i]
         + "' lw 2 pt 7 ps 0.8\n";
  s += ch.body;
  s += "unset output\n";
  s += "}\n";
  return s;
}

} // namespace alb::report::viz
