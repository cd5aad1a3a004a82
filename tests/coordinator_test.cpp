// Coordinator: two actor systems in one process over loopback. Workers of
// the "node" system join with the token and run submitted commands; a wrong
// token is refused before anything reaches the scheduler. Plus the cluster
// helpers (tokens, endpoints, resources).

#define BOOST_TEST_MODULE coordinator
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <map>
#include <mutex>
#include <thread>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>

#include "actors/coordinator.hpp"
#include "actors/node.hpp"
#include "actors/real_worker.hpp"
#include "actors/system.hpp"

using namespace alb;
using namespace std::chrono_literals;

namespace {

struct two_systems {
  // Declared first so they outlive the actor systems: the coordinator's log
  // callback may still run while the systems shut down.
  std::vector<std::string> log;
  std::mutex log_mtx;
  caf::actor_system_config cfg_a;
  caf::actor_system_config cfg_b;
  std::unique_ptr<caf::actor_system> a;
  std::unique_ptr<caf::actor_system> b;
  coordinator_actor coord;
  uint16_t port = 0;

  two_systems() {
    for (auto* c : {&cfg_a, &cfg_b}) {
      configure_system(*c, 2, false);
      c->load<caf::io::middleman>();
    }
    a = std::make_unique<caf::actor_system>(cfg_a);
    b = std::make_unique<caf::actor_system>(cfg_b);
    coordinator_options o;
    o.token = "the-token";
    o.log = [this](const std::string& line) {
      std::lock_guard<std::mutex> g{log_mtx};
      log.push_back(line);
    };
    coord = spawn_coordinator(*a, std::move(o));
    auto p = a->middleman().publish(coord, 0, "127.0.0.1", true);
    BOOST_REQUIRE(p);
    port = *p;
  }

  ~two_systems() {
    caf::anon_send_exit(coord, caf::exit_reason::user_shutdown);
    coord = nullptr;
    // The node side first, so it does not talk to a vanished coordinator.
    b.reset();
    a.reset();
  }

  coordinator_actor remote() {
    auto h = b->middleman().remote_actor<coordinator_actor>("127.0.0.1", port);
    BOOST_REQUIRE(h);
    return *h;
  }

  worker_actor node_worker(coordinator_actor c, const std::string& token,
                           const std::string& id) {
    real_worker_options o;
    o.caps.worker_id = id;
    o.caps.cpu_cores = 2;
    o.caps.available_memory = 4;
    o.coordinator = c;
    o.token = token;
    o.node = "node-b";
    return spawn_real_worker(*b, scheduler_actor{}, std::move(o));
  }

  bool logged(const std::string& needle) {
    std::lock_guard<std::mutex> g{log_mtx};
    for (auto& l : log)
      if (l.find(needle) != std::string::npos)
        return true;
    return false;
  }
};

cluster_test shell(const std::string& id, const std::string& script) {
  cluster_test t;
  t.req.test_id = id;
  t.command = {"sh", "-c", script};
  return t;
}

} // namespace

BOOST_AUTO_TEST_SUITE(helpers)

BOOST_AUTO_TEST_CASE(tokens_compare_exactly) {
  BOOST_TEST(tokens_equal("abc", "abc"));
  BOOST_TEST(!tokens_equal("abc", "abd"));
  BOOST_TEST(!tokens_equal("abc", "abcd"));
  BOOST_TEST(!tokens_equal("", "abc"));
}

BOOST_AUTO_TEST_CASE(endpoints_parse_or_throw) {
  auto ep = parse_endpoint("127.0.0.1:8080");
  BOOST_TEST(ep.first == "127.0.0.1");
  BOOST_TEST(ep.second == 8080);
  BOOST_TEST(parse_endpoint("[::1]:9").first == "::1");
  BOOST_CHECK_THROW(parse_endpoint("nohost"), cluster_error);
  BOOST_CHECK_THROW(parse_endpoint("h:0"), cluster_error);
  BOOST_CHECK_THROW(parse_endpoint("h:70000"), cluster_error);
  BOOST_CHECK_THROW(parse_endpoint("h:80x"), cluster_error);
}

BOOST_AUTO_TEST_CASE(resources_split_over_workers) {
  node_resources r;
  r.cores = 5;
  r.memory_gb = 10;
  r.accelerators = parse_accelerators("cuda:3");
  auto ws = split_resources(r, 2, "n");
  BOOST_REQUIRE_EQUAL(ws.size(), 2u);
  BOOST_TEST(ws[0].worker_id == "n/w0");
  BOOST_TEST(ws[0].cpu_cores == 3);
  BOOST_TEST(ws[1].cpu_cores == 2);
  BOOST_TEST(ws[0].available_memory == 5.0);
  BOOST_TEST(ws[0].available_accelerators.at("cuda") == 2);
  BOOST_TEST(ws[1].available_accelerators.at("cuda") == 1);
  BOOST_CHECK_THROW(parse_accelerators("cuda:x"), cluster_error);
  BOOST_CHECK_THROW(split_resources(r, 0, "n"), cluster_error);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_SUITE(coordinator, two_systems)

BOOST_AUTO_TEST_CASE(remote_workers_run_submitted_commands) {
  auto c = remote();
  auto w1 = node_worker(c, "the-token", "node-b/w0");
  auto w2 = node_worker(c, "the-token", "node-b/w1");
  caf::scoped_actor client{*b};
  cluster_submission s;
  s.token = "the-token";
  s.tests.push_back(shell("ok", "echo fine"));
  s.tests.push_back(shell("bad", "exit 5"));
  s.tests.push_back(shell("ok", "true")); // duplicate id: rejected
  uint64_t accepted = 0;
  client
    ->request(c, 10s, submit_atom::value, s,
              caf::actor_cast<caf::actor>(client))
    .receive([&](uint64_t n) { accepted = n; },
             [&](caf::error& e) { BOOST_FAIL(b->render(e)); });
  BOOST_TEST(accepted == 3u);
  std::vector<cluster_outcome> got;
  while (got.size() < 3) {
    bool timeout = false;
    client->receive(
      [&](outcome_batch& ob) {
        for (auto& o : ob.items)
          got.push_back(o);
      },
      caf::after(20s) >> [&] { timeout = true; });
    if (timeout)
      break;
  }
  BOOST_REQUIRE_EQUAL(got.size(), 3u);
  std::multimap<std::string, cluster_outcome> by_id;
  for (auto& o : got)
    by_id.emplace(o.test_id, o);
  auto bad = by_id.find("bad")->second;
  BOOST_TEST(bad.status == "failed");
  BOOST_TEST(bad.exit_code == 5);
  int ok_completed = 0, ok_rejected = 0;
  for (auto [i, e] = by_id.equal_range("ok"); i != e; ++i) {
    if (i->second.status == "completed") {
      ++ok_completed;
      BOOST_TEST(i->second.output_tail == "fine\n");
      BOOST_TEST(i->second.worker_id.rfind("node-b/", 0) == 0);
    } else if (i->second.error.find("already submitted") != std::string::npos) {
      ++ok_rejected;
    }
  }
  BOOST_TEST(ok_completed == 1);
  BOOST_TEST(ok_rejected == 1);
  BOOST_TEST(logged("node 'node-b' joined from 127.0.0.1:"));
  caf::anon_send_exit(w1, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(w2, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_CASE(a_wrong_token_is_refused_before_registration) {
  auto c = remote();
  caf::scoped_actor self{*b};
  auto w = node_worker(c, "guess", "intruder/w0");
  self->monitor(w);
  caf::error reason;
  self->receive([&](caf::down_msg& dm) { reason = dm.reason; },
                caf::after(10s) >> [] { BOOST_FAIL("worker not refused"); });
  BOOST_CHECK(reason == caf::sec::invalid_argument);
  for (int i = 0; i < 100 && !logged("refused worker 'intruder/w0'"); ++i)
    std::this_thread::sleep_for(50ms);
  BOOST_TEST(logged("refused worker 'intruder/w0' of node 'node-b' from "
                    "127.0.0.1:"));
  BOOST_TEST(!logged("registered"));
  cluster_submission s;
  s.token = "guess";
  s.tests.push_back(shell("x", "true"));
  bool refused = false;
  self
    ->request(c, 10s, submit_atom::value, s, caf::actor_cast<caf::actor>(self))
    .receive([](uint64_t) {}, [&](caf::error&) { refused = true; });
  BOOST_TEST(refused);
}

BOOST_AUTO_TEST_SUITE_END()
