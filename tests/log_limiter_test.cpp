// The one rate limiter behind every line an outsider (or a full disk) can
// cause: each kind once per window, a cap per window, one summary line.

#define BOOST_TEST_MODULE log_limiter
#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "runtime/log_limiter.hpp"

using namespace alb;

BOOST_AUTO_TEST_CASE(each_kind_is_shown_once_per_window) {
  log_limiter l{10, 10.0, "things refused"};
  std::vector<std::string> summaries;
  auto sum = [&](const std::string& s) { summaries.push_back(s); };
  BOOST_TEST(l.admit("a", 0.0, sum));
  BOOST_TEST(!l.admit("a", 1.0, sum));
  BOOST_TEST(l.admit("b", 2.0, sum));
  BOOST_TEST(!l.admit("a", 9.9, sum));
  BOOST_TEST(l.hidden() == 2u);
  BOOST_TEST(summaries.empty());
  // A new window: the two hidden ones are summarised, "a" shows again.
  BOOST_TEST(l.admit("a", 10.0, sum));
  BOOST_REQUIRE_EQUAL(summaries.size(), 1u);
  BOOST_TEST(summaries[0]
             == "2 more things refused in the last 10 s (not shown one by "
                "one)");
}

BOOST_AUTO_TEST_CASE(a_flood_of_kinds_is_capped) {
  log_limiter l{3, 10.0, "things refused"};
  int shown = 0;
  for (int i = 0; i < 1000; ++i)
    shown += l.admit("kind-" + std::to_string(i), i * 0.001, nullptr) ? 1 : 0;
  BOOST_TEST(shown == 3);
  BOOST_TEST(l.hidden() == 997u);
}

BOOST_AUTO_TEST_CASE(roll_reports_without_a_new_line) {
  log_limiter l{1, 10.0, "connections refused"};
  std::vector<std::string> summaries;
  auto sum = [&](const std::string& s) { summaries.push_back(s); };
  l.admit("x", 0, sum);
  l.admit("y", 1, sum);
  l.roll(5, sum);
  BOOST_TEST(summaries.empty());
  l.roll(11, sum);
  BOOST_REQUIRE_EQUAL(summaries.size(), 1u);
  BOOST_TEST(summaries[0].rfind("1 more connections refused", 0) == 0);
  BOOST_TEST(l.hidden() == 0u);
}

BOOST_AUTO_TEST_CASE(finish_reports_what_was_hidden_at_once) {
  log_limiter l{1, 10.0, "journal errors"};
  std::vector<std::string> summaries;
  auto sum = [&](const std::string& s) { summaries.push_back(s); };
  l.admit("x", 0, sum);
  l.admit("x", 1, sum);
  l.admit("x", 2.5, sum);
  l.finish(3.2, sum);
  BOOST_REQUIRE_EQUAL(summaries.size(), 1u);
  BOOST_TEST(summaries[0]
             == "2 more journal errors in the last 4 s (not shown one by "
                "one)");
  // A new window from there: nothing hidden, nothing said.
  l.finish(4, sum);
  BOOST_TEST(summaries.size() == 1u);
  BOOST_TEST(l.admit("x", 4.5, sum));
}
