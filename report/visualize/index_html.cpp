#include "report/visualize/index_html.hpp"

namespace alb::report::viz {

std::string index_html(const visualize_result& res, const std::string& input,
                       const std::string& stamp,
                       const std::vector<chart_spec>& specs) {
  std::string s;
  s += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta "
       "charset=\"utf-8\">\n";
  s += "<title>alb visualize: " + html(input) + "</title>\n";
  s += "<style>\n"
       "body{font-family:'DejaVu Sans',Arial,sans-serif;margin:2em;"
       "color:#222;background:#fafafa}\n"
       "h1{font-size:1.5em;margin-bottom:.2em}\n"
       ".meta{color:#555;margin-bottom:2em}\n"
       "figure{background:#fff;border:1px solid #ddd;border-radius:6px;"
       "padding:1em;margin:0 0 2em 0}\n"
       "figure img{max-width:100%;height:auto;display:block}\n"
       "figcaption{margin-top:.6em;color:#444}\n"
       "figcaption a{margin-right:1em}\n"
       "</style>\n</head>\n<body>\n";
  s += "<h1>"
       + html(std::string("alb visualize: ") + to_string(res.kind) + " result")
       + "</h1>\n";
  s += "<div class=\"meta\">Input <code>" + html(input) + "</code>, generated "
       + html(stamp) + ". Each chart links to its SVG, "
       + "its gnuplot script and its data; run <code>gnuplot NAME.gp</code> "
       + "in this directory to re-render after restyling.</div>\n";
  for (std::size_t i = 0; i < res.charts.size(); ++i) {
    const auto& c = res.charts[i];
    auto file = [](const fs::path& p) { return html(p.filename().string()); };
    s += "<figure id=\"" + html(c.name) + "\">\n";
    s += "<h2>" + html(c.title) + "</h2>\n";
    s += "<a href=\"" + file(c.svg) + "\"><img src=\"" + file(c.png)
         + "\" alt=\"" + html(c.title) + "\"></a>\n";
    s += "<figcaption>" + html(specs[i].description) + "<br>\n";
    s += "<a href=\"" + file(c.svg) + "\">SVG</a>";
    s += "<a href=\"" + file(c.png) + "\">PNG</a>";
    s += "<a href=\"" + file(c.script) + "\">gnuplot script</a>";
    s += "<a href=\"" + file(c.data) + "\">data</a>\n";
    s += "</figcaption>\n</figure>\n";
  }
  s += "</body>\n</html>\n";
  return s;
}

} // namespace alb::report::viz
