#include "report/junit.hpp"

#include <cstdint>
#include <cstdio>

#include "report/submit_report.hpp"
#include "runtime/log_format.hpp"

namespace alb::report {

namespace {

void put_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

constexpr uint32_t replacement = 0xFFFD;

// Decodes one UTF-8 sequence at s[i]; returns the code point (U+FFFD for
// an invalid, overlong, surrogate or truncated sequence) and advances `i`
// past what was consumed (at least one byte).
uint32_t next_code_point(std::string_view s, size_t& i) {
  auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    ++i;
    return b0;
  }
  int len = 0;
  uint32_t cp = 0;
  uint32_t min = 0;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2;
    cp = b0 & 0x1F;
    min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3;
    cp = b0 & 0x0F;
    min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4;
    cp = b0 & 0x07;
    min = 0x10000;
  } else {
    ++i;
    return replacement;
  }
  if (i + static_cast<size_t>(len) > s.size()) {
    ++i;
    return replacement;
  }
  for (int k = 1; k < len; ++k) {
    auto b = static_cast<unsigned char>(s[i + static_cast<size_t>(k)]);
    if ((b & 0xC0) != 0x80) {
      ++i;
      return replacement;
    }
    cp = (cp << 6) | (b & 0x3F);
  }
  i += static_cast<size_t>(len);
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
    return replacement;
  return cp;
}

std::string num(double x) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3f", x < 0 ? 0.0 : x);
  return buf;
}

std::string attr(const char* name, std::string_view value) {
  return std::string{" "} + name + "=\"" + xml_escape(value, true) + "\"";
}

enum class verdict { passed, failure, error, skipped };

verdict verdict_of(const cluster_outcome& o) {
  if (o.success)
    return verdict::passed;
  if (o.status == "cancelled")
    return verdict::skipped;
  // A command that ran and said "no" is a failure; everything that kept
  // it from saying anything is an error.
  if (!o.timed_out && o.signal == 0 && o.exit_code != 0 && o.started_at > 0)
    return verdict::failure;
  return verdict::error;
}

const char* type_of(const cluster_outcome& o) {
  if (o.timed_out)
    return "timeout";
  if (o.signal != 0)
    return "signal";
  if (o.status == "cancelled")
    return "cancelled";
  if (o.started_at > 0 && o.exit_code != 0)
    return "exit_status";
  return "not_run";
}

std::string details(const cluster_outcome& o) {
  std::string d;
  if (o.signal != 0)
    d += "killed by " + signal_name(o.signal) + "\n";
  else if (!o.timed_out && o.started_at > 0)
    d += "exit status " + std::to_string(o.exit_code) + "\n";
  if (!o.error.empty() && d.rfind(o.error + "\n", 0) != 0)
    d += "error: " + o.error + "\n";
  if (!o.node.empty() || !o.worker_id.empty())
    d += "ran on: "
         + (o.node.empty() ? o.worker_id : o.node + " (" + o.worker_id + ")")
         + "\n";
  d += "attempts: " + std::to_string(o.attempts) + "\n";
  if (o.started_at > 0)
    d += "started: " + iso8601_local(o.started_at) + "\n";
  if (o.ended_at > 0)
    d += "ended: " + iso8601_local(o.ended_at) + "\n";
  if (!o.output_tail.empty())
    d += "output (tail):\n" + o.output_tail;
  if (!o.stderr_tail.empty())
    d += "stderr (tail):\n" + o.stderr_tail;
  return d;
}

} // namespace

std::string xml_escape(std::string_view s, bool attribute) {
  std::string out;
  out.reserve(s.size() + s.size() / 8);
  size_t i = 0;
  while (i < s.size()) {
    auto cp = next_code_point(s, i);
    switch (cp) {
      case '&':
        out += "&amp;";
        continue;
      case '<':
        out += "&lt;";
        continue;
      case '>':
        out += "&gt;";
        continue;
      case '"':
        out += attribute ? "&quot;" : "\"";
        continue;
      case '\n':
        out += attribute ? "&#10;" : "\n";
        continue;
      case '\r':
        out += "&#13;";
        continue;
      case '\t':
        out += attribute ? "&#9;" : "\t";
        continue;
      default:
        break;
    }
    if (cp < 0x20)
      // XML 1.0 has no way to carry these, not even as references.
      cp = 0x2400 + cp;
    else if (cp == 0xFFFE || cp == 0xFFFF)
      cp = replacement;
    put_utf8(out, cp);
  }
  return out;
}

std::pair<std::string, std::string> junit_names(const std::string& test_id,
                                                const std::string& suite) {
  for (auto* sep : {"::", "/", "."}) {
    auto pos = test_id.rfind(sep);
    auto len = std::char_traits<char>::length(sep);
    if (pos != std::string::npos && pos > 0 && pos + len < test_id.size())
      return {test_id.substr(0, pos), test_id.substr(pos + len)};
  }
  return {suite, test_id};
}

std::string junit_xml(const junit_suite& suite,
                      const std::vector<cluster_outcome>& rows,
                      const std::vector<std::string>& without_outcome) {
  size_t failures = 0, errors = 0, skipped = 0;
  double time = 0;
  for (auto& o : rows) {
    switch (verdict_of(o)) {
      case verdict::failure:
        ++failures;
        break;
      case verdict::error:
        ++errors;
        break;
      case verdict::skipped:
        ++skipped;
        break;
      case verdict::passed:
        break;
    }
    time += o.exec_seconds;
  }
  errors += without_outcome.size();
  auto tests = rows.size() + without_outcome.size();
  auto counts = attr("tests", std::to_string(tests))
                + attr("failures", std::to_string(failures))
                + attr("errors", std::to_string(errors))
                + attr("skipped", std::to_string(skipped));
  std::string x = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  x += "<testsuites" + attr("name", suite.name) + counts
       + attr("time", num(suite.wall_seconds)) + ">\n";
  x += "  <testsuite" + attr("name", suite.name) + counts
       + attr("time", num(suite.wall_seconds));
  if (suite.timestamp > 0)
    x += attr("timestamp", iso8601_local(suite.timestamp));
  if (!suite.hostname.empty())
    x += attr("hostname", suite.hostname);
  x += ">\n";
  x += "    <properties>\n      <property name=\"test_seconds\""
       + attr("value", num(time)) + "/>\n    </properties>\n";
  for (auto& o : rows) {
    auto [cls, name] = junit_names(o.test_id, suite.name);
    x += "    <testcase" + attr("classname", cls) + attr("name", name)
         + attr("time", num(o.exec_seconds)) + ">\n";
    auto v = verdict_of(o);
    if (v == verdict::skipped) {
      x += "      <skipped"
           + attr("message", o.error.empty() ? "cancelled" : o.error) + "/>\n";
    } else if (v != verdict::passed) {
      auto tag = v == verdict::failure ? "failure" : "error";
      auto message = o.error;
      if (message.empty())
        message = o.status;
      x += std::string{"      <"} + tag + attr("message", message)
           + attr("type", type_of(o)) + ">" + xml_escape(details(o), false)
           + "</" + tag + ">\n";
    }
    if (!o.output_tail.empty())
      x += "      <system-out>" + xml_escape(o.output_tail, false)
           + "</system-out>\n";
    if (!o.stderr_tail.empty())
      x += "      <system-err>" + xml_escape(o.stderr_tail, false)
           + "</system-err>\n";
    x += "    </testcase>\n";
  }
  for (auto& id : without_outcome) {
    auto [cls, name] = junit_names(id, suite.name);
    x += "    <testcase" + attr("classname", cls) + attr("name", name)
         + " time=\"0.000\">\n"
         + "      <error message=\"no outcome: the coordinator went away or "
           "--timeout was reached\" type=\"no_outcome\"/>\n"
         + "    </testcase>\n";
  }
  x += "  </testsuite>\n</testsuites>\n";
  return x;
}

} // namespace alb::report
