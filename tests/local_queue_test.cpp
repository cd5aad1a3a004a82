// The worker's local queue: slots, revoke of started vs waiting placements,
// cancel of either, and flushes that wait for the join.

#define BOOST_TEST_MODULE local_queue
#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "runtime/local_queue.hpp"

using namespace alb;

namespace {

struct item {
  uint32_t ref = 0;
  uint32_t gen = 0;
  std::string name;
};

struct report {
  uint32_t ref = 0;
};

using queue = local_queue<item, report>;

// Starts everything that fits, each as running; returns the sequence
// numbers by ref.
std::vector<std::pair<uint32_t, uint64_t>> start_all(queue& q, double now) {
  std::vector<std::pair<uint32_t, uint64_t>> out;
  q.start_ready(now, [&](uint64_t seq, queue::started& s) {
    out.emplace_back(s.item.ref, seq);
    return true;
  });
  return out;
}

} // namespace

BOOST_AUTO_TEST_CASE(starts_at_most_its_slots_in_arrival_order) {
  queue q{2};
  for (uint32_t r = 1; r <= 4; ++r)
    q.push(item{r, 1, "t"}, 1.0);
  auto s = start_all(q, 3.5);
  BOOST_REQUIRE_EQUAL(s.size(), 2u);
  BOOST_TEST(s[0].first == 1u);
  BOOST_TEST(s[1].first == 2u);
  BOOST_TEST(q.running() == 2u);
  BOOST_TEST(q.queued() == 2u);
  BOOST_TEST(q.find_running(s[0].second)->queued_seconds == 2.5);
  // One ends: exactly one more starts.
  BOOST_REQUIRE(q.finish(s[0].second).has_value());
  auto s2 = start_all(q, 4);
  BOOST_REQUIRE_EQUAL(s2.size(), 1u);
  BOOST_TEST(s2[0].first == 3u);
  BOOST_TEST(!q.finish(s[0].second).has_value());
}

BOOST_AUTO_TEST_CASE(a_start_that_ends_at_once_frees_its_slot) {
  queue q{1};
  q.push(item{1, 1, ""}, 0);
  q.push(item{2, 1, ""}, 0);
  std::vector<uint32_t> seen;
  q.start_ready(0, [&](uint64_t, queue::started& s) {
    seen.push_back(s.item.ref);
    return false;
  });
  BOOST_TEST(seen.size() == 2u);
  BOOST_TEST(q.running() == 0u);
}

BOOST_AUTO_TEST_CASE(revoke_gives_back_a_waiting_placement_only) {
  queue q{1};
  q.push(item{1, 1, "a"}, 0);
  q.push(item{2, 1, "b"}, 0);
  auto s = start_all(q, 0);
  BOOST_REQUIRE_EQUAL(s.size(), 1u);
  // Started: it stays, so it never runs twice.
  BOOST_TEST(!q.revoke(1, 1));
  BOOST_TEST(q.running() == 1u);
  // Wrong generation: an older placement of the same test is not this one.
  BOOST_TEST(!q.revoke(2, 7));
  BOOST_TEST(q.queued() == 1u);
  // Waiting: it goes, and is never started here.
  BOOST_TEST(q.revoke(2, 1));
  BOOST_TEST(q.queued() == 0u);
  BOOST_REQUIRE(q.finish(s[0].second).has_value());
  BOOST_TEST(start_all(q, 1).empty());
  // Finished: nothing to give back.
  BOOST_TEST(!q.revoke(1, 1));
}

BOOST_AUTO_TEST_CASE(cancel_removes_waiting_or_running_and_names_the_run) {
  queue q{1};
  q.push(item{1, 1, "a"}, 0);
  q.push(item{2, 1, "b"}, 0);
  auto s = start_all(q, 0);
  uint64_t seq = 99;
  BOOST_TEST((q.cancel(2, 1, &seq) == cancel_found::queued));
  BOOST_TEST(seq == 99u);
  BOOST_TEST((q.cancel(1, 1, &seq) == cancel_found::running));
  BOOST_TEST(seq == s[0].second);
  BOOST_TEST(q.running() == 0u);
  // The cancelled run's end, arriving later, is ignored.
  BOOST_TEST(!q.finish(seq).has_value());
  BOOST_TEST((q.cancel(1, 1) == cancel_found::nothing));
}

BOOST_AUTO_TEST_CASE(flush_holds_reports_until_joined_then_hands_each_once) {
  queue q;
  q.report(report{1});
  q.report(report{2});
  BOOST_TEST(q.flush().empty());
  BOOST_TEST(q.pending_reports() == 2u);
  q.set_joined();
  auto out = q.flush();
  BOOST_REQUIRE_EQUAL(out.size(), 2u);
  BOOST_TEST(out[0].ref == 1u);
  BOOST_TEST(out[1].ref == 2u);
  BOOST_TEST(q.flush().empty());
  q.report(report{3});
  BOOST_TEST(q.flush().size() == 1u);
}

BOOST_AUTO_TEST_CASE(running_seqs_lists_what_must_be_stopped) {
  queue q{3};
  for (uint32_t r = 1; r <= 3; ++r)
    q.push(item{r, 1, ""}, 0);
  auto s = start_all(q, 0);
  auto seqs = q.running_seqs();
  BOOST_TEST(seqs.size() == 3u);
}
