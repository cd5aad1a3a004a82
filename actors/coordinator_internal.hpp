#pragma once

// The parts of the coordinator, shared by its files and nothing else:
// - coordinator.cpp: the core, which owns the scheduler, the journal and
//   the clients' tests; its interface is private (never published, never
//   sent over the wire, so no peer can address it);
// - coordinator_door.cpp: the published actor (join and hello only) and
//   the per-node and per-client sessions that check who sends what;
// - coordinator_proxy.cpp: the local proxy of each remote worker;
// - coordinator_routes.cpp: placements gathered per node and turn.
//
// Who may send what (DESIGN §9; README "Trust model"):
//   anyone            -> door: join (with token), hello (with token)
//   a joined node     -> its node session: reports, load, leave, revokes,
//                        for the slots of its own workers only
//   a client (hello)  -> its client session: submit, stats, cancel (its
//                        own tests only; any for an operator session), log (its
//                        own tests' logs; any for an operator session), status
//                        (its own tests listed; every test for an operator
//                        session: the hello carried the operator token, or the
//                        coordinator has no token at all), heartbeat
//   the scheduler     -> core: outcome_batch; core -> core: tick, liveness
//   a joined node     -> its node session: heartbeat (the reply is the
//                        coordinator's side: when the next one is due)
//   a node session    -> core: heartbeat (with the session's id)
// Anything else is refused, logged (rate-limited) and has no effect.

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/io/middleman.hpp>
#include <caf/io/middleman_actor.hpp>
#include <caf/node_id.hpp>

#include "actors/coordinator.hpp"
#include "runtime/log_limiter.hpp"

namespace alb::coord {

/// The core's periodic liveness check (internal).
using liveness_atom = caf::atom_constant<caf::atom("liveness")>;

/// The core's private interface: what the door and the sessions pass on
/// after their checks, plus the internal messages.
using core_actor = caf::typed_actor<
  // From the door: a node's worker asks to join (token not checked yet).
  caf::replies_to<join_atom, node_join, worker_actor>::with<uint32_t,
                                                            scheduler_actor>,
  // From the door: a client asks for a session (token not checked yet).
  caf::replies_to<hello_atom, client_hello>::with<client_session_actor>,
  // From a client session: tests whose outcomes go to the given actor,
  // submitted by the owner named last (digest of the client's key).
  caf::replies_to<submit_atom, cluster_submission, caf::actor,
                  std::string>::with<uint64_t>,
  // From a client session: metrics and membership as JSON.
  caf::replies_to<stats_atom>::with<std::string>,
  // From a client session: cancel those of these tests (or all) the
  // owner named submitted; any named test when the flag is set (an
  // operator session).
  caf::replies_to<cancel_atom, cancel_request, std::string,
                  bool>::with<cancel_result>,
  // From a client session: the owner's runs (run "") or one run's
  // outcomes, from the journal, as JSON.
  caf::replies_to<results_atom, std::string, std::string>::with<std::string>,
  // From a client session (null actor: from this process's status page):
  // the status view as JSON, every test listed when the flag is set, else
  // only those the given client waits for.
  caf::replies_to<status_atom, caf::actor, bool>::with<std::string>,
  // From a client session: a piece of a test's log, for the owner named
  // (any test's when the flag is set: an operator session), fetched from
  // the node that ran it.
  caf::replies_to<log_atom, log_request, std::string, bool>::with<log_chunk>,
  // Internal: tests that ended (from the scheduler's end listener).
  caf::reacts_to<outcome_batch>,
  // Internal: write the gathered outcomes to the journal, then report them.
  caf::reacts_to<tick_atom>,
  // From a node session: the node with this session id sent a heartbeat.
  caf::reacts_to<heartbeat_atom, uint64_t>,
  // Internal: the periodic check for nodes silent past --node-timeout.
  caf::reacts_to<liveness_atom>,
  // From a client session: the largest submission accepted, bytes.
  caf::replies_to<limits_atom>::with<uint64_t>>;

/// Refusal lines of the door, the sessions and the core, rate-limited
/// together (runtime/log_limiter.hpp): per 10 s each sender and kind once,
/// at most 40 lines, the rest summarised. Thread-safe.
class refusal_log {
public:
  /// Writes admitted lines to `out` (may be empty: nothing is written).
  explicit refusal_log(std::function<void(const std::string&)> out);

  /// Whether a line of kind `kind` is to be written now (else it is only
  /// counted).
  bool admit(const std::string& kind);

  /// Writes a line (admitted before).
  void write(const std::string& line);

  /// Remembers that process `node` (its node id as text) is `peer`
  /// ("host:port"), for refusals logged once its connection is gone: a
  /// client that is refused and exits at once leaves the middleman nothing
  /// to name it by. At most `max_known` are kept (the oldest go first).
  void remember(const std::string& node, const std::string& peer);

  /// What `remember` was told of `node` ("" = nothing).
  std::string known(const std::string& node);

  /// Forgets `node` (its session ended).
  void forget(const std::string& node);

  /// Most processes remembered at once.
  static constexpr size_t max_known = 4096;

private:
  std::mutex mtx_;
  std::function<void(const std::string&)> out_;
  log_limiter limiter_;
  std::chrono::steady_clock::time_point epoch_;
  std::unordered_map<std::string, std::string> known_;
  std::vector<std::string> known_order_;
};

/// Names the process behind a connection the middleman sees as host:port
/// (the guard's relay), "" = use host:port.
using peer_namer = std::function<std::string(const std::string&, uint16_t)>;

/// Calls `f` with "host:port" of the process `nid` ("local" for this one,
/// "unknown peer" when the middleman does not know it).
template<class Self, class F>
void with_peer(Self* self, const peer_namer& name, const caf::node_id& nid,
               F f) {
  auto& sys = self->home_system();
  if (nid == sys.node() || !sys.has_middleman()) {
    f(std::string{"local"});
    return;
  }
  self
    ->request(sys.middleman().actor_handle(), std::chrono::seconds(5),
              caf::get_atom::value, nid)
    .then(
      [name, f](const caf::node_id&, std::string& host, uint16_t port) mutable {
        // The connection is gone (the middleman answers with no address).
        if (host.empty()) {
          f(std::string{"unknown peer"});
          return;
        }
        // Behind a relay the middleman sees the relay's connection.
        auto real = name ? name(host, port) : std::string{};
        f(real.empty() ? host + ":" + std::to_string(port) : real);
      },
      [f](caf::error&) mutable { f(std::string{"unknown peer"}); });
}

/// The node that sent the message `self` is handling.
template<class Self>
caf::node_id sender_node(Self* self) {
  auto& s = self->current_sender();
  return s ? s->node() : self->home_system().node();
}

/// Logs (rate-limited) that `what` from the current sender was refused
/// because `why`, naming the peer.
template<class Self>
void refuse(Self* self, const std::shared_ptr<refusal_log>& log,
            const peer_namer& name, const std::string& what,
            const std::string& why) {
  if (!self->current_sender()) {
    // A peer may send without naming itself: then there is no address.
    if (log->admit("anonymous\n" + what + '\n' + why))
      log->write("refused " + what + " from an anonymous sender: " + why);
    return;
  }
  auto nid = sender_node(self);
  auto key = to_string(nid);
  if (!log->admit(key + '\n' + what + '\n' + why))
    return;
  // A session's peer was looked up when it began: named now, even if the
  // peer hangs up before a lookup could answer.
  if (auto peer = log->known(key); !peer.empty()) {
    log->write("refused " + what + " from " + peer + ": " + why);
    return;
  }
  with_peer(self, name, nid, [log, what, why](const std::string& peer) {
    log->write("refused " + what + " from " + peer + ": " + why);
  });
}

/// What a node session knows about its node, shared with the core (which
/// adds and removes slots as workers join and go).
struct node_session_data {
  /// The core's id of the session (its heartbeats name it).
  uint64_t id = 0;
  /// Seconds between the heartbeats the node is asked for (0 = none).
  double heartbeat_interval = 0;
  /// Set by the core when it declared the node lost: from then on nothing
  /// the node sends through this session counts (it ends right after).
  std::atomic<bool> dropped{false};
  /// Name the node joined under.
  std::string name;
  /// The node's process: only its actors may use the session.
  caf::node_id node;
  /// Guards `slots`.
  std::mutex mtx;
  /// Scheduler slots of the node's registered workers.
  std::unordered_set<uint32_t> slots;

  /// Whether `slot` is one of this node's workers.
  bool owns(uint32_t slot) {
    if (dropped.load())
      return false;
    std::lock_guard<std::mutex> g{mtx};
    return slots.count(slot) > 0;
  }
};

/// Spawns the published actor: join and hello go on to `core`, anything
/// else is refused and logged.
coordinator_actor spawn_door(caf::actor_system& sys, core_actor core,
                             std::shared_ptr<refusal_log> log, peer_namer name);

/// Spawns the session of one node process: it passes on to `sched` what
/// the node's own actors send for their own slots, refuses the rest; it
/// ends with `core`.
node_session_actor spawn_node_session(caf::actor_system& sys, core_actor core,
                                      scheduler_actor sched,
                                      std::shared_ptr<node_session_data> data,
                                      std::shared_ptr<refusal_log> log,
                                      peer_namer name);

/// Spawns the session of one client (the process `client` that said
/// hello; outcomes go to `outcomes`; it acts for `owner`, the digest of the
/// client's key); it ends with `outcomes` or `core`.
/// An `operator_view` session sees every test in the status view.
/// Its heartbeats name it to the core by `id`; it asks for one every
/// `heartbeat_interval` seconds (0 = none).
client_session_actor
spawn_client_session(caf::actor_system& sys, core_actor core,
                     caf::node_id client, caf::actor outcomes,
                     std::string owner, std::shared_ptr<refusal_log> log,
                     peer_namer name, bool operator_view = false,
                     uint64_t id = 0, double heartbeat_interval = 0);

} // namespace alb::coord
