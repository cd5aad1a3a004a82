// Coordinator: two actor systems in one process over loopback. Workers of
// the "node" system join with the token and run submitted commands; a wrong
// token is refused before anything reaches the scheduler. Plus the cluster
// helpers (tokens, endpoints, resources).

#define BOOST_TEST_MODULE coordinator
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include <cerrno>
#include <csignal>
#include <sys/stat.h>
#include <unistd.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <nlohmann/json.hpp>

#include "actors/caf_ec.hpp"
#include "actors/coordinator.hpp"
#include "actors/coordinator_ended_logs.hpp"
#include "actors/node.hpp"
#include "actors/node_uplink.hpp"
#include "actors/real_worker.hpp"
#include "actors/system.hpp"
#include "runtime/journal.hpp"
#include "runtime/test_logs.hpp"

using namespace alb;
using namespace std::chrono_literals;

namespace {

/// Opens a session on `c` for `client` (its outcomes go to it); fails the
/// test when refused.
client_session_actor hello(caf::scoped_actor& client, coordinator_actor c,
                           const std::string& token,
                           const std::string& key = "") {
  client_session_actor ses;
  client
    ->request(c, 10s, hello_atom::value,
              client_hello{token, caf::actor_cast<caf::actor>(client), key})
    .receive([&](client_session_actor& s) { ses = std::move(s); },
             [&](caf::error& e) { BOOST_FAIL(to_string(e)); });
  return ses;
}

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
    stop_coordinator(*a, coord);
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
                           const std::string& id,
                           node_uplink_actor uplink = {}) {
    real_worker_options o;
    o.caps.worker_id = id;
    o.caps.cpu_cores = 2;
    o.caps.available_memory = 4;
    o.coordinator = c;
    o.token = token;
    o.node = "node-b";
    o.uplink = std::move(uplink);
    return spawn_real_worker(*b, scheduler_actor{}, std::move(o));
  }

  /// Coordinator statistics (JSON), asked on a session of `c`.
  nlohmann::json stats(coordinator_actor c) {
    caf::scoped_actor self{*b};
    auto ses = hello(self, c, "the-token");
    nlohmann::json j;
    self->request(ses, 10s, stats_atom::value)
      .receive([&](std::string& s) { j = nlohmann::json::parse(s); },
               [&](caf::error& e) { BOOST_FAIL(b->render(e)); });
    return j;
  }

  bool logged(const std::string& needle) {
    std::lock_guard<std::mutex> g{log_mtx};
    for (auto& l : log)
      if (l.find(needle) != std::string::npos)
        return true;
    return false;
  }

  /// Waits (up to 10 s) for a log line: refusals name the peer, which the
  /// coordinator asks its middleman for before it writes the line.
  bool wait_logged(const std::string& needle) {
    for (int i = 0; i < 200 && !logged(needle); ++i)
      std::this_thread::sleep_for(50ms);
    return logged(needle);
  }
};

cluster_test shell(const std::string& id, const std::string& script) {
  cluster_test t;
  t.req.test_id = id;
  t.command = {"sh", "-c", script};
  return t;
}

/// Submits `tests` as `client` and returns the accepted count.
uint64_t submit(caf::scoped_actor& client, coordinator_actor c,
                std::vector<cluster_test> tests) {
  auto ses = hello(client, c, "the-token");
  cluster_submission s;
  s.tests = std::move(tests);
  uint64_t accepted = 0;
  client->request(ses, 10s, submit_atom::value, s)
    .receive([&](uint64_t n) { accepted = n; },
             [&](caf::error& e) { BOOST_FAIL(to_string(e)); });
  return accepted;
}

/// Outcomes `client` receives until there are `n` (or `limit` passes).
std::vector<cluster_outcome> outcomes(caf::scoped_actor& client, size_t n,
                                      caf::timespan limit = 20s) {
  std::vector<cluster_outcome> got;
  while (got.size() < n) {
    bool timeout = false;
    client->receive(
      [&](outcome_batch& ob) {
        for (auto& o : ob.items)
          got.push_back(o);
      },
      caf::after(limit) >> [&] { timeout = true; });
    if (timeout)
      break;
  }
  return got;
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

BOOST_AUTO_TEST_CASE(one_worker_with_slots_offers_the_whole_node) {
  // An 8 GB node with 2 slots: one pool, so a 6 GB test fits (two workers
  // of 4 GB each could not run it).
  node_resources r;
  r.cores = 2;
  r.memory_gb = 8;
  r.accelerators = parse_accelerators("cuda:2");
  auto w = node_capabilities(r, "n", 2);
  BOOST_TEST(w.worker_id == "n/w0");
  BOOST_TEST(w.max_concurrent_tests == 2);
  BOOST_TEST(w.available_memory == 8.0);
  BOOST_TEST(w.cpu_cores == 2);
  BOOST_TEST(w.available_accelerators.at("cuda") == 2);
  // Without --slots: one slot per core.
  r.cores = 5;
  BOOST_TEST(node_capabilities(r, "n").max_concurrent_tests == 5);
  BOOST_CHECK_THROW(parse_accelerators("cuda:x"), cluster_error);
  BOOST_CHECK_THROW(node_capabilities(r, "n", -1), cluster_error);
}

BOOST_AUTO_TEST_CASE(a_node_hands_out_the_devices_nvidia_smi_listed) {
  node_resources r;
  r.cores = 4;
  r.accelerators = {{"cuda", 3}};
  r.devices = {{"cuda", {2, 5, 7}}};
  auto w = node_capabilities(r, "n");
  BOOST_TEST(w.accelerator_devices.at("cuda") == (std::vector<int>{2, 5, 7}));
  BOOST_TEST(worker_devices(w).at("cuda") == (std::vector<int>{2, 5, 7}));
  // Told by --accelerators: indices 0 .. N-1.
  r.devices.clear();
  BOOST_TEST(worker_devices(node_capabilities(r, "n")).at("cuda")
             == (std::vector<int>{0, 1, 2}));
  worker_capabilities bare;
  bare.available_accelerators = {{"rocm", 2}};
  BOOST_TEST(worker_devices(bare).at("rocm") == (std::vector<int>{0, 1}));
}

BOOST_AUTO_TEST_CASE(software_flag_parses_and_reaches_the_worker) {
  auto sw = parse_software("torch=2.3, cuda=12.1,mkl");
  BOOST_TEST(sw.at("torch") == "2.3");
  BOOST_TEST(sw.at("cuda") == "12.1");
  BOOST_TEST(sw.at("mkl") == "");
  BOOST_CHECK_THROW(parse_software("torch>=2"), cluster_error);
  BOOST_CHECK_THROW(parse_software("=2"), cluster_error);
  BOOST_CHECK_THROW(parse_software("torch="), cluster_error);
  node_resources r;
  r.cores = 2;
  r.software = sw;
  BOOST_TEST(node_capabilities(r, "n").software_versions.at("torch") == "2.3");
  auto detected = detect_software();
  BOOST_TEST(detected.at("os") == "linux");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_SUITE(coordinator, two_systems)

BOOST_AUTO_TEST_CASE(remote_workers_run_submitted_commands) {
  auto c = remote();
  auto w1 = node_worker(c, "the-token", "node-b/w0");
  auto w2 = node_worker(c, "the-token", "node-b/w1");
  caf::scoped_actor client{*b};
  auto ses = hello(client, c, "the-token");
  cluster_submission s;
  s.tests.push_back(shell("ok", "echo fine"));
  s.tests.push_back(shell("bad", "exit 5"));
  s.tests.push_back(shell("ok", "true")); // duplicate id: rejected
  uint64_t accepted = 0;
  client->request(ses, 10s, submit_atom::value, s)
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
    } else if (i->second.error.find("appears more than once")
               != std::string::npos) {
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
  BOOST_CHECK(has_ec(reason, ec::wrong_token));
  for (int i = 0; i < 100 && !logged("refused worker 'intruder/w0'"); ++i)
    std::this_thread::sleep_for(50ms);
  BOOST_TEST(logged("refused worker 'intruder/w0' of node 'node-b' from "
                    "127.0.0.1:"));
  BOOST_TEST(!logged("registered"));
  // A client with the wrong token gets no session.
  caf::error refusal;
  self
    ->request(c, 10s, hello_atom::value,
              client_hello{"guess", caf::actor_cast<caf::actor>(self), ""})
    .receive([](client_session_actor&) {},
             [&](caf::error& e) { refusal = std::move(e); });
  BOOST_CHECK(has_ec(refusal, ec::wrong_token));
}

BOOST_AUTO_TEST_CASE(workers_behind_an_uplink_get_their_placements_per_node) {
  auto c = remote();
  auto uplink = spawn_node_uplink(*b, "node-b");
  auto w1 = node_worker(c, "the-token", "node-b/w0", uplink);
  auto w2 = node_worker(c, "the-token", "node-b/w1", uplink);
  caf::scoped_actor client{*b};
  // Simulated tests that take no time, so placements and reports flow
  // back and forth many times; one real command among them.
  std::vector<cluster_test> tests;
  for (int i = 0; i < 400; ++i) {
    cluster_test t;
    t.req.test_id = "sim-" + std::to_string(i);
    tests.push_back(t);
  }
  tests.push_back(shell("cmd", "echo via-uplink"));
  BOOST_TEST(submit(client, c, tests) == 401u);
  auto got = outcomes(client, 401);
  BOOST_REQUIRE_EQUAL(got.size(), 401u);
  std::map<std::string, int> times;
  for (auto& o : got) {
    ++times[o.test_id];
    BOOST_TEST(o.status == "completed");
    BOOST_TEST(o.worker_id.rfind("node-b/", 0) == 0);
    if (o.test_id == "cmd")
      BOOST_TEST(o.output_tail == "via-uplink\n");
  }
  BOOST_TEST(times.size() == 401u);
  for (auto& [id, n] : times)
    BOOST_TEST(n == 1, id << " reported " << n << " times");
  // The placements crossed the wire through the uplink, several workers'
  // batches to a message.
  auto j = stats(c);
  auto batches = j["node_uplink"]["worker_batches"].get<uint64_t>();
  auto messages = j["node_uplink"]["messages"].get<uint64_t>();
  BOOST_TEST(batches > 0u);
  BOOST_TEST(messages > 0u);
  BOOST_TEST(messages <= batches);
  caf::anon_send_exit(w1, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(w2, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(uplink, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_CASE(a_lost_uplink_takes_its_workers_and_their_tests_requeue) {
  auto c = remote();
  auto first = spawn_node_uplink(*b, "node-b");
  auto w1 = node_worker(c, "the-token", "node-b/w0", first);
  caf::scoped_actor client{*b};
  client->monitor(w1);
  // The marker says the command started on the only worker.
  auto marker = "/tmp/alb_uplink_started_" + std::to_string(::getpid());
  std::remove(marker.c_str());
  BOOST_TEST(
    submit(client, c,
           {shell("long", "touch '" + marker + "'; sleep 1; echo done")})
    == 1u);
  for (int i = 0; i < 500 && ::access(marker.c_str(), F_OK) != 0; ++i)
    std::this_thread::sleep_for(20ms);
  BOOST_REQUIRE(::access(marker.c_str(), F_OK) == 0);
  std::remove(marker.c_str());
  // Its node's uplink dies under it.
  caf::anon_send_exit(first, caf::exit_reason::kill);
  bool down = false;
  client->receive([&](caf::down_msg&) { down = true; },
                  caf::after(10s) >> [] {});
  BOOST_TEST(down);
  auto second = spawn_node_uplink(*b, "node-b");
  auto w2 = node_worker(c, "the-token", "node-b/w1", second);
  auto got = outcomes(client, 1);
  BOOST_REQUIRE_EQUAL(got.size(), 1u);
  BOOST_TEST(got[0].status == "completed");
  BOOST_TEST(got[0].worker_id == "node-b/w1");
  BOOST_TEST(got[0].attempts == 2);
  BOOST_TEST(got[0].output_tail == "done\n");
  caf::anon_send_exit(w2, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(second, caf::exit_reason::user_shutdown);
}

// A worker that takes placements and never reports (a node's stand-in).
// Takes an argument: CAF 0.17 spawns a function actor without arguments
// through a null tuple pointer.
worker_actor::behavior_type idle_worker(int) {
  return {
    [](work_batch&) {},
    [](cancel_atom, uint32_t, uint32_t) {},
    [](finish_atom, uint64_t) {},
    [](tick_atom) {},
    [](leave_atom) {},
    [](status_atom) { return uint32_t{0}; },
  };
}

BOOST_AUTO_TEST_CASE(a_node_reports_only_for_its_own_workers) {
  auto c = remote();
  auto w = node_worker(c, "the-token", "node-b/w0");
  // A second node process, with the token, joins one worker of its own.
  caf::actor_system_config cfg_c;
  configure_system(cfg_c, 2, false);
  cfg_c.load<caf::io::middleman>();
  caf::actor_system sys_c{cfg_c};
  auto door
    = sys_c.middleman().remote_actor<coordinator_actor>("127.0.0.1", port);
  BOOST_REQUIRE(door);
  caf::scoped_actor evil{sys_c};
  node_join j;
  j.token = "the-token";
  j.node = "evil";
  j.caps.worker_id = "evil/w0";
  j.caps.cpu_cores = 1;
  j.caps.available_memory = 0.1; // too small for the victim
  uint32_t evil_slot = 0;
  scheduler_actor session;
  auto idle = sys_c.spawn(idle_worker, 0);
  evil->request(*door, 10s, join_atom::value, j, idle)
    .receive(
      [&](uint32_t slot, scheduler_actor& s) {
        evil_slot = slot;
        session = s;
      },
      [&](caf::error& e) { BOOST_FAIL(to_string(e)); });
  BOOST_REQUIRE(session);
  caf::scoped_actor client{*b};
  auto victim = shell("victim", "sleep 1; echo real; exit 3");
  victim.req.minimum_memory = 1;
  BOOST_TEST(submit(client, c, {victim}) == 1u);
  // Forged reports on its own session for every other slot: passing, with
  // output of its choosing, for the first records and generations.
  report_bundle bundle;
  for (uint32_t slot = 0; slot < 4; ++slot) {
    if (slot == evil_slot)
      continue;
    report_batch rb;
    rb.slot = slot;
    for (uint32_t ref = 0; ref < 8; ++ref)
      for (uint32_t gen = 0; gen < 4; ++gen) {
        work_report r;
        r.ref = ref;
        r.gen = gen;
        r.output_tail = "forged";
        rb.items.push_back(r);
      }
    evil->send(session, rb);
    bundle.batches.push_back(std::move(rb));
  }
  evil->send(session, bundle);
  evil->send(session, leave_atom::value, evil_slot == 0 ? 1u : 0u);
  auto got = outcomes(client, 1);
  BOOST_REQUIRE_EQUAL(got.size(), 1u);
  BOOST_TEST(got[0].status == "failed");
  BOOST_TEST(got[0].exit_code == 3);
  BOOST_TEST(got[0].output_tail == "real\n");
  BOOST_TEST(got[0].worker_id == "node-b/w0");
  BOOST_TEST(wait_logged("slot is not one of node 'evil''s workers"));
  BOOST_TEST(wait_logged("refused report_batch for slot"));
  BOOST_TEST(wait_logged("refused report_bundle for slot"));
  BOOST_TEST(wait_logged("refused leave for slot"));
  caf::anon_send_exit(w, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(idle, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_CASE(a_client_cancels_only_its_own_tests) {
  auto c = remote();
  auto w = node_worker(c, "the-token", "node-b/w0");
  caf::scoped_actor owner{*b};
  caf::scoped_actor other{*b};
  auto mine = hello(owner, c, "the-token");
  auto theirs = hello(other, c, "the-token");
  cluster_submission s;
  s.tests.push_back(shell("long", "sleep 30"));
  owner->request(mine, 10s, submit_atom::value, s)
    .receive([](uint64_t) {}, [&](caf::error& e) { BOOST_FAIL(to_string(e)); });
  auto cancel = [](caf::scoped_actor& self, client_session_actor& ses) {
    cancel_result r;
    self
      ->request(ses, 10s, cancel_atom::value,
                cancel_request{{"long", "nope"}, false})
      .receive([&](cancel_result& x) { r = std::move(x); },
               [&](caf::error& e) { BOOST_FAIL(to_string(e)); });
    return r;
  };
  auto r = cancel(other, theirs);
  BOOST_TEST(r.cancelled.empty());
  BOOST_TEST(r.refused == std::vector<std::string>{"long"});
  BOOST_TEST(r.unknown == std::vector<std::string>{"nope"});
  BOOST_TEST(wait_logged("refused cancel of test 'long' from"));
  BOOST_TEST(wait_logged("not submitted by this client"));
  r = cancel(owner, mine);
  BOOST_TEST(r.cancelled == std::vector<std::string>{"long"});
  BOOST_TEST(r.refused.empty());
  auto got = outcomes(owner, 1);
  BOOST_REQUIRE_EQUAL(got.size(), 1u);
  BOOST_TEST(got[0].status == "cancelled");
  // Ended: a second cancel finds nothing open.
  r = cancel(owner, mine);
  BOOST_TEST(r.cancelled.empty());
  BOOST_TEST(r.unknown.size() == 2u);
  caf::anon_send_exit(w, caf::exit_reason::user_shutdown);
}

// A test's log comes from its node through the coordinator in pieces of
// at most max_log_chunk bytes, byte for byte; only its owner (or an
// operator session) may read it, and an unknown id is an error.
BOOST_AUTO_TEST_CASE(a_log_is_read_through_the_coordinator_in_chunks) {
  auto c = remote();
  std::string error;
  auto logs = test_log_store::open(test_log_options{}, error);
  BOOST_REQUIRE(logs);
  auto uplink = spawn_node_uplink(*b, "node-b", logs);
  real_worker_options o;
  o.caps.worker_id = "node-b/w0";
  o.caps.cpu_cores = 2;
  o.caps.available_memory = 4;
  o.coordinator = c;
  o.token = "the-token";
  o.node = "node-b";
  o.uplink = uplink;
  o.logs = logs;
  auto w = spawn_real_worker(*b, scheduler_actor{}, std::move(o));
  caf::scoped_actor owner{*b};
  caf::scoped_actor other{*b};
  auto mine = hello(owner, c, "the-token", "key-of-alice");
  auto theirs = hello(other, c, "the-token", "key-of-mallory");
  // 600,000 bytes: three pieces; `seq` output is easy to rebuild.
  cluster_submission s;
  s.tests.push_back(shell("big-out", "seq 1 120000 | head -c 600000"));
  owner->request(mine, 10s, submit_atom::value, s)
    .receive([](uint64_t) {}, [&](caf::error& e) { BOOST_FAIL(to_string(e)); });
  auto got = outcomes(owner, 1);
  BOOST_REQUIRE_EQUAL(got.size(), 1u);
  BOOST_TEST(got[0].status == "completed");
  std::string want;
  for (int i = 1; want.size() < 600000; ++i)
    want += std::to_string(i) + "\n";
  want.resize(600000);
  auto read = [](caf::scoped_actor& self, client_session_actor& ses,
                 log_request rq, caf::error* failure = nullptr) {
    log_chunk out;
    self->request(ses, 10s, log_atom::value, std::move(rq))
      .receive([&](log_chunk& x) { out = std::move(x); },
               [&](caf::error& e) {
                 if (failure)
                   *failure = std::move(e);
                 else
                   BOOST_FAIL(to_string(e));
               });
    return out;
  };
  std::string all;
  size_t pieces = 0;
  for (;;) {
    auto ch = read(owner, mine, log_request{"big-out", 0, all.size(), 0, 0});
    BOOST_REQUIRE(ch.state == static_cast<int32_t>(log_state::ok));
    BOOST_TEST(ch.node == "node-b");
    BOOST_TEST(!ch.open);
    BOOST_TEST(ch.size == 600000u);
    BOOST_TEST(ch.data.size() <= max_log_chunk);
    if (ch.data.empty())
      break;
    ++pieces;
    all += ch.data;
  }
  BOOST_TEST(pieces == 3u);
  BOOST_TEST((all == want));
  // Asking for more than a piece still gets one piece.
  auto ch = read(owner, mine, log_request{"big-out", 0, 0, 1u << 30, 0});
  BOOST_TEST(ch.data.size() == max_log_chunk);
  ch = read(owner, mine, log_request{"big-out", 1, 0, 0, 0});
  BOOST_TEST(ch.state == static_cast<int32_t>(log_state::ok));
  BOOST_TEST(ch.data.empty());
  caf::error failure;
  read(other, theirs, log_request{"big-out", 0, 0, 0, 0}, &failure);
  BOOST_CHECK(has_ec(failure, ec::not_owner));
  BOOST_TEST(wait_logged("refused log of test 'big-out' from"));
  failure = caf::error{};
  read(owner, mine, log_request{"no-such-test", 0, 0, 0, 0}, &failure);
  BOOST_CHECK(has_ec(failure, ec::unknown_test));
  // A stream that is neither stdout nor stderr.
  failure = caf::error{};
  read(owner, mine, log_request{"big-out", 7, 0, 0, 0}, &failure);
  BOOST_CHECK(has_ec(failure, ec::not_accepted));
  caf::anon_send_exit(w, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(uplink, caf::exit_reason::user_shutdown);
}

// The same key is the same owner: another process of the same user (a
// second session) may cancel what the first submitted; a session with
// another key (or none) may not, not even with --all-mine.
BOOST_AUTO_TEST_CASE(a_client_key_owns_its_tests_across_sessions) {
  auto c = remote();
  auto w = node_worker(c, "the-token", "node-b/w0");
  caf::scoped_actor submitter{*b};
  caf::scoped_actor later{*b};
  caf::scoped_actor stranger{*b};
  auto first = hello(submitter, c, "the-token", "key-of-alice");
  auto second = hello(later, c, "the-token", "key-of-alice");
  auto other = hello(stranger, c, "the-token", "key-of-mallory");
  cluster_submission s;
  s.tests.push_back(shell("a1", "sleep 30"));
  s.tests.push_back(shell("a2", "sleep 30"));
  submitter->request(first, 10s, submit_atom::value, s)
    .receive([](uint64_t) {}, [&](caf::error& e) { BOOST_FAIL(to_string(e)); });
  auto cancel = [](caf::scoped_actor& self, client_session_actor& ses,
                   cancel_request rq) {
    cancel_result r;
    self->request(ses, 10s, cancel_atom::value, std::move(rq))
      .receive([&](cancel_result& x) { r = std::move(x); },
               [&](caf::error& e) { BOOST_FAIL(to_string(e)); });
    return r;
  };
  auto r = cancel(stranger, other, cancel_request{{}, true});
  BOOST_TEST(r.cancelled.empty());
  r = cancel(stranger, other, cancel_request{{"a1"}, false});
  BOOST_TEST(r.refused == std::vector<std::string>{"a1"});
  r = cancel(later, second, cancel_request{{"a1"}, false});
  BOOST_TEST(r.cancelled == std::vector<std::string>{"a1"});
  r = cancel(later, second, cancel_request{{}, true});
  BOOST_TEST(r.cancelled == std::vector<std::string>{"a2"});
  // The waiting submitter gets both, each once, as cancelled.
  auto got = outcomes(submitter, 2);
  BOOST_REQUIRE_EQUAL(got.size(), 2u);
  for (auto& o : got)
    BOOST_TEST(o.status == "cancelled");
  caf::anon_send_exit(w, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_SUITE_END()

// -- journal: a coordinator started again resumes ---------------------------

namespace {

/// A coordinator (system `a`, restartable on the same journal file) and a
/// node (system `b`) in one process, talking over loopback.
struct journaled_cluster {
  std::vector<std::string> log;
  std::mutex log_mtx;
  std::string dir;
  std::string db;
  caf::actor_system_config cfg_a;
  caf::actor_system_config cfg_b;
  std::unique_ptr<caf::actor_system> a;
  std::unique_ptr<caf::actor_system> b;
  coordinator_actor coord;
  uint16_t port = 0;

  journaled_cluster() {
    char buf[] = "/tmp/alb_coord_journal_XXXXXX";
    BOOST_REQUIRE(::mkdtemp(buf));
    dir = buf;
    db = dir + "/alb.db";
    for (auto* c : {&cfg_a, &cfg_b}) {
      configure_system(*c, 2, false);
      c->load<caf::io::middleman>();
    }
    a = std::make_unique<caf::actor_system>(cfg_a);
    b = std::make_unique<caf::actor_system>(cfg_b);
  }

  ~journaled_cluster() {
    stop();
    b.reset();
    a.reset();
    std::system(("rm -rf '" + dir + "'").c_str());
  }

  /// Starts a coordinator on a freshly opened journal of `db`, gathering
  /// outcomes for `flush_interval` seconds before writing them.
  void start(double flush_interval = 0.02) {
    coordinator_options o;
    o.token = "t";
    o.journal_flush_interval = flush_interval;
    o.journal
      = std::make_shared<submission_journal>(submission_journal::open(db));
    o.log = [this](const std::string& line) {
      std::lock_guard<std::mutex> g{log_mtx};
      log.push_back(line);
    };
    coord = spawn_coordinator(*a, std::move(o));
    auto p = a->middleman().publish(coord, 0, "127.0.0.1", true);
    BOOST_REQUIRE(p);
    port = *p;
  }

  /// Ends the coordinator without a chance to flush anything (its scheduler
  /// goes with it; the node's workers lose their coordinator).
  void stop() {
    if (!coord)
      return;
    stop_coordinator(*a, coord, caf::exit_reason::kill);
    coord = nullptr;
  }

  /// Joins two workers of node "node-b"; returns them.
  std::vector<worker_actor> join_node() {
    auto h = b->middleman().remote_actor<coordinator_actor>("127.0.0.1", port);
    BOOST_REQUIRE(h);
    std::vector<worker_actor> ws;
    // As `alb node` does: placements and reports through one uplink.
    auto uplink = spawn_node_uplink(*b, "node-b");
    for (int i = 0; i < 2; ++i) {
      real_worker_options o;
      o.uplink = uplink;
      o.caps.worker_id = "node-b/w" + std::to_string(i);
      o.caps.cpu_cores = 4;
      o.caps.available_memory = 4;
      o.coordinator = *h;
      o.token = "t";
      o.node = "node-b";
      ws.push_back(spawn_real_worker(*b, scheduler_actor{}, std::move(o)));
    }
    return ws;
  }

  bool logged(const std::string& needle) {
    std::lock_guard<std::mutex> g{log_mtx};
    for (auto& l : log)
      if (l.find(needle) != std::string::npos)
        return true;
    return false;
  }

  bool wait_logged(const std::string& needle) {
    for (int i = 0; i < 200 && !logged(needle); ++i)
      std::this_thread::sleep_for(50ms);
    return logged(needle);
  }

  /// A test that writes its shell's pid to `id`.pid when it starts and
  /// appends one line to its marker file per run.
  cluster_test marked(const std::string& id, double sleep_s) {
    return shell(id, "echo $$ > '" + dir + "/" + id + ".pid'; sleep "
                       + std::to_string(sleep_s) + "; echo " + id + " >> '"
                       + dir + "/" + id + ".runs'; echo out-" + id);
  }

  /// Whether the shell of test `id` started and is gone now (waits for it
  /// to go for up to 10 s): once gone, it can append nothing any more.
  bool started_and_gone(const std::string& id) {
    std::ifstream in{dir + "/" + id + ".pid"};
    pid_t pid = 0;
    if (!(in >> pid) || pid <= 0)
      return false;
    for (int i = 0; i < 500; ++i) {
      if (::kill(pid, 0) != 0 && errno == ESRCH)
        return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }

  /// Statistics of the coordinator, asked by `client`.
  nlohmann::json stats(caf::scoped_actor& client) {
    auto h = b->middleman().remote_actor<coordinator_actor>("127.0.0.1", port);
    BOOST_REQUIRE(h);
    auto ses = hello(client, *h, "t");
    nlohmann::json j;
    client->request(ses, 10s, stats_atom::value)
      .receive([&](std::string& s) { j = nlohmann::json::parse(s); },
               [&](caf::error& e) { BOOST_FAIL(b->render(e)); });
    return j;
  }

  /// How often test `id` ran to its end.
  int runs(const std::string& id) {
    std::ifstream in{dir + "/" + id + ".runs"};
    int n = 0;
    std::string line;
    while (std::getline(in, line))
      ++n;
    return n;
  }

  /// Submits `tests` from `client` (an actor of system `b`).
  void send(caf::scoped_actor& client, const std::vector<cluster_test>& tests) {
    auto h = b->middleman().remote_actor<coordinator_actor>("127.0.0.1", port);
    BOOST_REQUIRE(h);
    auto ses = hello(client, *h, "t");
    cluster_submission s;
    s.tests = tests;
    client->request(ses, 10s, submit_atom::value, s)
      .receive([](uint64_t) {},
               [&](caf::error& e) { BOOST_FAIL(b->render(e)); });
  }

  /// Collects up to `n` outcomes at `client` within `wait`; fails on a
  /// second outcome of a test.
  std::map<std::string, cluster_outcome>
  collect(caf::scoped_actor& client, size_t n, std::chrono::seconds wait) {
    std::map<std::string, cluster_outcome> got;
    auto deadline = std::chrono::steady_clock::now() + wait;
    while (got.size() < n && std::chrono::steady_clock::now() < deadline) {
      client->receive(
        [&](outcome_batch& ob) {
          for (auto& o : ob.items) {
            BOOST_TEST(got.count(o.test_id) == 0u,
                       "two outcomes of " << o.test_id);
            got[o.test_id] = o;
          }
        },
        caf::after(200ms) >> [] {});
    }
    return got;
  }

  /// Submits `tests` from a new client that collects every outcome and
  /// then ends normally (a clean leave).
  std::map<std::string, cluster_outcome>
  submit(const std::vector<cluster_test>& tests) {
    caf::scoped_actor client{*b};
    send(client, tests);
    return collect(client, tests.size(), 30s);
  }
};

} // namespace

BOOST_FIXTURE_TEST_CASE(a_restarted_coordinator_resumes_from_its_journal,
                        journaled_cluster) {
  start();
  auto ws = join_node();
  BOOST_REQUIRE(wait_logged("node 'node-b' joined"));
  std::vector<cluster_test> suite{marked("quick", 0)};
  for (int i = 0; i < 4; ++i)
    suite.push_back(marked("slow-" + std::to_string(i), 1.5));
  // The first client sees "quick" end, then loses the coordinator while the
  // slow tests run (it is still there when the coordinator dies).
  caf::scoped_actor lost_client{*b};
  send(lost_client, suite);
  auto first = collect(lost_client, 1, 10s);
  BOOST_REQUIRE(first.count("quick"));
  stop();
  caf::scoped_actor self{*b};
  for (auto& w : ws)
    self->monitor(w);
  for (size_t i = 0; i < ws.size(); ++i)
    self->receive([](caf::down_msg&) {},
                  caf::after(10s) >> [] { BOOST_FAIL("worker kept running"); });
  // The workers killed their commands: nothing finishes behind our back
  // (each started, and its shell is gone without having written its run).
  for (int i = 0; i < 4; ++i) {
    auto id = "slow-" + std::to_string(i);
    BOOST_TEST(started_and_gone(id), id);
    BOOST_TEST(runs(id) == 0, id);
  }
  BOOST_TEST(runs("quick") == 1);
  start();
  BOOST_TEST(wait_logged("resumed 4 unfinished tests from journal"));
  ws = join_node();
  BOOST_TEST(wait_logged("node 'node-b' rejoined"));
  // The same suite again: "quick" from the journal, the slow ones attached
  // to their resumed runs.
  auto second = submit(suite);
  BOOST_REQUIRE_EQUAL(second.size(), suite.size());
  BOOST_TEST(logged("1 answered from the journal"));
  BOOST_TEST(logged("4 already running (client attached)"));
  for (auto& [id, o] : second) {
    BOOST_TEST(o.status == "completed",
               id << ": " << o.status << " " << o.error);
    BOOST_TEST(o.output_tail == "out-" + id + "\n");
    BOOST_TEST(runs(id) == 1, id << " ran " << runs(id) << " times");
  }
  // That client left cleanly with every outcome: the next submission of
  // "quick" is a new run.
  for (int i = 0; i < 100 && runs("quick") == 1; ++i) {
    auto third = submit({marked("quick", 0)});
    BOOST_REQUIRE_EQUAL(third.size(), 1u);
    if (runs("quick") == 1)
      std::this_thread::sleep_for(50ms); // the clean leave not seen yet
  }
  BOOST_TEST(runs("quick") == 2);
  for (auto& w : ws)
    caf::anon_send_exit(w, caf::exit_reason::user_shutdown);
}

BOOST_FIXTURE_TEST_CASE(a_clean_stop_writes_the_gathered_outcomes,
                        journaled_cluster) {
  // Outcomes wait a minute for their transaction: only the stop writes them.
  start(60);
  auto ws = join_node();
  BOOST_REQUIRE(wait_logged("node 'node-b' joined"));
  caf::scoped_actor client{*b};
  send(client, {marked("done-before-stop", 0)});
  for (int i = 0; i < 200 && runs("done-before-stop") == 0; ++i)
    std::this_thread::sleep_for(50ms);
  BOOST_REQUIRE(runs("done-before-stop") == 1);
  // The worker's report reaches the coordinator shortly after the command:
  // its outcome is then gathered (and not yet written).
  bool gathered = false;
  for (int i = 0; i < 400 && !gathered; ++i) {
    gathered = stats(client)["outcomes_gathered"].get<int>() == 1;
    if (!gathered)
      std::this_thread::sleep_for(25ms);
  }
  BOOST_REQUIRE(gathered);
  caf::scoped_actor self{*a};
  self->monitor(coord);
  stop_coordinator(*a, coord);
  self->receive([](caf::down_msg&) {},
                caf::after(10s) >>
                  [] { BOOST_FAIL("coordinator kept running"); });
  coord = nullptr;
  auto j = submission_journal::open(db);
  auto r = j.find("done-before-stop");
  BOOST_REQUIRE(r != nullptr);
  BOOST_TEST(r->ended);
  BOOST_TEST(r->outcome.status == "completed");
  for (auto& w : ws)
    caf::anon_send_exit(w, caf::exit_reason::user_shutdown);
}

// A journal whose every write fails (a full disk) must not turn each
// outcome flush into a log line: 269 "cannot record" lines in a few
// seconds were seen. One line per kind of failure per 10 s, the rest
// counted in one summary line (written at the latest when it stops).
BOOST_FIXTURE_TEST_CASE(journal_failures_are_logged_rate_limited,
                        journaled_cluster) {
  start();
  auto ws = join_node();
  BOOST_REQUIRE(wait_logged("node 'node-b' joined"));
  caf::scoped_actor client{*b};
  std::vector<cluster_test> suite;
  for (int i = 0; i < 40; ++i)
    suite.push_back(shell("t-" + std::to_string(i), "sleep 0.05"));
  send(client, suite);
  // From here on every write fails: SQLite cannot create its rollback
  // journal where a directory of that name is.
  BOOST_REQUIRE(::mkdir((db + "-journal").c_str(), 0700) == 0);
  auto got = collect(client, suite.size(), 30s);
  // Reported anyway (holding them back would stall every client).
  BOOST_TEST(got.size() == suite.size());
  stop_coordinator(*a, coord);
  coord = nullptr;
  BOOST_TEST(wait_logged("more journal errors in the last"));
  ::rmdir((db + "-journal").c_str());
  std::lock_guard<std::mutex> g{log_mtx};
  size_t shown = 0;
  size_t hidden = 0;
  for (auto& l : log) {
    if (l.find("cannot record") != std::string::npos)
      ++shown;
    if (auto k = l.find(" more journal errors"); k != std::string::npos)
      hidden += std::stoul(l.substr(0, k));
  }
  BOOST_TEST_MESSAGE("failed flushes: " << shown << " logged, " << hidden
                                        << " summarised");
  BOOST_TEST(shown == 1u);
  BOOST_TEST(hidden >= 1u);
}

BOOST_AUTO_TEST_CASE(the_ended_log_ring_keeps_the_newest_entries) {
  coord::ended_log_ring ring{3};
  BOOST_TEST(ring.find("a") == nullptr);
  ring.add("a", "n1", "alice", "completed");
  ring.add("b", "n2", "bob", "failed");
  BOOST_REQUIRE(ring.find("a") != nullptr);
  BOOST_TEST(ring.find("a")->node == "n1");
  BOOST_TEST(ring.find("a")->owner == "alice");
  BOOST_TEST(ring.find("b")->status == "failed");
  // "a" ends again (a rerun elsewhere): the newer entry answers.
  ring.add("a", "n3", "alice", "failed");
  BOOST_TEST(ring.find("a")->node == "n3");
  BOOST_TEST(ring.size() == 3u);
  // Two more push out the oldest two ("a" on n1, then "b"): the newer
  // "a" stays.
  ring.add("c", "n1", "carol", "completed");
  ring.add("d", "n1", "dave", "completed");
  BOOST_TEST(ring.size() == 3u);
  BOOST_TEST(ring.find("b") == nullptr);
  BOOST_REQUIRE(ring.find("a") != nullptr);
  BOOST_TEST(ring.find("a")->node == "n3");
  BOOST_TEST(ring.find("d")->owner == "dave");
  ring.add("e", "n1", "erin", "completed");
  BOOST_TEST(ring.find("a") == nullptr);
  BOOST_TEST(ring.find("c")->owner == "carol");
}
