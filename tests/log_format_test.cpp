// The log line of every long-running command: ISO-8601 date, time and
// zone, level, component, message; as text or as one JSON object per line.

#define BOOST_TEST_MODULE log_format
#include <boost/test/unit_test.hpp>

#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "runtime/log_format.hpp"

using namespace alb;

// 2026-12-01T11:20:00.123 UTC.
constexpr double t = 1796124000.123;

BOOST_AUTO_TEST_CASE(iso8601_has_milliseconds_and_zone) {
  BOOST_TEST(iso8601(t, 0) == "2026-12-01T11:20:00.123+00:00");
  BOOST_TEST(iso8601(t, 3600) == "2026-12-01T12:20:00.123+01:00");
  BOOST_TEST(iso8601(t, -(5 * 3600 + 30 * 60))
             == "2026-12-01T05:50:00.123-05:30");
  // Rounding carries into the second instead of writing ".1000".
  BOOST_TEST(iso8601(1796124000.9996, 0) == "2026-12-01T11:20:01.000+00:00");
  // Across midnight with an offset.
  BOOST_TEST(iso8601(1796169599.0, 7200) == "2026-12-02T01:59:59.000+02:00");
}

BOOST_AUTO_TEST_CASE(text_line_is_ts_level_component_message) {
  BOOST_TEST(format_log_line(log_format::text, t, 0, log_level::info,
                             "coordinator", "node 'n1' joined")
             == "2026-12-01T11:20:00.123+00:00 INFO coordinator: node 'n1' "
                "joined");
  BOOST_TEST(
    format_log_line(log_format::text, t, 0, log_level::warning, "guard", "x")
    == "2026-12-01T11:20:00.123+00:00 WARNING guard: x");
}

BOOST_AUTO_TEST_CASE(text_line_stays_one_line) {
  auto l = format_log_line(log_format::text, t, 0, log_level::error, "node",
                           "a\nb\x1b[2Jc");
  BOOST_TEST(l == "2026-12-01T11:20:00.123+00:00 ERROR node: a\\nb\\x1b[2Jc");
}

BOOST_AUTO_TEST_CASE(json_line_has_the_four_fields) {
  auto l = format_log_line(log_format::json, t, 3600, log_level::debug,
                           "scheduler", "placed 3 tests\n\xff");
  BOOST_TEST(l.find('\n') == std::string::npos);
  auto j = nlohmann::json::parse(l);
  BOOST_TEST(j.size() == 4u);
  BOOST_TEST(j["ts"] == "2026-12-01T12:20:00.123+01:00");
  BOOST_TEST(j["level"] == "DEBUG");
  BOOST_TEST(j["component"] == "scheduler");
  BOOST_TEST(j["msg"] == "placed 3 tests\n\xef\xbf\xbd");
}

BOOST_AUTO_TEST_CASE(levels_and_formats_parse) {
  BOOST_TEST((log_level_of("DEBUG") == log_level::debug));
  BOOST_TEST((log_level_of("WARNING") == log_level::warning));
  BOOST_TEST((log_level_of("ERROR") == log_level::error));
  BOOST_TEST((log_level_of("INFO") == log_level::info));
  BOOST_TEST((parse_log_format("json", "--log-format") == log_format::json));
  BOOST_TEST((parse_log_format("text", "--log-format") == log_format::text));
  try {
    parse_log_format("xml", "--log-format");
    BOOST_FAIL("xml accepted");
  } catch (const std::invalid_argument& e) {
    BOOST_TEST(std::string{e.what()}
               == "--log-format: 'xml' is not a log format (text or json)");
  }
}
