// The coordinator's published actor and its sessions (see
// actors/coordinator_internal.hpp for who may send what).

#include <algorithm>
#include <utility>

#include <caf/mailbox_element.hpp>
#include <caf/message_view.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/type_erased_tuple.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/uniform_type_info_map.hpp>

#include "actors/caf_ec.hpp"
#include "actors/coordinator_internal.hpp"

namespace alb::coord {

refusal_log::refusal_log(std::function<void(const std::string&)> out)
  : out_(std::move(out)), limiter_(40, 10.0, "messages refused"),
    epoch_(std::chrono::steady_clock::now()) {
  // nop
}

bool refusal_log::admit(const std::string& kind) {
  std::lock_guard<std::mutex> g{mtx_};
  auto now
    = std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_)
        .count();
  return limiter_.admit(kind, now, out_) && out_;
}

void refusal_log::write(const std::string& line) {
  std::lock_guard<std::mutex> g{mtx_};
  if (out_)
    out_(line);
}

void refusal_log::remember(const std::string& node, const std::string& peer) {
  std::lock_guard<std::mutex> g{mtx_};
  if (known_.count(node) == 0) {
    if (known_order_.size() >= max_known) {
      // Drop the oldest half at once: O(1) amortized per entry.
      auto half = known_order_.begin()
                  + static_cast<std::ptrdiff_t>(known_order_.size() / 2);
      for (auto it = known_order_.begin(); it != half; ++it)
        known_.erase(*it);
      known_order_.erase(known_order_.begin(), half);
    }
    known_order_.push_back(node);
  }
  known_[node] = peer;
}

std::string refusal_log::known(const std::string& node) {
  std::lock_guard<std::mutex> g{mtx_};
  auto it = known_.find(node);
  return it == known_.end() ? std::string{} : it->second;
}

void refusal_log::forget(const std::string& node) {
  std::lock_guard<std::mutex> g{mtx_};
  if (known_.erase(node) > 0)
    known_order_.erase(
      std::find(known_order_.begin(), known_order_.end(), node));
}

namespace {

/// Marks a system message (exit, down, error) from outside that the
/// mailbox filter took out of an element (see guarded_actor).
using sysmsg_atom = caf::atom_constant<caf::atom("sysmsg")>;

/// A typed actor whose mailbox keeps system messages from outside away
/// from CAF's built-in handling. CAF acts on an exit_msg, down_msg or
/// error in any message, whoever sent it: an exit with reason `kill`
/// ends any actor before a handler sees it, an error ends one that has no
/// error handler. A peer that can address an actor (the published one, or a
/// session whose id it guessed) could end it with one message. Such
/// messages pass only when `admit` says so (from this process, or a down
/// of what the actor watches); the rest arrive as ('sysmsg', name) and
/// are refused like any unexpected message.
template<class Handle>
class guarded_actor : public Handle::base {
public:
  using super = typename Handle::base;
  using behavior_type = typename Handle::behavior_type;
  using init_fn = std::function<behavior_type(guarded_actor*)>;
  using admit_fn = std::function<bool(const caf::mailbox_element&)>;

  guarded_actor(caf::actor_config& cfg, init_fn init, admit_fn admit)
    : super(cfg), init_(std::move(init)), admit_(std::move(admit)) {
    // nop
  }

  behavior_type make_behavior() override { return init_(this); }

  void enqueue(caf::mailbox_element_ptr x, caf::execution_unit* eu) override {
    if (x && is_system_message(x->content()) && !admit_(*x)) {
      auto& c = x->content();
      std::string name = c.match_element<caf::exit_msg>(0)   ? "exit_msg"
                         : c.match_element<caf::down_msg>(0) ? "down_msg"
                                                             : "error";
      x = caf::make_mailbox_element(std::move(x->sender), x->mid,
                                    std::move(x->stages), sysmsg_atom::value,
                                    std::move(name));
    }
    super::enqueue(std::move(x), eu);
  }

private:
  static bool is_system_message(const caf::type_erased_tuple& c) {
    return c.size() == 1
           && (c.match_element<caf::exit_msg>(0)
               || c.match_element<caf::down_msg>(0)
               || c.match_element<caf::error>(0));
  }

  init_fn init_;
  admit_fn admit_;
};

/// Whether `x` comes from an actor of this process (`here`).
bool from_here(const caf::mailbox_element& x, const caf::node_id& here) {
  return x.sender && x.sender->node() == here;
}

// Names a message for a refusal line: its first element's type, or the
// atom it starts with ("outcome_batch", "'stats'").
std::string name_of(caf::actor_system& sys, const caf::type_erased_tuple& x) {
  if (x.empty())
    return "an empty message";
  if (x.size() == 2 && x.match_element<caf::atom_value>(0)
      && x.get_as<caf::atom_value>(0) == sysmsg_atom::value
      && x.match_element<std::string>(1))
    return x.get_as<std::string>(1);
  auto& name = sys.types().portable_name(x.type(0));
  if (name == "@atom")
    return "message " + x.stringify(0);
  if (name.empty() || name[0] == '@')
    return "a message of unknown type";
  // Types are registered as "alb::outcome_batch": the operator knows them
  // without the namespace.
  if (name.rfind("alb::", 0) == 0)
    return name.substr(5);
  return name;
}

// Installs the handler for messages outside the actor's interface: a peer
// can send any message to any handle it holds (an actor_cast away), so
// each is answered with an error and logged, not printed to stderr.
template<class Self>
void refuse_unexpected(Self* self, std::shared_ptr<refusal_log> log,
                       peer_namer name, std::string why) {
  self->set_default_handler(
    [self, log, name, why](caf::scheduled_actor*,
                           caf::message_view& x) -> caf::result<caf::message> {
      refuse(self, log, name, name_of(self->home_system(), x.content()), why);
      return caf::make_error(ec::not_accepted);
    });
}

// -- door ---------------------------------------------------------------------

using door_impl = guarded_actor<coordinator_actor>*;

coordinator_actor::behavior_type door_behavior(door_impl self, core_actor core,
                                               std::shared_ptr<refusal_log> log,
                                               peer_namer name) {
  // Ends with the core and the core with it. A stop is an exit sent here:
  // passed on to the core, which writes what it gathered first; the door
  // ends after it, so whoever watches the door sees the whole stop.
  self->link_to(core);
  // CAF drops the link to the sender of an exit it handles, so the door
  // watches the core too: it ends when (and how) the core does.
  self->monitor(core);
  self->set_down_handler([self](caf::down_msg& dm) { self->quit(dm.reason); });
  self->set_exit_handler([self, core](caf::exit_msg& em) {
    if (em.reason)
      self->send_exit(core, em.reason);
  });
  refuse_unexpected(self, log, name,
                    "only a join or a hello with the token is accepted on the "
                    "coordinator's port (no session)");
  return {
    [self, core](join_atom a, node_join& j, worker_actor& w) {
      return self->delegate(core, a, std::move(j), std::move(w));
    },
    [self, core](hello_atom a, client_hello& h) {
      return self->delegate(core, a, std::move(h));
    },
  };
}

// -- node session -------------------------------------------------------------

using node_session_impl = guarded_actor<node_session_actor>*;

node_session_actor::behavior_type
node_session_behavior(node_session_impl self, core_actor core,
                      scheduler_actor sched,
                      std::shared_ptr<node_session_data> data,
                      std::shared_ptr<refusal_log> log, peer_namer name) {
  refuse_unexpected(self, log, name, "not accepted from a node");
  // Not linked: its end (the node's last worker gone) must not end the
  // core; it ends with the core.
  self->monitor(core);
  self->set_down_handler([self](caf::down_msg&) { self->quit(); });
  // Only the node's own process, and only for its own workers' slots: a
  // node must not report, leave or answer revokes for another's workers.
  auto own = [self, data](uint32_t slot) {
    return sender_node(self) == data->node && data->owns(slot);
  };
  auto not_own
    = [self, log, name, data](const std::string& what, uint32_t slot) {
        // A dropped node's late reports are expected, not an attack: they
        // just do not count.
        if (data->dropped.load())
          return;
        refuse(self, log, name, what + " for slot " + std::to_string(slot),
               sender_node(self) == data->node
                 ? "slot is not one of node '" + data->name + "''s workers"
                 : "the session of node '" + data->name
                     + "' belongs to another process");
      };
  auto no = [self, log, name](const std::string& what) {
    refuse(self, log, name, what, "not accepted from a node");
  };
  return {
    [no](test_batch&) { no("test_batch"); },
    [no](join_atom, worker_capabilities&,
         worker_actor&) -> caf::result<uint32_t> {
      no("join on a node session");
      return caf::make_error(ec::not_accepted);
    },
    [self, sched, own, not_own](report_batch& b) {
      if (own(b.slot))
        self->send(sched, std::move(b));
      else
        not_own("report_batch", b.slot);
    },
    [self, sched, own, not_own](report_bundle& b) {
      // The uplink gathers the reports of all the node's workers: keep
      // those for its own slots, drop the rest.
      auto& bs = b.batches;
      size_t k = 0;
      for (size_t i = 0; i < bs.size(); ++i) {
        if (own(bs[i].slot)) {
          if (k != i)
            bs[k] = std::move(bs[i]);
          ++k;
        } else {
          not_own("report_bundle", bs[i].slot);
        }
      }
      bs.resize(k);
      if (!bs.empty())
        self->send(sched, std::move(b));
    },
    [self, sched, own, not_own](load_report& r) {
      if (own(r.slot))
        self->send(sched, std::move(r));
      else
        not_own("load_report", r.slot);
    },
    [self, sched, own, not_own](leave_atom a, uint32_t slot) {
      if (own(slot))
        self->send(sched, a, slot);
      else
        not_own("leave", slot);
    },
    [no](tick_atom) { no("message 'tick'"); },
    [no](end_atom, uint64_t) { no("message 'end'"); },
    [no](stats_atom) -> caf::result<std::string> {
      no("message 'stats'");
      return caf::make_error(ec::not_accepted);
    },
    [no](cancel_atom, std::string&) { no("message 'cancel'"); },
    [no](cancel_atom,
         std::vector<std::string>&) -> caf::result<std::vector<std::string>> {
      no("message 'cancel'");
      return caf::make_error(ec::not_accepted);
    },
    [no](status_atom, uint64_t) -> caf::result<std::string> {
      no("message 'status'");
      return caf::make_error(ec::not_accepted);
    },
    [no](log_atom, std::string&) -> caf::result<uint32_t> {
      no("message 'log'");
      return caf::make_error(ec::not_accepted);
    },
    [self, sched, own, not_own](revoke_reply& r) {
      if (own(r.slot))
        self->send(sched, std::move(r));
      else
        not_own("revoke_reply", r.slot);
    },
    [self, sched, own, not_own](revoke_atom a, uint32_t slot) {
      if (own(slot))
        self->send(sched, a, slot);
      else
        not_own("message 'revoke'", slot);
    },
    [self, core, data, log, name](heartbeat_atom) -> caf::result<double> {
      if (sender_node(self) != data->node) {
        refuse(self, log, name, "heartbeat",
               "the session of node '" + data->name
                 + "' belongs to another process");
        return caf::make_error(ec::not_your_session);
      }
      // Declared lost already: the error tells the node it was dropped.
      if (data->dropped.load())
        return caf::make_error(ec::node_dropped);
      self->send(core, heartbeat_atom::value, data->id);
      return data->heartbeat_interval;
    },
  };
}

// -- client session -----------------------------------------------------------

using client_session_impl = guarded_actor<client_session_actor>*;

client_session_actor::behavior_type client_session_behavior(
  client_session_impl self, core_actor core, caf::node_id client,
  caf::actor outcomes, std::string owner, std::shared_ptr<refusal_log> log,
  peer_namer name, bool operator_view, uint64_t id, double interval) {
  refuse_unexpected(self, log, name, "not accepted from a client");
  // Named now, while the client is connected: what it is refused later is
  // logged with its address even if it has hung up by then.
  auto key = to_string(client);
  with_peer(self, name, client, [log, key](const std::string& peer) {
    if (peer != "local" && peer != "unknown peer")
      log->remember(key, peer);
  });
  // The session is the client's: it ends when the client does (or the
  // core).
  self->monitor(outcomes);
  self->monitor(core);
  self->set_down_handler([self, log, key](caf::down_msg&) {
    log->forget(key);
    self->quit();
  });
  auto mine = [self, client, log, name](const std::string& what) {
    if (sender_node(self) == client)
      return true;
    refuse(self, log, name, what,
           "the session belongs to another client's process");
    return false;
  };
  auto refused = [](const char* what) {
    return caf::make_error(ec::not_your_session, std::string{what});
  };
  return {
    [self, core, outcomes, owner, mine,
     refused](submit_atom a, cluster_submission& s) -> caf::result<uint64_t> {
      if (!mine("a submission on a client session"))
        return refused("submission");
      return self->delegate(core, a, std::move(s), outcomes, owner);
    },
    [self, core, mine, refused](stats_atom a) -> caf::result<std::string> {
      if (!mine("a stats request on a client session"))
        return refused("stats");
      return self->delegate(core, a);
    },
    [self, core, owner, mine, refused, operator_view](
      cancel_atom a, cancel_request& rq) -> caf::result<cancel_result> {
      if (!mine("a cancel on a client session"))
        return refused("cancel");
      return self->delegate(core, a, std::move(rq), owner, operator_view);
    },
    [self, core, owner, mine,
     refused](results_atom a, std::string& run) -> caf::result<std::string> {
      if (!mine("a results request on a client session"))
        return refused("results");
      return self->delegate(core, a, std::move(run), owner);
    },
    [self, core, outcomes, mine, refused,
     operator_view](status_atom a) -> caf::result<std::string> {
      if (!mine("a status request on a client session"))
        return refused("status");
      return self->delegate(core, a, outcomes, operator_view);
    },
    [self, core, mine, refused, id,
     interval](heartbeat_atom) -> caf::result<double> {
      if (!mine("a heartbeat on a client session"))
        return refused("heartbeat");
      if (interval > 0)
        self->send(core, heartbeat_atom::value, id);
      return interval;
    },
    [self, core, mine, refused](limits_atom a) -> caf::result<uint64_t> {
      if (!mine("a limits request on a client session"))
        return refused("limits");
      return self->delegate(core, a);
    },
    [self, core, owner, mine, refused,
     operator_view](log_atom a, log_request& rq) -> caf::result<log_chunk> {
      if (!mine("a log request on a client session"))
        return refused("log");
      return self->delegate(core, a, std::move(rq), owner, operator_view);
    },
  };
}

} // namespace

coordinator_actor spawn_door(caf::actor_system& sys, core_actor core,
                             std::shared_ptr<refusal_log> log,
                             peer_namer name) {
  using impl = guarded_actor<coordinator_actor>;
  auto here = sys.node();
  // Stops come from this process (a local actor sending the exit) and the
  // core's down from the core itself.
  return sys.spawn<impl>(
    [core, log, name](impl* self) {
      return door_behavior(self, core, log, name);
    },
    [here](const caf::mailbox_element& x) { return from_here(x, here); });
}

node_session_actor spawn_node_session(caf::actor_system& sys, core_actor core,
                                      scheduler_actor sched,
                                      std::shared_ptr<node_session_data> data,
                                      std::shared_ptr<refusal_log> log,
                                      peer_namer name) {
  using impl = guarded_actor<node_session_actor>;
  auto here = sys.node();
  return sys.spawn<impl>(
    [core, sched, data, log, name](impl* self) {
      return node_session_behavior(self, core, sched, data, log, name);
    },
    [here](const caf::mailbox_element& x) { return from_here(x, here); });
}

client_session_actor spawn_client_session(
  caf::actor_system& sys, core_actor core, caf::node_id client,
  caf::actor outcomes, std::string owner, std::shared_ptr<refusal_log> log,
  peer_namer name, bool operator_view, uint64_t id, double heartbeat_interval) {
  using impl = guarded_actor<client_session_actor>;
  auto here = sys.node();
  auto watched = outcomes.address();
  return sys.spawn<impl>(
    [core, client, outcomes, owner, log, name, operator_view, id,
     heartbeat_interval](impl* self) {
      return client_session_behavior(self, core, client, outcomes, owner, log,
                                     name, operator_view, id,
                                     heartbeat_interval);
    },
    // The client's process reports the end of its outcome actor (its
    // connection gone, or a clean leave).
    [here, client, watched](const caf::mailbox_element& x) {
      if (from_here(x, here))
        return true;
      auto& c = x.content();
      return x.sender && x.sender->node() == client
             && c.match_element<caf::down_msg>(0)
             && c.get_as<caf::down_msg>(0).source == watched;
    });
}

} // namespace alb::coord
