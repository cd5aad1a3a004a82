// Who is overdue (runtime/liveness): nodes silent past the timeout and
// running tests past their deadline, each reported once, with times passed
// in.

#define BOOST_TEST_MODULE liveness
#include <boost/test/unit_test.hpp>

#include <vector>

#include "runtime/liveness.hpp"

using namespace alb;

using ids = std::vector<uint64_t>;

BOOST_AUTO_TEST_CASE(a_node_heard_within_the_timeout_is_not_lost) {
  node_watch w;
  w.heard(1, 0.0);
  w.heard(1, 10.0);
  BOOST_TEST(w.lost(24.9, 15.0).empty());
  BOOST_TEST(w.lost(25.0, 15.0).empty()); // exactly the timeout: not yet
  BOOST_TEST(w.lost(25.1, 15.0) == ids{1}, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_lost_node_is_reported_once_and_forgotten) {
  node_watch w;
  w.heard(7, 0.0);
  BOOST_TEST(w.lost(16.0, 15.0) == ids{7}, boost::test_tools::per_element());
  BOOST_TEST(w.lost(100.0, 15.0).empty());
  BOOST_TEST(w.size() == 0u);
  BOOST_TEST(w.last_heard(7) == -1.0);
}

BOOST_AUTO_TEST_CASE(most_overdue_first_and_only_the_overdue) {
  node_watch w;
  w.heard(1, 5.0);
  w.heard(2, 1.0);
  w.heard(3, 19.0);
  w.heard(4, 3.0);
  BOOST_TEST(w.lost(20.0, 15.0) == (ids{2, 4}),
             boost::test_tools::per_element());
  BOOST_TEST(w.size() == 2u);
}

BOOST_AUTO_TEST_CASE(a_late_older_heartbeat_does_not_age_a_node) {
  node_watch w;
  w.heard(1, 10.0);
  w.heard(1, 4.0);
  BOOST_TEST(w.last_heard(1) == 10.0);
  BOOST_TEST(w.lost(20.0, 15.0).empty());
}

BOOST_AUTO_TEST_CASE(a_forgotten_node_is_never_lost) {
  node_watch w;
  w.heard(1, 0.0);
  w.forget(1);
  w.forget(99); // unknown: ignored
  BOOST_TEST(w.lost(1000.0, 15.0).empty());
}

BOOST_AUTO_TEST_CASE(tests_expire_at_their_deadline_earliest_first) {
  test_deadlines d;
  d.arm(10, 5.0);
  d.arm(11, 3.0);
  d.arm(12, 9.0);
  BOOST_TEST(d.expired(2.9).empty());
  BOOST_TEST(d.expired(5.0) == (ids{11, 10}), boost::test_tools::per_element());
  BOOST_TEST(d.size() == 1u);
  BOOST_TEST(d.expired(5.0).empty()); // reported once
  BOOST_TEST(d.expired(9.5) == ids{12}, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_disarmed_test_never_expires) {
  test_deadlines d;
  d.arm(1, 5.0);
  d.arm(2, 5.0);
  d.disarm(1);
  d.disarm(42); // unknown: ignored
  BOOST_TEST(d.expired(100.0) == ids{2}, boost::test_tools::per_element());
  BOOST_TEST(d.deadline_of(1) == -1.0);
}

BOOST_AUTO_TEST_CASE(re_arming_moves_the_deadline) {
  test_deadlines d;
  d.arm(1, 5.0);
  d.arm(1, 50.0);
  BOOST_TEST(d.expired(10.0).empty());
  BOOST_TEST(d.deadline_of(1) == 50.0);
  BOOST_TEST(d.expired(50.0) == ids{1}, boost::test_tools::per_element());
  BOOST_TEST(d.size() == 0u);
}
