#include "actors/node_host.hpp"

#include <algorithm>
#include <chrono>
#include <sstream>

#include <caf/actor_system.hpp>
#include <caf/scoped_actor.hpp>

#include "actors/caf_ec.hpp"
#include "actors/cluster_net.hpp"
#include "actors/node_uplink.hpp"
#include "actors/real_worker.hpp"

namespace alb {

int run_node_host(caf::actor_system& sys, const node_host_options& o) {
  // Tries to reach the coordinator for up to `seconds`, backing off from
  // 0.2 s to 5 s between attempts: 0 = connected, 1 = gave up, 2 = stop
  // signal.
  std::string last_error;
  auto attach = [&](double seconds, coordinator_actor& out) {
    auto deadline
      = std::chrono::steady_clock::now()
        + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
          std::chrono::duration<double>(seconds));
    double pause = 0.2;
    for (int attempt = 1;; ++attempt) {
      if (o.debug)
        o.debug("connecting to " + o.endpoint + " (attempt "
                + std::to_string(attempt) + ")");
      auto h
        = connect_coordinator(sys, o.host, o.port, std::chrono::seconds(10));
      if (h) {
        if (o.debug)
          o.debug("connection to " + o.endpoint + " established");
        out = *h;
        return 0;
      }
      last_error = sys.render(h.error());
      if (h.error() == caf::sec::disconnect_during_handshake)
        last_error += tls_mismatch_hint(o.tls);
      auto left = std::chrono::duration<double>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
      if (left <= 0)
        return 1;
      if (o.stop_requested(std::min(pause, left)) != 0)
        return 2;
      if (o.debug)
        o.debug("connection to " + o.endpoint + " failed: " + last_error
                + "; next attempt in " + std::to_string(std::min(pause, left))
                + " s");
      pause = std::min(pause * 2, 5.0);
    }
  };
  // One store for the workers and the uplink, which reads the logs back
  // for `alb logs`.
  auto logs = o.logs;
  if (!logs) {
    std::string error;
    logs = test_log_store::open(test_log_options{}, error);
    if (!logs) {
      o.error("cannot make a directory for the test logs: " + error);
      return 1;
    }
  }
  caf::scoped_actor self{sys};
  // One pass per connection: a coordinator that goes away (killed,
  // restarted, network) is waited for and joined again under the same node
  // and worker names, so it recognises this node.
  for (bool first = true;; first = false) {
    coordinator_actor coord;
    // The coordinator may still be starting (e.g. under `alb run`).
    auto got = attach(first ? o.connect_timeout : o.reconnect_timeout, coord);
    if (got == 2)
      return 0;
    if (got == 1) {
      std::ostringstream msg;
      if (first)
        msg << "cannot reach coordinator at " << o.endpoint << ": "
            << last_error;
      else
        msg << "coordinator at " << o.endpoint
            << " did not come back within --reconnect-timeout "
            << o.reconnect_timeout << " s: " << last_error;
      o.error(msg.str());
      return 1;
    }
    o.info(std::string{first ? "connected" : "reconnected"} + " to "
           + o.endpoint + " as node '" + o.node + "' (" + o.summary + ")");
    if (o.on_connected)
      o.on_connected(true);
    std::vector<worker_actor> workers;
    // One per connection: a rejoin starts with nothing gathered.
    auto uplink = spawn_node_uplink(sys, o.node, logs);
    for (auto& c : o.caps) {
      real_worker_options wo;
      wo.caps = c;
      wo.coordinator = coord;
      wo.uplink = uplink;
      wo.token = o.token;
      wo.node = o.node;
      wo.logs = logs;
      wo.max_output = o.max_output;
      wo.observer = o.observer;
      wo.cgroups = o.cgroups;
      auto w = spawn_real_worker(sys, scheduler_actor{}, std::move(wo));
      self->monitor(w);
      workers.push_back(w);
    }
    size_t alive = workers.size();
    bool refused = false;
    bool stopping = false; // by signal
    bool lost = false;
    caf::error lost_reason;
    while (alive > 0) {
      self->receive(
        [&](caf::down_msg& dm) {
          --alive;
          if (stopping || lost || refused)
            return;
          if (auto code = ec_of(dm.reason); code && is_join_refusal(*code)) {
            // The coordinator refused the join (token, capabilities).
            auto detail = ec_detail(dm.reason);
            o.error(std::string{"coordinator refused the node: "}
                    + describe(*code) + (detail.empty() ? "" : ": " + detail));
            refused = true;
          } else {
            // The coordinator (or the connection) is gone: so is every
            // worker's scheduler. Ending the workers kills the commands
            // they ran; the coordinator's journal runs them again.
            lost = true;
            lost_reason = dm.reason;
          }
          for (auto& w : workers)
            self->send_exit(w, caf::exit_reason::user_shutdown);
        },
        caf::after(std::chrono::milliseconds(100)) >>
          [&] {
            if (!stopping && !lost && !refused && o.stop_requested(0) != 0) {
              o.info("stopping: leaving the cluster");
              stopping = true;
              // A clean leave: the scheduler requeues what the workers held
              // without counting it as a lost node.
              for (auto& w : workers)
                self->send(w, leave_atom::value);
            }
          });
    }
    workers.clear();
    self->send_exit(uplink, caf::exit_reason::user_shutdown);
    if (o.on_connected)
      o.on_connected(false);
    if (refused)
      return 1;
    if (stopping)
      return 0;
    auto why = lost_reason ? sys.render(lost_reason) : std::string{"normal"};
    if (lost_reason == caf::exit_reason::unreachable) {
      // The coordinator heard no heartbeat from this node for its
      // --node-timeout (stopped, partitioned) and requeued its tests: what
      // it ran here no longer counts, so it was killed; a fresh session
      // starts with nothing.
      o.info("dropped by the coordinator (no heartbeat from this node "
             "within its --node-timeout); running tests killed; joining "
             "again");
      continue;
    }
    if (o.reconnect_timeout <= 0) {
      o.info("coordinator went away (" + why + "); stopping");
      return 0;
    }
    o.info("coordinator went away (" + why
           + "); running tests killed; reconnecting for up to "
           + std::to_string(static_cast<long long>(o.reconnect_timeout))
           + " s");
  }
}

} // namespace alb
