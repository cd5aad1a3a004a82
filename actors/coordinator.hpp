#pragma once

// The coordinator: the actor a cluster publishes on its port. It owns the
// scheduler (a long-running one) and stands in front of it:
// - a node's worker joins through it; the join token is checked before the
//   worker reaches the scheduler, and refusals are logged with the peer's
//   address;
// - each admitted remote worker gets a local proxy in the scheduler's
//   process that passes its placements on (the command, environment and
//   working directory of each test ride in the scheduler's test record to
//   the placement) and dies with the remote worker, so the scheduler's down
//   handling requeues whatever that node held;
// - clients submit tests with commands and receive each test's outcome;
// - with a journal (runtime/journal.hpp) it writes accepted tests before it
//   acknowledges them and outcomes before it reports them, resumes the
//   tests that had not ended when it starts, and answers a test submitted
//   again from what it recorded instead of running it twice.
//
// A test id submitted again while that test is queued or running attaches
// the client to it (both clients get the one outcome) if the definition
// (command, env, cwd, requirements) is the same, and is rejected if not.
// An id whose outcome the journal holds is answered from the journal,
// unless the definition changed or this very client already received that
// outcome: then it runs again. Outcomes a client received are retired when
// it disconnects cleanly, so the next submission of those ids runs afresh.
// These rules live in runtime/admission.hpp (CAF-free, unit tested); the
// actor asks it, writes the journal and sends the messages.

#include <functional>
#include <memory>
#include <string>

#include "actors/messages.hpp"
#include "actors/scheduler.hpp"

#include <caf/exit_reason.hpp>

namespace alb {

class submission_journal;

/// Settings of a coordinator.
struct coordinator_options {
  /// The scheduler it spawns; `finish_when_done` is forced off and
  /// `on_end` is taken over (a set `on_end` is still called).
  scheduler_options scheduler;
  /// Join token nodes and clients must present ("" = anyone may join).
  std::string token;
  /// Operator token ("" = none): a client whose hello carries it gets a
  /// session whose status view lists every test, not only its own. It
  /// also opens a session when it differs from `token`.
  std::string operator_token;
  /// Receives one line per join, leave and refusal (may be empty).
  std::function<void(const std::string&)> log;
  /// Receives DEBUG lines with their component ("coordinator",
  /// "scheduler"): client connections and disconnections, and every
  /// `debug_interval` seconds one summary of the placements and ends (not
  /// one line per test). Empty = DEBUG is off and nothing is gathered.
  std::function<void(const std::string&, const std::string&)> debug;
  /// Seconds between two placement summaries on `debug`.
  double debug_interval = 5;
  /// Called with the number of connected nodes when it changes.
  std::function<void(size_t)> on_nodes;
  /// Names the client behind a connection the middleman sees as coming
  /// from host:port (a relay such as basp_guard); "" = use host:port.
  std::function<std::string(const std::string&, uint16_t)> peer_name;
  /// Called with the connection (host:port as the middleman sees it) of a
  /// peer whose join or hello with the token was accepted: its handshake
  /// is over for the relay in front (basp_guard::admit). May be empty.
  std::function<void(const std::string&, uint16_t)> on_admitted;
  /// Journal of submitted tests (null = none). Only the coordinator's
  /// actor uses it once spawned.
  std::shared_ptr<submission_journal> journal;
  /// Seconds a node may send no heartbeat before it is declared lost
  /// exactly as if its process had died (its tests requeue, its session
  /// ends, it must join again); 0 = never (a node is lost only when its
  /// connection ends). Its nodes are asked for a heartbeat several times
  /// per timeout.
  double node_timeout = 0;
  /// Seconds past a running test's timeout after which the coordinator
  /// gives up on a report its node never sent (the test is retried or
  /// fails; see `scheduler_options::timeout_grace`); < 0 = never.
  double timeout_grace = -1;
  /// Seconds a client may send no heartbeat before its session expires
  /// (a client stopped or cut off with its connection open): its tests go
  /// on and their outcomes are journaled for the next client that asks;
  /// 0 = never (a session ends only with its client's connection).
  double client_timeout = 0;
  /// Largest submission accepted, bytes serialized: clients ask for it
  /// (limits_atom) and refuse a larger one before sending it; the guard in
  /// front drops a larger frame.
  uint64_t max_submission = uint64_t{64} << 20;
  /// Called once for every node declared lost for missing heartbeats (may
  /// be empty).
  std::function<void()> on_node_lost;
  /// Seconds outcomes are gathered before they are written to the journal
  /// in one transaction and then reported (with a journal only).
  double journal_flush_interval = 0.02;
};

/// Reads the status view (runtime/cluster_status.hpp, every test listed)
/// of a coordinator in this process as JSON, waiting at most `timeout`
/// seconds; throws std::runtime_error when it does not answer. For the
/// status page: it must not be called after the actor system is gone.
using status_reader = std::function<std::string(double timeout)>;

/// Spawns a coordinator and its scheduler (linked: they end together).
/// With `reader`, sets it to read the coordinator's status view.
coordinator_actor spawn_coordinator(caf::actor_system& sys,
                                    coordinator_options opts,
                                    status_reader* reader = nullptr);

/// Stops a coordinator: the exit comes from an actor of this process,
/// which is the only kind its published actor obeys (an exit from a peer,
/// or an anonymous one, is refused). `kill` ends it without writing the
/// outcomes it gathered.
void stop_coordinator(caf::actor_system& sys, const coordinator_actor& c,
                      caf::exit_reason reason
                      = caf::exit_reason::user_shutdown);

/// Compares two tokens in time independent of where they differ.
bool tokens_equal(const std::string& a, const std::string& b);

} // namespace alb
