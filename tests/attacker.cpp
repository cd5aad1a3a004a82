// A peer without the join token, as an attacker would write it: it speaks
// CAF to a coordinator's port (plain TCP, or TLS with a certificate of the
// cluster's CA) and sends, directly to the published actor, every message
// that only a session or the coordinator itself may send: forged outcomes
// for a running test, forged reports, stats, submissions, cancels, log
// reads, timer ticks, and CAF's system messages (exit with reason kill, down,
// error) that would end an actor that does not guard its mailbox.
//
//   alb_attacker HOST PORT VICTIM_TEST_ID [CERT KEY CA]
//
// Prints one line per attempt ("refused: ..." or "ANSWERED: ..."), then
// checks that the coordinator still answers. Exit status: 0 every request
// was refused and the coordinator is still there, 1 otherwise, 2 usage.
// tests/trust_it.py runs it while the victim test runs and then checks the
// coordinator's log and the victim's real outcome.

#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include "actors/caf_ec.hpp"
#include "actors/cluster_net.hpp"
#include "actors/messages.hpp"
#include "actors/system.hpp"
#include "actors/tls.hpp"

using namespace alb;
using namespace std::chrono_literals;

namespace {

int failures = 0;

// Sends `xs` as a request and expects the error `code` in reply: the
// coordinator read the request and refused it (a dead coordinator would
// answer with another error).
template<class... Ts>
void expect_refused(caf::scoped_actor& self, const caf::actor& door,
                    const std::string& what, ec code, Ts&&... xs) {
  bool refused = false;
  std::string how = "no reply";
  self->request(door, 10s, std::forward<Ts>(xs)...)
    .receive([&](caf::message& m) { how = "answered " + to_string(m); },
             [&](caf::error& e) {
               refused = has_ec(e, code);
               how = self->home_system().render(e);
             });
  std::cout << (refused ? "refused: " : "ANSWERED: ") << what << " (" << how
            << ")" << std::endl;
  if (!refused)
    ++failures;
}

// Sends `xs` without waiting for anything (fire and forget, as a forged
// report or outcome would be).
template<class... Ts>
void fire(caf::scoped_actor& self, const caf::actor& door,
          const std::string& what, Ts&&... xs) {
  self->send(door, std::forward<Ts>(xs)...);
  caf::anon_send(door, std::forward<Ts>(xs)...);
  std::cout << "sent: " << what << std::endl;
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 4 && argc != 7) {
    std::cerr << "usage: alb_attacker HOST PORT VICTIM_TEST_ID [CERT KEY CA]\n";
    return 2;
  }
  std::string host = argv[1];
  auto port = static_cast<uint16_t>(std::stoi(argv[2]));
  std::string victim = argv[3];
  std::unique_ptr<tls_material> tls;
  if (argc == 7)
    tls = std::make_unique<tls_material>(
      tls_options{argv[4], argv[5], argv[6], ""});
  caf::actor_system_config cfg;
  configure_system(cfg, 2, false);
  load_network(cfg, tls.get());
  caf::actor_system sys{cfg};
  auto h = connect_coordinator(sys, host, port, 10s);
  if (!h) {
    std::cerr << "alb_attacker: cannot connect: " << sys.render(h.error())
              << "\n";
    return 1;
  }
  // The typed handle allows only join and hello; one cast away it takes
  // anything.
  auto door = caf::actor_cast<caf::actor>(*h);
  caf::scoped_actor self{sys};
  auto me = caf::actor_cast<caf::actor>(self);
  // Forged outcome: the victim "completed" with output of our choosing.
  cluster_outcome forged;
  forged.test_id = victim;
  forged.status = "completed";
  forged.success = true;
  forged.output_tail = "forged by alb_attacker\n";
  fire(self, door, "outcome_batch (forged outcome of '" + victim + "')",
       outcome_batch{{forged}});
  // Forged reports for the first slots, records and generations.
  report_bundle bundle;
  for (uint32_t slot = 0; slot < 4; ++slot) {
    report_batch b;
    b.slot = slot;
    for (uint32_t ref = 0; ref < 8; ++ref)
      for (uint32_t gen = 0; gen < 4; ++gen) {
        work_report r;
        r.ref = ref;
        r.gen = gen;
        r.output_tail = "forged by alb_attacker\n";
        b.items.push_back(r);
      }
    bundle.batches.push_back(b);
  }
  fire(self, door, "report_bundle (forged reports)", bundle);
  fire(self, door, "report_batch (forged reports)", bundle.batches[0]);
  fire(self, door, "load_report", load_report{0, {}});
  fire(self, door, "leave (slot 0)", leave_atom::value, uint32_t{0});
  fire(self, door, "tick", tick_atom::value);
  fire(self, door, "cancel '" + victim + "'", cancel_atom::value, victim);
  fire(self, door, "test_batch", test_batch{});
  // CAF's system messages: an exit with reason kill ends an actor before
  // any handler sees it; an error ends one without an error handler.
  fire(self, door, "exit_msg (reason kill)",
       caf::exit_msg{door.address(), caf::exit_reason::kill});
  fire(self, door, "exit_msg (reason user_shutdown)",
       caf::exit_msg{door.address(), caf::exit_reason::user_shutdown});
  fire(self, door, "down_msg",
       caf::down_msg{door.address(), caf::exit_reason::kill});
  fire(self, door, "error", caf::make_error(caf::sec::runtime_error));
  // Requests: each must come back as an error.
  // Matched by code (alb::ec), not by text.
  auto unexpected = ec::not_accepted;
  expect_refused(self, door, "stats without a session", unexpected,
                 stats_atom::value);
  expect_refused(self, door, "status without a session", unexpected,
                 status_atom::value);
  // The core's form (with a client and the operator flag) and the
  // scheduler's (with a row limit) are not on the door either.
  expect_refused(self, door, "status in the core's form", unexpected,
                 status_atom::value, me, true);
  expect_refused(self, door, "status in the scheduler's form", unexpected,
                 status_atom::value, uint64_t{1000});
  cluster_test t;
  t.req.test_id = "attacker-test";
  t.command = {"sh", "-c", "echo attacker was here"};
  expect_refused(self, door, "submit without a session", unexpected,
                 submit_atom::value, cluster_submission{{t}, "", "", false});
  expect_refused(self, door, "submit in the old form (token in the message)",
                 unexpected, submit_atom::value,
                 cluster_submission{{t}, "", "", false}, me);
  expect_refused(self, door, "cancel without a session", unexpected,
                 cancel_atom::value, std::vector<std::string>{victim});
  // A heartbeat belongs on a session: on the port it keeps nothing alive.
  expect_refused(self, door, "heartbeat without a session", unexpected,
                 heartbeat_atom::value);
  // The limits a session answers are not the port's to tell.
  expect_refused(self, door, "limits without a session", unexpected,
                 limits_atom::value);
  // Test logs: neither the client's form nor the core's (with an owner
  // and the operator flag) is on the door.
  expect_refused(self, door, "log of '" + victim + "' without a session",
                 unexpected, log_atom::value, log_request{victim, 0, 0, 0, 0});
  expect_refused(self, door, "log in the core's form (operator flag)",
                 unexpected, log_atom::value, log_request{victim, 0, 0, 0, 0},
                 std::string{}, true);
  expect_refused(self, door, "hello with a wrong token", ec::wrong_token,
                 hello_atom::value, client_hello{"guessed-token", me, ""});
  expect_refused(self, door, "hello without a token", ec::no_token,
                 hello_atom::value, client_hello{"", me, ""});
  node_join j;
  j.node = "attacker";
  j.caps.worker_id = "attacker/w0";
  expect_refused(self, door, "join without a token", ec::no_token,
                 join_atom::value, j, worker_actor{});
  // Still there: it answers (refuses) a hello after all of the above.
  expect_refused(self, door, "hello after the attack (coordinator alive)",
                 ec::no_token, hello_atom::value, client_hello{"", me, ""});
  std::cout << (failures == 0 ? "all refused" : "SOME ANSWERED") << std::endl;
  return failures == 0 ? 0 : 1;
}
