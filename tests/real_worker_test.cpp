// Real worker: commands run as child processes with env, cwd and timeout;
// exit status, duration and output tails (stdout and stderr apart) are
// reported; endless output is stopped at its cap; cancel kills.

#define BOOST_TEST_MODULE real_worker
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include <signal.h>
#include <unistd.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>

#include "actors/real_worker.hpp"
#include "actors/system.hpp"

using namespace alb;
using namespace std::chrono_literals;

namespace {

// Stands in for the scheduler: admits the worker in slot 7 and forwards
// every report to `probe`.
caf::behavior fake_scheduler(caf::event_based_actor* self, caf::actor probe) {
  return {
    [](join_atom, const worker_capabilities&, const worker_actor&) {
      return uint32_t{7};
    },
    [probe](report_batch& b) {
      for (auto& r : b.items)
        caf::anon_send(probe, r);
    },
    [](const load_report&) {
      // nop
    },
    [probe](revoke_atom, uint32_t slot) {
      caf::anon_send(probe, revoke_atom::value, slot);
    },
    [probe](revoke_reply& r) { caf::anon_send(probe, std::move(r)); },
    [self](leave_atom, uint32_t) { self->quit(); },
  };
}

struct fixture {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;

  fixture() {
    configure_system(cfg, 2, false);
    sys = std::make_unique<caf::actor_system>(cfg);
  }

  worker_actor spawn(caf::scoped_actor& probe, int slots) {
    auto sched = sys->spawn(fake_scheduler, caf::actor_cast<caf::actor>(probe));
    real_worker_options o;
    o.caps.worker_id = "w";
    o.caps.max_concurrent_tests = slots;
    return spawn_real_worker(*sys, caf::actor_cast<scheduler_actor>(sched),
                             std::move(o));
  }

  // Receives `n` reports, keyed by ref.
  std::map<uint32_t, work_report> collect(caf::scoped_actor& probe, size_t n,
                                          std::chrono::seconds limit = 20s) {
    std::map<uint32_t, work_report> out;
    while (out.size() < n) {
      bool timeout = false;
      probe->receive([&](work_report& r) { out[r.ref] = std::move(r); },
                     caf::after(limit) >> [&] { timeout = true; });
      if (timeout)
        break;
    }
    return out;
  }
};

std::string temp_dir() {
  char tmpl[] = "/tmp/alb-rw-XXXXXX";
  BOOST_REQUIRE(::mkdtemp(tmpl) != nullptr);
  return tmpl;
}

// Whether `pid` exists and is not a zombie (an orphan's zombie may wait
// for a PID 1 that does not reap).
bool alive(pid_t pid) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/stat"};
  std::string line;
  if (!std::getline(in, line))
    return false;
  auto close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size()
         && line[close + 2] != 'Z';
}

// Waits (bounded) until `path` names a pid.
pid_t wait_for_pid(const std::string& path) {
  for (int i = 0; i < 1000; ++i) {
    std::ifstream in{path};
    pid_t pid = 0;
    if (in >> pid && pid > 0)
      return pid;
    std::this_thread::sleep_for(10ms);
  }
  return -1;
}

// Waits (bounded) until no process `pid` exists, not even a zombie.
bool wait_gone(pid_t pid) {
  for (int i = 0; i < 500; ++i) {
    if (!alive(pid))
      return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

work_item cmd(uint32_t ref, std::vector<std::string> argv, double timeout = 0) {
  work_item w;
  w.ref = ref;
  w.gen = 1;
  w.test_id = "t" + std::to_string(ref);
  w.command = std::move(argv);
  w.timeout = timeout;
  return w;
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(real_worker, fixture)

BOOST_AUTO_TEST_CASE(exit_status_output_and_timeout_are_reported) {
  caf::scoped_actor probe{*sys};
  auto w = spawn(probe, 4);
  work_batch b;
  b.items.push_back(cmd(1, {"true"}));
  b.items.push_back(
    cmd(2, {"sh", "-c", "echo to-out; echo to-err >&2; exit 3"}));
  b.items.push_back(cmd(3, {"sleep", "30"}, 0.3));
  b.items.push_back(cmd(4, {"/nonexistent/binary"}));
  auto t0 = std::chrono::steady_clock::now();
  caf::anon_send(w, std::move(b));
  auto rs = collect(probe, 4);
  BOOST_REQUIRE_EQUAL(rs.size(), 4u);
  BOOST_TEST(rs[1].success);
  BOOST_TEST(rs[1].exit_code == 0);
  BOOST_TEST(!rs[2].success);
  BOOST_TEST(rs[2].exit_code == 3);
  // stdout and stderr apart.
  BOOST_TEST(rs[2].output_tail == "to-out\n");
  BOOST_TEST(rs[2].stderr_tail == "to-err\n");
  BOOST_TEST(rs[3].timed_out);
  BOOST_TEST(!rs[3].success);
  BOOST_TEST(rs[3].exec_seconds < 5);
  BOOST_TEST(rs[4].exit_code == 127);
  BOOST_CHECK(std::chrono::steady_clock::now() - t0 < 10s);
  caf::anon_send_exit(w, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_CASE(env_and_cwd_apply) {
  caf::scoped_actor probe{*sys};
  auto w = spawn(probe, 1);
  auto item = cmd(1, {"sh", "-c", "echo \"$(pwd) $ALB_T\""});
  item.env["ALB_T"] = "value";
  item.cwd = "/tmp";
  caf::anon_send(w, work_batch{{item}});
  auto rs = collect(probe, 1);
  BOOST_REQUIRE_EQUAL(rs.size(), 1u);
  BOOST_TEST(rs[1].output_tail == "/tmp value\n");
  caf::anon_send_exit(w, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_CASE(cancel_kills_the_child_and_frees_the_slot) {
  caf::scoped_actor probe{*sys};
  auto w = spawn(probe, 1);
  auto dir = temp_dir();
  auto pid_file = dir + "/pid";
  // The child says its pid once it runs.
  caf::anon_send(
    w, work_batch{{cmd(1, {"sh", "-c",
                           "echo $$ > " + pid_file + ".tmp; mv " + pid_file
                             + ".tmp " + pid_file + "; exec sleep 30"}),
                   cmd(2, {"true"})}});
  auto pid = wait_for_pid(pid_file);
  BOOST_REQUIRE(pid > 0);
  BOOST_REQUIRE(alive(pid));
  caf::anon_send(w, cancel_atom::value, uint32_t{1}, uint32_t{1});
  auto rs = collect(probe, 1, 10s);
  BOOST_REQUIRE_EQUAL(rs.size(), 1u);
  BOOST_TEST(rs.count(2) == 1u);
  BOOST_TEST(rs[2].success);
  // The cancelled child is gone (killed and reaped), not left running.
  BOOST_TEST(wait_gone(pid));
  caf::anon_send_exit(w, caf::exit_reason::user_shutdown);
  std::filesystem::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(announces_revokes_and_gives_back_only_unstarted_tests) {
  caf::scoped_actor probe{*sys};
  auto w = spawn(probe, 1);
  uint32_t slot = 0;
  probe->receive([&](revoke_atom, uint32_t s) { slot = s; },
                 caf::after(10s) >> [] {});
  BOOST_TEST(slot == 7u);
  auto dir = temp_dir();
  auto pid_file = dir + "/pid";
  caf::anon_send(
    w, work_batch{{cmd(1, {"sh", "-c",
                           "echo $$ > " + pid_file + ".tmp; mv " + pid_file
                             + ".tmp " + pid_file + "; exec sleep 30"}),
                   cmd(2, {"true"})}});
  BOOST_REQUIRE(wait_for_pid(pid_file) > 0);
  // Test 1 runs, test 2 waits for the only slot.
  caf::anon_send(caf::actor_cast<revocable_worker_actor>(w),
                 revoke_batch{{revoke_item{1, 1}, revoke_item{2, 1}}});
  revoke_reply reply;
  probe->receive([&](revoke_reply& r) { reply = std::move(r); },
                 caf::after(10s) >> [] {});
  BOOST_REQUIRE_EQUAL(reply.items.size(), 2u);
  BOOST_TEST(reply.slot == 7u);
  BOOST_TEST(reply.items[0].ref == 1u);
  BOOST_TEST(!reply.items[0].given_back);
  BOOST_TEST(reply.items[1].ref == 2u);
  BOOST_TEST(reply.items[1].given_back);
  // The given-back test never runs here: cancelling the running one frees
  // the slot and no report of test 2 follows.
  caf::anon_send(w, cancel_atom::value, uint32_t{1}, uint32_t{1});
  auto rs = collect(probe, 1, 1s);
  BOOST_TEST(rs.empty());
  caf::anon_send_exit(w, caf::exit_reason::user_shutdown);
  std::filesystem::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(tests_without_command_are_simulated) {
  caf::scoped_actor probe{*sys};
  auto w = spawn(probe, 2);
  work_item a;
  a.ref = 1;
  a.expected_duration = 0.1;
  work_item b;
  b.ref = 2;
  caf::anon_send(w, work_batch{{a, b}});
  auto rs = collect(probe, 2);
  BOOST_REQUIRE_EQUAL(rs.size(), 2u);
  BOOST_TEST(rs[1].success);
  BOOST_TEST(rs[1].exec_seconds >= 0.09);
  BOOST_TEST(rs[2].success);
  caf::anon_send_exit(w, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_CASE(endless_output_is_stopped_at_the_cap) {
  caf::scoped_actor probe{*sys};
  auto w = spawn(probe, 2);
  work_batch b;
  // Neither ends by itself: only the cap (64 KiB) stops them, long before
  // the 60 s timeout.
  auto a = cmd(1, {"yes", "spam"}, 60);
  a.max_output = 64 * 1024;
  auto e = cmd(2, {"sh", "-c", "yes out & yes err >&2"}, 60);
  e.max_output = 64 * 1024;
  b.items.push_back(std::move(a));
  b.items.push_back(std::move(e));
  auto t0 = std::chrono::steady_clock::now();
  caf::anon_send(w, std::move(b));
  auto rs = collect(probe, 2);
  BOOST_REQUIRE_EQUAL(rs.size(), 2u);
  for (uint32_t ref : {1u, 2u}) {
    BOOST_TEST(!rs[ref].success);
    BOOST_TEST(!rs[ref].timed_out);
    BOOST_TEST(rs[ref].error.find("output limit exceeded") != std::string::npos,
               rs[ref].error);
  }
  // The log holds exactly the first 64 KiB (not cut at a line), so the
  // tail is the end of those bytes.
  std::string first;
  while (first.size() < 64 * 1024)
    first += "spam\n";
  first.resize(64 * 1024);
  BOOST_TEST(rs[1].output_tail.size() == 2048u);
  BOOST_TEST(rs[1].output_tail == first.substr(first.size() - 2048));
  BOOST_TEST(
    (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(30)));
  caf::anon_send_exit(w, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_SUITE_END()
