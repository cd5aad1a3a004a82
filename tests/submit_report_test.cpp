// What `alb submit` writes about outcomes: the JSON fields (exit code and
// signal apart, ISO-8601 times), the per-test and progress lines, and the
// JUnit XML (names, verdicts, counts, escaping of anything a test printed).

#define BOOST_TEST_MODULE submit_report
#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "report/junit.hpp"
#include "report/submit_report.hpp"

using namespace alb;
using namespace alb::report;

namespace {

struct utc_zone {
  utc_zone() {
    ::setenv("TZ", "UTC", 1);
    ::tzset();
  }
};

cluster_outcome ran(std::string id, bool ok, int exit_code, int sig = 0) {
  cluster_outcome o;
  o.test_id = std::move(id);
  o.status = ok ? "completed" : "failed";
  o.success = ok;
  o.exit_code = sig ? 128 + sig : exit_code;
  o.signal = sig;
  o.exec_seconds = 1.25;
  o.attempts = 1;
  o.worker_id = "n1/w0";
  o.node = "n1";
  o.submitted_at = 1796123999.5;
  o.started_at = 1796124000.0;
  o.ended_at = 1796124001.25;
  if (!ok)
    o.error = sig ? "killed by signal " + std::to_string(sig)
                  : "exit status " + std::to_string(exit_code);
  return o;
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(submit_report, utc_zone)

BOOST_AUTO_TEST_CASE(json_keeps_exit_code_and_signal_apart) {
  auto j = outcomes_json(
    {ran("a", true, 0), ran("b", false, 3), ran("c", false, 0, 9)});
  BOOST_TEST(j[0]["exit_code"] == 0);
  BOOST_TEST(j[0]["signal"].is_null());
  BOOST_TEST(j[1]["exit_code"] == 3);
  BOOST_TEST(j[2]["exit_code"].is_null());
  BOOST_TEST(j[2]["signal"] == 9);
  BOOST_TEST(j[2]["signal_name"] == "SIGKILL");
}

BOOST_AUTO_TEST_CASE(json_times_are_iso8601_with_zone_and_durations) {
  auto j = outcomes_json({ran("a", true, 0)});
  BOOST_TEST(j[0]["started_at"] == "2026-12-01T11:20:00.000+00:00");
  BOOST_TEST(j[0]["ended_at"] == "2026-12-01T11:20:01.250+00:00");
  BOOST_TEST(j[0]["submitted_at"] == "2026-12-01T11:19:59.500+00:00");
  BOOST_TEST(j[0]["queued_seconds"] == 0.5);
  BOOST_TEST(j[0]["duration_seconds"] == 1.25);
  BOOST_TEST(j[0]["node"] == "n1");
  cluster_outcome never;
  never.test_id = "x";
  never.status = "failed";
  auto k = outcomes_json({never});
  BOOST_TEST(k[0]["started_at"].is_null());
  BOOST_TEST(k[0]["queued_seconds"].is_null());
}

BOOST_AUTO_TEST_CASE(timeout_has_no_exit_code) {
  auto o = ran("t", false, 0);
  o.timed_out = true;
  o.exit_code = -1;
  auto j = outcomes_json({o});
  BOOST_TEST(j[0]["exit_code"].is_null());
  BOOST_TEST(j[0]["signal"].is_null());
}

BOOST_AUTO_TEST_CASE(finished_line_names_node_and_why) {
  BOOST_TEST(finished_line(ran("a", true, 0), 3, 200)
             == "[  3/200] passed   a  1.25 s  on n1 (n1/w0)");
  BOOST_TEST(finished_line(ran("b", false, 3), 4, 10)
             == "[ 4/10] failed   b  1.25 s  on n1 (n1/w0)  exit 3: exit "
                "status 3");
  auto line = finished_line(ran("c", false, 0, 11), 1, 1);
  BOOST_TEST(line.find("SIGSEGV") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(progress_line_counts) {
  progress_counts c;
  c.total = 200;
  c.passed = 35;
  c.failed = 5;
  BOOST_TEST(progress_line(c, 12.34)
             == "[   12.3s] 40/200 ended: 35 passed, 5 failed; 160 open");
  c.running = 10;
  c.waiting = 150;
  c.reasons = "150 all fitting nodes busy";
  BOOST_TEST(progress_line(c, 1)
             == "[    1.0s] 40/200 ended: 35 passed, 5 failed; 10 running, "
                "150 waiting (150 all fitting nodes busy)");
}

BOOST_AUTO_TEST_CASE(xml_escape_makes_any_bytes_well_formed) {
  BOOST_TEST(xml_escape("a<b>&\"c\"", false) == "a&lt;b&gt;&amp;\"c\"");
  BOOST_TEST(xml_escape("a<b>&\"c\"", true) == "a&lt;b&gt;&amp;&quot;c&quot;");
  BOOST_TEST(xml_escape("x\ny\tz", true) == "x&#10;y&#9;z");
  BOOST_TEST(xml_escape("x\ny", false) == "x\ny");
  // ESC and NUL: XML 1.0 cannot carry them at all, so control pictures.
  BOOST_TEST(xml_escape(std::string{"\x1b[31m\0!", 7}, false)
             == "\xe2\x90\x9b[31m\xe2\x90\x80!");
  // Invalid UTF-8, a truncated sequence, an overlong '/', a surrogate.
  BOOST_TEST(xml_escape("\xff", false) == "\xef\xbf\xbd");
  BOOST_TEST(xml_escape("ok\xc3", false) == "ok\xef\xbf\xbd");
  BOOST_TEST(xml_escape("\xc0\xaf", false) == "\xef\xbf\xbd");
  BOOST_TEST(xml_escape("\xed\xa0\x80", false) == "\xef\xbf\xbd");
  // Valid multi-byte text passes unchanged.
  BOOST_TEST(xml_escape("gr\xc3\xbc\xc3\x9f \xf0\x9f\x98\x80", false)
             == "gr\xc3\xbc\xc3\x9f \xf0\x9f\x98\x80");
}

BOOST_AUTO_TEST_CASE(junit_names_split_at_the_last_separator) {
  using p = std::pair<std::string, std::string>;
  BOOST_TEST((junit_names("pkg.mod.test_a", "s") == p{"pkg.mod", "test_a"}));
  BOOST_TEST((junit_names("a::b::c", "s") == p{"a::b", "c"}));
  BOOST_TEST((junit_names("dir/sub/t", "s") == p{"dir/sub", "t"}));
  BOOST_TEST((junit_names("plain", "suite") == p{"suite", "plain"}));
  BOOST_TEST((junit_names(".hidden", "suite") == p{"suite", ".hidden"}));
}

BOOST_AUTO_TEST_CASE(junit_verdicts_and_counts) {
  auto timeout = ran("m.t", false, 0);
  timeout.timed_out = true;
  auto cancelled = ran("m.c", false, 0);
  cancelled.status = "cancelled";
  cancelled.error = "cancelled by the client";
  junit_suite s;
  s.name = "suite";
  s.timestamp = 1796124000.0;
  s.wall_seconds = 3.5;
  auto x = junit_xml(s,
                     {ran("m.ok", true, 0), ran("m.f", false, 3),
                      ran("m.k", false, 0, 9), timeout, cancelled},
                     {"m.lost"});
  auto has
    = [&x](const std::string& s) { return x.find(s) != std::string::npos; };
  BOOST_TEST(has("<testsuites name=\"suite\" tests=\"6\" failures=\"1\" "
                 "errors=\"3\" skipped=\"1\" time=\"3.500\">"));
  BOOST_TEST(has("timestamp=\"2026-12-01T11:20:00.000+00:00\""));
  BOOST_TEST(has("<testcase classname=\"m\" name=\"ok\" time=\"1.250\">"));
  BOOST_TEST(has("<failure message=\"exit status 3\" type=\"exit_status\">"));
  BOOST_TEST(has("type=\"signal\">killed by SIGKILL"));
  BOOST_TEST(has("type=\"timeout\""));
  BOOST_TEST(has("<skipped message=\"cancelled by the client\"/>"));
  BOOST_TEST(has("<testcase classname=\"m\" name=\"lost\" time=\"0.000\">"));
  BOOST_TEST(has("type=\"no_outcome\""));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_CASE(stats_count_outcomes_and_moves) {
  std::vector<cluster_outcome> rows(4);
  rows[0].status = "completed";
  rows[0].migrated = 1;
  rows[1].status = "completed";
  rows[1].stolen = 2;
  rows[1].attempts = 2;
  rows[2].status = "failed";
  rows[2].timed_out = true;
  rows[3].status = "cancelled";
  auto j = outcome_stats(rows, 3);
  BOOST_TEST(j["completed"] == 2);
  BOOST_TEST(j["failed"] == 1);
  BOOST_TEST(j["cancelled"] == 1);
  BOOST_TEST(j["timed_out"] == 1);
  BOOST_TEST(j["without_outcome"] == 3);
  BOOST_TEST(j["migrated"] == 1);
  BOOST_TEST(j["stolen"] == 2);
  BOOST_TEST(j["tests_moved"] == 2);
  BOOST_TEST(j["tests_placed_again"] == 1);
  auto out = outcomes_json(rows);
  BOOST_TEST(out[1]["stolen"] == 2);
  BOOST_TEST(out[0]["migrated"] == 1);
  BOOST_TEST(moves_line(rows)
             == "rebalanced before they started: 1 migrated, 2 stolen");
  BOOST_TEST(moves_line({}) == "");
  submission_summary s;
  s.open = 3;
  BOOST_TEST(result_document(s, rows)["stats"] == j);
}
