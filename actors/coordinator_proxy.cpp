#include "actors/coordinator_proxy.hpp"

#include <utility>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

namespace alb::coord {

namespace {

struct proxy_state {
  static inline const char* name = "alb.worker_proxy";
  worker_actor remote;
  node_uplink_actor uplink;
};

using proxy_impl = revocable_worker_actor::stateful_pointer<proxy_state>;

revocable_worker_actor::behavior_type
proxy_behavior(proxy_impl self, worker_actor remote, node_uplink_actor uplink) {
  self->state.remote = remote;
  self->state.uplink = std::move(uplink);
  self->monitor(remote);
  // The remote worker (or the connection to its node) is gone: end the
  // proxy with a non-normal reason, so the scheduler treats the worker as
  // lost and requeues what it held.
  self->set_down_handler([self](caf::down_msg& dm) {
    self->quit(dm.reason
                 ? dm.reason
                 : caf::error{caf::exit_reason::remote_link_unreachable});
  });
  return {
    [self](work_batch& b) { self->send(self->state.remote, std::move(b)); },
    [self](cancel_atom, uint32_t ref, uint32_t gen) {
      auto& st = self->state;
      // The same way its placements went, so the cancel cannot overtake
      // the placement it withdraws.
      if (st.uplink)
        self->send(st.uplink, cancel_atom::value,
                   static_cast<uint64_t>(st.remote.id()), ref, gen);
      else
        self->send(st.remote, cancel_atom::value, ref, gen);
    },
    [](finish_atom, uint64_t) {
      // nop: proxies run nothing
    },
    [](tick_atom) {
      // nop
    },
    [self](status_atom) {
      return self->delegate(self->state.remote, status_atom::value);
    },
    [self](leave_atom) { self->send(self->state.remote, leave_atom::value); },
    [self](revoke_batch& b) {
      // Straight to the worker: a revoke that overtakes its placement
      // (sent through the uplink) finds nothing and is answered "kept",
      // which is safe.
      self->send(caf::actor_cast<revocable_worker_actor>(self->state.remote),
                 std::move(b));
    },
  };
}

} // namespace

revocable_worker_actor spawn_worker_proxy(caf::actor_system& sys,
                                          worker_actor remote,
                                          node_uplink_actor uplink) {
  return sys.spawn(proxy_behavior, std::move(remote), std::move(uplink));
}

} // namespace alb::coord
