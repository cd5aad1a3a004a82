// Real worker: commands run as child processes with env, cwd and timeout;
// exit status, duration and output tail are reported; cancel kills.

#define BOOST_TEST_MODULE real_worker
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <map>
#include <thread>

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
  BOOST_TEST(rs[2].output_tail.find("to-out") != std::string::npos);
  BOOST_TEST(rs[2].output_tail.find("to-err") != std::string::npos);
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
  caf::anon_send(w, work_batch{{cmd(1, {"sleep", "30"}), cmd(2, {"true"})}});
  std::this_thread::sleep_for(200ms);
  caf::anon_send(w, cancel_atom::value, uint32_t{1}, uint32_t{1});
  auto rs = collect(probe, 1, 10s);
  BOOST_REQUIRE_EQUAL(rs.size(), 1u);
  BOOST_TEST(rs.count(2) == 1u);
  BOOST_TEST(rs[2].success);
  caf::anon_send_exit(w, caf::exit_reason::user_shutdown);
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

BOOST_AUTO_TEST_SUITE_END()
