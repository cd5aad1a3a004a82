#include "actors/node_uplink.hpp"

#include <algorithm>
#include <chrono>
#include <unordered_map>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/caf_ec.hpp"
#include "runtime/test_logs.hpp"

namespace alb {

namespace {

struct uplink_state {
  static inline const char* name = "alb.node_uplink";

  /// Local workers by actor id (the id the coordinator knows them by).
  std::unordered_map<uint64_t, worker_actor> workers;
  /// Where reports go (named by the coordinator when a worker joins).
  scheduler_actor scheduler;
  /// Reports gathered since the last send.
  report_bundle out;
  /// Whether a tick to send them is on its way.
  bool flush_scheduled = false;
  /// Name of the node process.
  std::string node;
  /// Whether heartbeats to the scheduler (the node's session) are going.
  bool beating = false;
  /// The node's per-test logs (null = none kept).
  std::shared_ptr<test_log_store> logs;
  /// A follow request held until its test writes past its offset, stops
  /// writing, or its wait is over.
  struct held_log {
    caf::typed_response_promise<log_chunk> rp;
    log_request rq;
    caf::actor_clock::time_point until;
  };
  /// Follow requests held.
  std::vector<held_log> held;
  /// Whether a look at the held requests is scheduled.
  bool log_tick = false;
};

using uplink_impl = node_uplink_actor::stateful_pointer<uplink_state>;

void send_reports(uplink_impl self) {
  auto& st = self->state;
  st.flush_scheduled = false;
  if (st.out.batches.empty() || !st.scheduler)
    return;
  self->send(st.scheduler, std::move(st.out));
  st.out.batches.clear();
}

// One heartbeat to the node's session; the reply says when the next is
// due. A session that is gone (the coordinator dropped this node, or it
// refuses the heartbeat) ends the uplink with `unreachable`, and with it
// the workers and what they run: the node then joins again afresh.
void heartbeat(uplink_impl self) {
  auto& st = self->state;
  if (!st.scheduler) {
    st.beating = false;
    return;
  }
  auto session = caf::actor_cast<node_session_actor>(st.scheduler);
  self->request(session, std::chrono::seconds(10), heartbeat_atom::value)
    .then(
      [self](double next) {
        if (next > 0)
          self->delayed_send(self,
                             std::chrono::duration_cast<caf::timespan>(
                               std::chrono::duration<double>(next)),
                             heartbeat_atom::value);
        else
          self->state.beating = false;
      },
      [self](caf::error& e) {
        // No answer in time (the coordinator is busy or the network slow):
        // try again; an answer that the session is gone (ec::node_dropped,
        // or the session no longer there) drops us.
        if (e == caf::sec::request_timeout)
          heartbeat(self);
        else
          self->quit(caf::exit_reason::unreachable);
      });
}

// How often held follow requests look at their log again: a local file's
// size, so cheap; short enough that `alb logs --follow` keeps up.
constexpr auto log_recheck = std::chrono::milliseconds(50);

log_chunk read_log(uplink_impl self, const log_request& rq) {
  log_chunk c;
  c.offset = rq.offset;
  auto& logs = self->state.logs;
  if (!logs) {
    c.state = static_cast<int32_t>(log_state::not_kept);
    c.why = "node '" + self->state.node + "' keeps no test logs";
    return c;
  }
  auto max = rq.max == 0 ? max_log_chunk : std::min(rq.max, max_log_chunk);
  auto p = logs->read(
    rq.test_id, rq.stream == 1 ? test_log_store::err : test_log_store::out,
    rq.offset, static_cast<size_t>(max));
  if (!p.found) {
    c.state = static_cast<int32_t>(log_state::not_kept);
    c.why = "node '" + self->state.node + "' keeps no log of test '"
            + rq.test_id + "' (deleted past its --log-keep or "
            + "--log-max-bytes, or never written there)";
    return c;
  }
  c.writing = p.writing;
  c.size = p.size;
  c.data = std::move(p.data);
  return c;
}

// Answers the held follow requests that have something to say now.
void recheck_logs(uplink_impl self) {
  auto& st = self->state;
  st.log_tick = false;
  auto now = self->clock().now();
  auto& hs = st.held;
  for (size_t i = 0; i < hs.size();) {
    auto c = read_log(self, hs[i].rq);
    if (!c.data.empty() || !c.writing || now >= hs[i].until) {
      hs[i].rp.deliver(std::move(c));
      hs[i] = std::move(hs.back());
      hs.pop_back();
    } else {
      ++i;
    }
  }
  if (!hs.empty()) {
    st.log_tick = true;
    self->delayed_send(self, log_recheck, log_atom::value);
  }
}

// Takes an argument on purpose: CAF 0.17 spawns a function actor without
// arguments through a null tuple pointer (undefined behaviour).
node_uplink_actor::behavior_type
uplink_behavior(uplink_impl self, std::string node,
                std::shared_ptr<test_log_store> logs) {
  self->state.node = std::move(node);
  self->state.logs = std::move(logs);
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& ws = self->state.workers;
    ws.erase(dm.source.id());
    // Its workers are all gone (refused, left, or lost their coordinator):
    // the reports it still holds have nowhere to go either.
    if (ws.empty())
      self->quit();
  });
  return {
    [self](node_work& w) {
      auto& st = self->state;
      for (size_t i = 0; i < w.batches.size() && i < w.workers.size(); ++i) {
        auto k = st.workers.find(w.workers[i]);
        // A worker that is gone: the coordinator's proxy sees it go and
        // requeues what it held, these placements included.
        if (k != st.workers.end())
          self->send(k->second, std::move(w.batches[i]));
      }
    },
    [self](cancel_atom, uint64_t worker, uint32_t ref, uint32_t gen) {
      auto& st = self->state;
      auto k = st.workers.find(worker);
      if (k != st.workers.end())
        self->send(k->second, cancel_atom::value, ref, gen);
    },
    [self](join_atom) {
      auto& src = self->current_sender();
      if (!src)
        return;
      auto w = caf::actor_cast<worker_actor>(src);
      self->state.workers[src->id()] = w;
      self->monitor(w);
    },
    [self](join_atom, scheduler_actor& s) {
      auto& st = self->state;
      if (st.scheduler != s) {
        // Reports for an earlier scheduler mean nothing to this one.
        st.out.batches.clear();
        st.scheduler = std::move(s);
      }
      if (!st.beating) {
        st.beating = true;
        heartbeat(self);
      }
    },
    [self](report_batch& b) {
      auto& st = self->state;
      st.out.batches.push_back(std::move(b));
      // The tick queues behind the reports already in the mailbox: what the
      // workers reported in this turn leaves together.
      if (!st.flush_scheduled) {
        st.flush_scheduled = true;
        self->send(self, tick_atom::value);
      }
    },
    [self](tick_atom) { send_reports(self); },
    [self](heartbeat_atom) {
      // Only its own timer: nobody else paces the heartbeats.
      if (self->current_sender() == self->ctrl())
        heartbeat(self);
    },
    [self](log_atom, log_request& rq) -> caf::result<log_chunk> {
      auto& st = self->state;
      // Only the coordinator this node joined reads its logs (it checked
      // who may): the uplink's handle is all another peer would need.
      auto& src = self->current_sender();
      if (!st.scheduler || !src || src->node() != st.scheduler.node())
        return caf::make_error(ec::not_accepted,
                               "log requests are accepted from the node's "
                               "coordinator only");
      auto c = read_log(self, rq);
      if (rq.wait_ms == 0 || !c.data.empty() || !c.writing)
        return c;
      // Nothing new yet while the test writes: held, so a follower gets
      // the next bytes (or the end) as soon as they are there.
      auto rp = self->make_response_promise<log_chunk>();
      auto until = self->clock().now() + std::chrono::milliseconds(rq.wait_ms);
      st.held.push_back({rp, std::move(rq), until});
      if (!st.log_tick) {
        st.log_tick = true;
        self->delayed_send(self, log_recheck, log_atom::value);
      }
      return rp;
    },
    [self](log_atom) {
      if (self->current_sender() == self->ctrl())
        recheck_logs(self);
    },
    [self](leave_atom, uint32_t slot) {
      send_reports(self);
      if (self->state.scheduler)
        self->send(self->state.scheduler, leave_atom::value, slot);
    },
  };
}

} // namespace

node_uplink_actor spawn_node_uplink(caf::actor_system& sys,
                                    const std::string& node,
                                    std::shared_ptr<test_log_store> logs) {
  return sys.spawn(uplink_behavior, node, std::move(logs));
}

} // namespace alb
