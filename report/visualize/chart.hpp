#pragma once

// Chart building blocks: the data file of a chart, axes, time-series and bar
// panels, and the gnuplot script around a chart.

#include "report/visualize/format.hpp"
#include "report/visualize/results.hpp"

#include <string>
#include <vector>

namespace alb::report::viz {

/// The line colours, in order (gnuplot linetypes 1-10).
inline constexpr const char* palette[]
  = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
     "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

/// Entries of `palette`.
inline constexpr int palette_size = 10;

/// The colour that marks load spikes.
inline constexpr const char* spike_color = "#ff7f0e";

/// The data file of a chart: blocks separated by two blank lines, addressed
/// with `index N` in the script.
class data_file {
public:
  /// Appends a block of `rows` headed by `comment`; returns its index.
  int add(const std::string& comment, const std::string& rows) {
    if (blocks_ > 0)
      text_ += "\n\n";
    text_ += "# index " + std::to_string(blocks_) + ": " + printable(comment)
             + "\n" + rows;
    return blocks_++;
  }

  /// The whole file.
  const std::string& text() const { return text_; }

private:
  std::string text_;
  int blocks_ = 0;
};

/// One chart before rendering.
struct chart_spec {
  /// Short name, part of the file names ("latency").
  std::string name;
  /// Title shown on the index page.
  std::string title;
  /// Caption: what the chart shows and how it was computed.
  std::string description;
  /// Size in pixels.
  int width = 1200;
  /// Size in pixels.
  int height = 700;
  /// Its data file.
  data_file data;
  /// The gnuplot commands that draw it (inside the script's output loop).
  std::string body;
};

/// An axis range.
struct axis {
  /// Lower end.
  double lo = 0;
  /// Upper end.
  double hi = 1;
};

/// Settings every panel starts from (after `reset`).
std::string panel_reset();

/// Returns the gnuplot `set NAME [lo:hi]` line of axis `a`.
std::string range(const char* name, axis a);

/// A value axis starting at 0 (or below, for negative data) with headroom.
axis value_axis(double lo, double hi, double headroom = 1.12);

/// The time axis covering `lo..hi`; a single instant gets one second around it.
axis time_axis(double lo, double hi);

/// Returns a panel that shows `message` in place of a chart without data.
std::string no_data_panel(const std::string& title_expr,
                          const std::string& message);

/// Which gnuplot style draws a series of `n` points: markers alone for one,
/// markers and lines for a few, plain lines for many.
std::string series_style(std::size_t n, bool steps, int pt = 7);

/// Latency unit: milliseconds for sub-second latencies, else seconds.
struct unit {
  /// Multiplier from seconds.
  double scale;
  /// Its name ("ms").
  const char* name;
};

/// Returns the unit (s, ms or µs) that suits latencies up to `max_seconds`.
unit latency_unit(double max_seconds);

/// Data rows of a time series. Where samples are missing (a gap of more than
/// 1.5 sampling periods, e.g. buckets in which no test started) a blank line
/// breaks the plotted line instead of bridging the gap with a straight one.
std::string rows_of(const series& s, double scale = 1);

/// A line of a time-series panel.
struct ts_line {
  /// Data block (`index N`).
  int block;
  /// Key entry.
  std::string title;
  /// Line type (colour).
  int lt;
  /// Points in the block.
  std::size_t n;
  /// Plotted against the right axis.
  bool y2 = false;
  /// Drawn as steps.
  bool steps = false;
};

/// A horizontal reference line.
struct ts_hline {
  /// Where.
  double y;
  /// Key entry.
  std::string title;
  /// Colour.
  const char* color;
};

/// A time-series panel.
struct ts_panel {
  /// Title as a gnuplot string expression.
  std::string title_expr;
  /// Left axis label.
  std::string ylabel;
  /// Right axis label ("" = no right axis).
  std::string y2label;
  /// Axis ranges.
  axis x, y, y2;
  /// The lines.
  std::vector<ts_line> lines;
  /// Horizontal reference lines.
  std::vector<ts_hline> hlines;
  /// Intervals shaded as spikes.
  std::vector<spike_info> shade;
  /// Fixed left and right margins (characters) so stacked panels line up;
  /// negative means automatic.
  int margin = -1;
  /// The left and right axes count things (tests, workers): integer tics.
  bool y_counts = false;
  /// The same for the right axis.
  bool y2_counts = false;
};

/// Returns the gnuplot commands of time-series panel `p`.
std::string render_ts(const ts_panel& p);

/// A bar of a bar panel.
struct bar {
  /// Category label.
  std::string label;
  /// Height.
  double value;
  /// Text above the bar.
  std::string text;
};

/// Category tic labels; rotated when they would not fit side by side in
/// `width_px` pixels.
std::string category_tics(const std::vector<std::string>& names,
                          double width_px, const char* axis_name = "xtics");

/// Returns a bar panel of `bars` (their values go into `data`).
std::string bar_panel(data_file& data, const std::string& title_expr,
                      const std::string& ylabel, const std::vector<bar>& bars,
                      double width_px, int first_color = 0);

/// Returns the whole gnuplot script of chart `ch`, rendering `base`.png and
/// `base`.svg; `input` names the result file in its header comment.
std::string script_text(const chart_spec& ch, const std::string& base,
                        const std::string& input);

} // namespace alb::report::viz
