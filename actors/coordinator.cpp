#include "actors/coordinator.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include <caf/actor_system.hpp>
#include <caf/io/middleman.hpp>
#include <caf/io/middleman_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <nlohmann/json.hpp>

#include "runtime/cluster_state.hpp"
#include "runtime/id_map.hpp"
#include "runtime/journal.hpp"

namespace alb {

bool tokens_equal(const std::string& a, const std::string& b) {
  // No early exit inside: the time taken must not tell how much of a guess
  // is right (the length may leak; tokens are long and random).
  if (a.size() != b.size())
    return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i)
    diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

namespace {

/// How to run a test, kept in the coordinator's process while the test is
/// open; the proxies read it when the scheduler places the test.
struct run_spec {
  std::vector<std::string> command;
  std::map<std::string, std::string> env;
  std::string cwd;
};

/// Shared between the coordinator (writes) and the proxies (read), which
/// may run on different scheduler threads.
struct spec_store {
  std::mutex mtx;
  std::unordered_map<std::string, run_spec> by_id;

  void put(const std::string& id, run_spec s) {
    std::lock_guard<std::mutex> g{mtx};
    by_id[id] = std::move(s);
  }

  void erase(const std::string& id) {
    std::lock_guard<std::mutex> g{mtx};
    by_id.erase(id);
  }

  void fill(work_batch& b) {
    std::lock_guard<std::mutex> g{mtx};
    if (by_id.empty())
      return;
    for (auto& item : b.items) {
      if (!item.command.empty())
        continue; // the scheduler already carries it
      auto i = by_id.find(item.test_id);
      if (i == by_id.end())
        continue;
      item.command = i->second.command;
      item.env = i->second.env;
      item.cwd = i->second.cwd;
    }
  }
};

// -- routes -------------------------------------------------------------------

/// Placements of one node's workers gathered during a scheduler turn.
struct node_outbox {
  /// The node's uplink.
  node_uplink_actor uplink;
  /// What goes to it at the end of the turn.
  node_work work;
  /// Proxies routed through it.
  size_t routes = 0;
};

/// Which proxies' placements go through a node's uplink, and what is
/// gathered for each node. Written by the coordinator (joins, leaves) and
/// used by the scheduler's route and flush hooks on the scheduler's thread.
class route_table {
public:
  /// Routes the proxy `proxy` (an actor id in this process) through
  /// `uplink` to the worker with actor id `worker` on the node.
  void add(caf::actor_id proxy, const node_uplink_actor& uplink,
           uint64_t worker) {
    std::lock_guard<std::mutex> g{mtx_};
    auto& box = nodes_[uplink.address()];
    if (!box.uplink)
      box.uplink = uplink;
    ++box.routes;
    routes_[proxy] = route{worker, &box};
  }

  /// Forgets the proxy's route (and its node's outbox with the last one).
  void remove(caf::actor_id proxy) {
    std::lock_guard<std::mutex> g{mtx_};
    auto i = routes_.find(proxy);
    if (i == routes_.end())
      return;
    auto* box = i->second.box;
    routes_.erase(i);
    if (--box->routes == 0) {
      // Its placements were for workers that are all gone: the scheduler
      // requeued them.
      dirty_.erase(std::remove(dirty_.begin(), dirty_.end(), box),
                   dirty_.end());
      nodes_.erase(box->uplink.address());
    }
  }

  /// The scheduler's route hook: gathers the batch for its node when the
  /// proxy has a route.
  bool gather(const worker_actor& proxy, work_batch& b, spec_store& specs) {
    std::lock_guard<std::mutex> g{mtx_};
    auto i = routes_.find(proxy.id());
    if (i == routes_.end())
      return false;
    specs.fill(b);
    auto* box = i->second.box;
    auto& w = box->work;
    if (w.batches.empty())
      dirty_.push_back(box);
    w.workers.push_back(i->second.worker);
    w.batches.push_back(std::move(b));
    batches_.fetch_add(1, std::memory_order_relaxed);
    return true;
  }

  /// Worker batches sent through uplinks so far.
  uint64_t batches() const { return batches_.load(std::memory_order_relaxed); }

  /// Messages that carried them.
  uint64_t messages() const {
    return messages_.load(std::memory_order_relaxed);
  }

  /// Sends what was gathered, one message per node.
  void flush() {
    // Taken out under the lock, sent after it: a send may block on a full
    // connection's buffer for a moment.
    ready_.clear();
    {
      std::lock_guard<std::mutex> g{mtx_};
      for (auto* box : dirty_) {
        ready_.emplace_back(box->uplink, std::move(box->work));
        box->work.workers.clear();
        box->work.batches.clear();
      }
      dirty_.clear();
    }
    for (auto& [uplink, work] : ready_)
      caf::anon_send(uplink, std::move(work));
    messages_.fetch_add(ready_.size(), std::memory_order_relaxed);
    ready_.clear();
  }

private:
  struct route {
    uint64_t worker;
    node_outbox* box;
  };
  std::mutex mtx_;
  std::unordered_map<caf::actor_id, route> routes_;
  /// Stable addresses: routes point into it.
  std::map<caf::actor_addr, node_outbox> nodes_;
  /// Nodes with placements gathered since the last flush (a flush visits
  /// only these, however many nodes there are).
  std::vector<node_outbox*> dirty_;
  /// Scheduler thread only.
  std::vector<std::pair<node_uplink_actor, node_work>> ready_;
  std::atomic<uint64_t> batches_{0};
  std::atomic<uint64_t> messages_{0};
};

// -- proxy --------------------------------------------------------------------

struct proxy_state {
  static inline const char* name = "alb.worker_proxy";
  worker_actor remote;
  node_uplink_actor uplink;
  std::shared_ptr<spec_store> specs;
};

using proxy_impl = revocable_worker_actor::stateful_pointer<proxy_state>;

revocable_worker_actor::behavior_type
proxy_behavior(proxy_impl self, worker_actor remote, node_uplink_actor uplink,
               std::shared_ptr<spec_store> specs) {
  self->state.remote = remote;
  self->state.uplink = std::move(uplink);
  self->state.specs = std::move(specs);
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
    [self](work_batch& b) {
      self->state.specs->fill(b);
      self->send(self->state.remote, std::move(b));
    },
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

// -- coordinator --------------------------------------------------------------

struct node_info {
  size_t workers = 0;
  std::string peer;
};

/// A test that is queued or running.
struct open_test {
  /// Digest of its canonical definition (tells a resubmission of the same
  /// test from a different test under the same id; see
  /// `submission_journal::digest_of`).
  uint64_t digest = 0;
  /// Clients waiting for its outcome (none for a resumed test until one
  /// submits it again).
  std::vector<caf::actor> waiters;
  /// The last submission that named it (a second mention in one
  /// submission is rejected).
  uint64_t named_in = 0;
  /// Whether it has a command, environment or directory in the spec store.
  bool has_spec = false;
};

/// A client that submitted tests.
struct client_info {
  /// Journal records (id, seq) whose outcomes it was sent: retired when it
  /// disconnects cleanly.
  std::unordered_map<std::string, int64_t> delivered;
};

struct coordinator_state {
  static inline const char* name = "alb.coordinator";

  coordinator_options opts;
  scheduler_actor scheduler;
  std::shared_ptr<spec_store> specs = std::make_shared<spec_store>();
  std::shared_ptr<route_table> routes = std::make_shared<route_table>();
  id_map<open_test> pending;
  /// Numbers submissions (open_test::named_in).
  uint64_t submissions = 0;
  std::unordered_map<caf::actor_addr, client_info> clients;
  /// Outcomes waiting to be written to the journal.
  std::vector<cluster_outcome> outbox;
  bool flush_scheduled = false;
  std::map<std::string, node_info> nodes;
  /// Node name and proxy id of every registered remote worker.
  std::unordered_map<caf::actor_addr, std::pair<std::string, caf::actor_id>>
    worker_node;
  std::unordered_set<std::string> seen_nodes;
  size_t live_nodes = 0;
};

using coordinator_impl = coordinator_actor::stateful_pointer<coordinator_state>;

void log(coordinator_impl self, const std::string& line) {
  if (self->state.opts.log)
    self->state.opts.log(line);
}

// Calls `f` with "host:port" of the process `nid` (or "local").
template<class F>
void with_peer(coordinator_impl self, const caf::node_id& nid, F f) {
  auto& sys = self->home_system();
  if (nid == sys.node() || !sys.has_middleman()) {
    f(std::string{"local"});
    return;
  }
  self
    ->request(sys.middleman().actor_handle(), std::chrono::seconds(5),
              caf::get_atom::value, nid)
    .then(
      [self, f](const caf::node_id&, std::string& host, uint16_t port) mutable {
        // Behind a relay the middleman sees the relay's connection.
        auto& name = self->state.opts.peer_name;
        auto real = name ? name(host, port) : std::string{};
        f(real.empty() ? host + ":" + std::to_string(port) : real);
      },
      [f](caf::error&) mutable { f(std::string{"unknown peer"}); });
}

caf::node_id sender_node(coordinator_impl self) {
  auto& s = self->current_sender();
  return s ? s->node() : self->home_system().node();
}

void count_nodes(coordinator_impl self) {
  auto& st = self->state;
  size_t n = 0;
  for (auto& [name, info] : st.nodes)
    n += info.workers > 0 ? 1 : 0;
  if (n != st.live_nodes) {
    st.live_nodes = n;
    if (st.opts.on_nodes)
      st.opts.on_nodes(n);
  }
}

cluster_outcome make_outcome(const assignment& a, const attempt_outcome* o) {
  cluster_outcome c;
  c.test_id = a.test_id;
  c.status = to_string(a.status);
  c.success = a.success;
  c.exec_seconds = a.execution_time;
  c.attempts = a.attempts;
  c.worker_id = a.worker_id;
  c.error = a.error;
  if (o) {
    c.timed_out = o->timed_out;
    c.exit_code = o->exit_code;
    c.output_tail = o->output_tail;
    if (c.error.empty())
      c.error = o->error;
  }
  return c;
}

// Sends every outcome to the live clients waiting for it, one batch per
// client, and closes the tests.
void deliver(coordinator_impl self, std::vector<cluster_outcome>& items) {
  auto& st = self->state;
  auto* j = st.opts.journal.get();
  std::vector<std::pair<caf::actor, outcome_batch>> out;
  for (auto& c : items) {
    auto ref = st.pending.find(c.test_id);
    if (ref == st.pending.npos)
      continue;
    auto& p = st.pending[ref];
    auto waiters = std::move(p.waiters);
    // The spec store takes a lock: only tests with a command are in it.
    if (p.has_spec)
      st.specs->erase(c.test_id);
    st.pending.erase(ref);
    auto rec = j ? j->find(c.test_id) : nullptr;
    for (size_t w = 0; w < waiters.size(); ++w) {
      auto& client = waiters[w];
      // A client that left gets nothing: the journal keeps the outcome for
      // the next one that asks.
      auto ci = client ? st.clients.find(client.address()) : st.clients.end();
      if (ci == st.clients.end())
        continue;
      if (rec && rec->ended)
        ci->second.delivered[c.test_id] = rec->seq;
      auto k = std::find_if(out.begin(), out.end(),
                            [&](auto& p) { return p.first == client; });
      if (k == out.end()) {
        out.emplace_back(client, outcome_batch{});
        k = out.end() - 1;
      }
      // Usually a single waiter: it gets the outcome itself, not a copy.
      if (w + 1 == waiters.size())
        k->second.items.push_back(std::move(c));
      else
        k->second.items.push_back(c);
    }
  }
  for (auto& [client, ob] : out)
    caf::anon_send(client, std::move(ob));
}

// Writes the gathered outcomes in one transaction, then reports them: an
// outcome a client saw is always in the journal, so a restart never runs
// that test again.
void flush_outcomes(coordinator_impl self) {
  auto& st = self->state;
  st.flush_scheduled = false;
  if (st.outbox.empty())
    return;
  if (auto* j = st.opts.journal.get()) {
    std::vector<journaled_outcome> rows;
    rows.reserve(st.outbox.size());
    for (auto& c : st.outbox)
      if (st.pending.find(c.test_id) != st.pending.npos)
        rows.push_back(c);
    try {
      j->record(rows);
    } catch (const journal_error& e) {
      // Holding the outcomes back would stall every client; a restart runs
      // these tests again instead.
      log(self, std::string{"cannot record "} + std::to_string(rows.size())
                  + " outcomes, reporting them anyway: " + e.what());
    }
  }
  auto items = std::move(st.outbox);
  st.outbox.clear();
  deliver(self, items);
}

// A client disconnected: after a clean leave, the outcomes it received are
// collected and retired (its next submission of those ids runs afresh);
// after a lost connection they stay to answer it when it comes back.
void client_down(coordinator_impl self, const caf::down_msg& dm) {
  auto& st = self->state;
  auto i = st.clients.find(dm.source);
  if (i == st.clients.end())
    return;
  auto* j = st.opts.journal.get();
  bool clean = !dm.reason || dm.reason == caf::exit_reason::normal;
  if (j && clean && !i->second.delivered.empty()) {
    std::vector<std::string> ids;
    for (auto& [id, seq] : i->second.delivered) {
      // Only the record it received: a newer submission of the id is not
      // its to retire.
      auto r = j->find(id);
      if (r && r->ended && r->seq == seq)
        ids.push_back(id);
    }
    try {
      j->retire(ids);
    } catch (const journal_error& e) {
      log(self, std::string{"cannot retire collected outcomes: "} + e.what());
    }
  }
  st.clients.erase(i);
}

// Queues the journal's open tests again (a restarted coordinator).
void resume(coordinator_impl self) {
  auto& st = self->state;
  auto* j = st.opts.journal.get();
  for (auto& n : j->known_nodes())
    st.seen_nodes.insert(n);
  auto open = j->open_tests();
  if (!open.empty()) {
    test_batch batch;
    batch.tests.reserve(open.size());
    for (auto& t : open) {
      auto id = t.req.test_id;
      auto& p = st.pending[st.pending.try_emplace(id).first];
      p.digest = submission_journal::digest_of(t);
      p.has_spec = !t.command.empty() || !t.env.empty() || !t.cwd.empty();
      if (p.has_spec)
        st.specs->put(id, run_spec{std::move(t.command), std::move(t.env),
                                   std::move(t.cwd)});
      batch.tests.push_back(std::move(t.req));
    }
    self->send(st.scheduler, std::move(batch));
    log(self, "resumed " + std::to_string(open.size())
                + " unfinished tests from journal");
  }
  if (j->ended_count() > 0)
    log(self, "journal holds " + std::to_string(j->ended_count())
                + " outcomes no client has collected yet");
}

coordinator_actor::behavior_type
coordinator_behavior(coordinator_impl self, coordinator_options opts) {
  auto& st = self->state;
  st.opts = std::move(opts);
  auto sopts = st.opts.scheduler;
  sopts.finish_when_done = false;
  // Weak: the scheduler must not keep its coordinator alive.
  auto addr = caf::actor_cast<caf::actor_addr>(self);
  auto user_on_end = std::move(sopts.on_end);
  // Outcomes are gathered while the scheduler handles a message and sent
  // on in one batch when it is done with it: one message per test would
  // cost the coordinator, and its clients over the wire, one hand-off each.
  // Both hooks run on the scheduler's thread, so the buffer needs no lock.
  auto gathered = std::make_shared<outcome_batch>();
  sopts.on_end
    = [user_on_end, gathered](const assignment& a, const attempt_outcome* o) {
        if (user_on_end)
          user_on_end(a, o);
        gathered->items.push_back(make_outcome(a, o));
      };
  auto user_on_flush = std::move(sopts.on_flush);
  // Placements for workers behind an uplink go to their node in one
  // message per turn.
  sopts.route = [routes = st.routes, specs = st.specs](const worker_actor& h,
                                                       work_batch& b) {
    return routes->gather(h, b, *specs);
  };
  sopts.on_flush = [addr, user_on_flush, gathered, routes = st.routes] {
    routes->flush();
    if (user_on_flush)
      user_on_flush();
    if (gathered->items.empty())
      return;
    if (auto h = caf::actor_cast<caf::actor>(addr))
      caf::anon_send(h, std::move(*gathered));
    gathered->items.clear();
  };
  st.scheduler = spawn_scheduler(self->home_system(), std::move(sopts));
  self->link_to(st.scheduler);
  if (st.opts.journal)
    resume(self);
  self->set_exit_handler([self](caf::exit_msg& em) {
    // Outcomes still gathered for the journal are written (and reported)
    // before a stop: a clean stop must not leave them to run again after
    // a restart.
    flush_outcomes(self);
    if (em.reason)
      self->quit(em.reason);
  });
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    auto i = st.worker_node.find(dm.source);
    if (i == st.worker_node.end()) {
      client_down(self, dm);
      return;
    }
    auto name = i->second.first;
    st.routes->remove(i->second.second);
    st.worker_node.erase(i);
    auto& info = st.nodes[name];
    if (info.workers > 0 && --info.workers == 0) {
      log(self, "node '" + name + "' at " + info.peer + " left ("
                  + (dm.reason ? self->home_system().render(dm.reason)
                               : std::string{"clean leave"})
                  + ")");
      count_nodes(self);
    }
  });
  return {
    [self](join_atom, node_join& j,
           worker_actor& w) -> caf::result<uint32_t, scheduler_actor> {
      auto& st = self->state;
      auto nid = sender_node(self);
      if (!st.opts.token.empty() && !tokens_equal(j.token, st.opts.token)) {
        auto what = j.token.empty() ? "no join token" : "wrong join token";
        with_peer(self, nid,
                  [self, what, node = j.node,
                   wid = j.caps.worker_id](const std::string& peer) {
                    log(self, "refused worker '" + wid + "' of node '" + node
                                + "' from " + peer + ": " + what);
                  });
        return caf::make_error(caf::sec::invalid_argument,
                               std::string{"join refused: "} + what);
      }
      if (!w)
        return caf::make_error(caf::sec::invalid_argument,
                               "join refused: no worker handle");
      auto proxy = self->spawn(proxy_behavior, w, j.uplink, st.specs);
      auto rp = self->make_response_promise<uint32_t, scheduler_actor>();
      auto wid = j.caps.worker_id;
      self
        ->request(st.scheduler, caf::infinite, join_atom::value,
                  std::move(j.caps), caf::actor_cast<worker_actor>(proxy))
        .then(
          [self, rp, w, nid, wid, proxy, uplink = j.uplink,
           node = j.node](uint32_t slot) mutable {
            auto& st = self->state;
            st.worker_node[w.address()] = {node, proxy.id()};
            self->monitor(w);
            auto& info = st.nodes[node];
            if (info.workers++ == 0) {
              bool again = !st.seen_nodes.insert(node).second;
              if (!again && st.opts.journal) {
                // Remembered so a node is recognised across restarts too.
                try {
                  st.opts.journal->note_node(node);
                } catch (const journal_error& e) {
                  log(self, e.what());
                }
              }
              with_peer(self, nid, [self, node, again](const std::string& p) {
                self->state.nodes[node].peer = p;
                log(self, "node '" + node + "' "
                            + (again ? "rejoined" : "joined") + " from " + p);
              });
              count_nodes(self);
            }
            log(self, "worker '" + wid + "' of node '" + node
                        + "' registered in slot " + std::to_string(slot));
            rp.deliver(slot, st.scheduler);
            // alb's node workers answer revokes: said in the proxy's name,
            // the handle the scheduler knows, so rebalancing can move what
            // they have not started.
            caf::send_as(proxy, st.scheduler, revoke_atom::value, slot);
            // Routed only from here on: the worker's uplink knows it (the
            // worker announced itself before asking to join), and the
            // placements made so far went through the proxy.
            if (uplink)
              st.routes->add(proxy.id(), uplink, w.id());
          },
          [self, rp, proxy, wid](caf::error& e) mutable {
            log(self, "worker '" + wid
                        + "' not registered: " + self->home_system().render(e));
            self->send_exit(proxy, caf::exit_reason::user_shutdown);
            rp.deliver(std::move(e));
          });
      return rp;
    },
    [self](submit_atom, cluster_submission& s,
           caf::actor& client) -> caf::result<uint64_t> {
      auto& st = self->state;
      if (!st.opts.token.empty() && !tokens_equal(s.token, st.opts.token)) {
        auto what = s.token.empty() ? "no join token" : "wrong join token";
        with_peer(self, sender_node(self),
                  [self, what](const std::string& peer) {
                    log(self, "refused submission from " + peer + ": " + what);
                  });
        return caf::make_error(caf::sec::invalid_argument,
                               std::string{"submission refused: "} + what);
      }
      auto* j = st.opts.journal.get();
      client_info* ci = nullptr;
      if (client) {
        auto [it, fresh] = st.clients.try_emplace(client.address());
        if (fresh)
          self->monitor(client);
        ci = &it->second;
      }
      auto serial = ++st.submissions;
      outcome_batch answers; // rejections and outcomes from the journal
      // Indices into s.tests; the tests stay in the message until they
      // move to the scheduler.
      std::vector<std::pair<size_t, uint32_t>> fresh; // (index, pending)
      std::vector<uint32_t> attach;                   // pending entries
      std::unordered_set<std::string> answered;       // from the journal
      size_t rejected = 0;
      fresh.reserve(s.tests.size());
      auto reject = [&](const std::string& id, std::string err) {
        cluster_outcome c;
        c.test_id = id;
        c.status = "failed";
        c.error = std::move(err);
        answers.items.push_back(std::move(c));
        ++rejected;
      };
      auto twice = [](const std::string& id) {
        return "test '" + id + "' appears more than once in this submission";
      };
      for (size_t k = 0; k < s.tests.size(); ++k) {
        auto& t = s.tests[k];
        auto& id = t.req.test_id;
        if (auto err = validate_requirements(t.req); !err.empty()) {
          reject(id, std::move(err));
          continue;
        }
        auto digest = submission_journal::digest_of(t);
        // One lookup: a new id is entered here and stays unless the
        // journal refuses the submission.
        auto [ref, is_new] = st.pending.try_emplace(id);
        auto& p = st.pending[ref];
        if (!is_new) {
          if (p.named_in == serial)
            reject(id, twice(id));
          else if (p.digest != digest)
            reject(id, "test '" + id
                         + "' is already submitted with a different command, "
                           "environment, working directory or requirements "
                           "and has not ended (wait for it or use another "
                           "id)");
          else
            attach.push_back(ref);
          p.named_in = serial;
          continue;
        }
        if (!answered.empty() && answered.count(id) > 0) {
          st.pending.erase(ref);
          reject(id, twice(id));
          continue;
        }
        if (j) {
          auto r = j->find(id);
          bool seen = ci && ci->delivered.count(id) > 0;
          if (r && r->ended && !seen
              && r->definition == submission_journal::definition_of(t)) {
            st.pending.erase(ref);
            answered.insert(id);
            answers.items.push_back(r->outcome);
            if (ci)
              ci->delivered[id] = r->seq;
            continue;
          }
        }
        p.digest = digest;
        p.named_in = serial;
        fresh.emplace_back(k, ref);
      }
      // Durable before acknowledged: a coordinator killed from here on
      // resumes these tests.
      if (j && !fresh.empty()) {
        std::vector<const journaled_test*> rows;
        rows.reserve(fresh.size());
        for (auto& f : fresh)
          rows.push_back(&s.tests[f.first]);
        try {
          j->accept(rows);
        } catch (const journal_error& e) {
          for (auto& f : fresh)
            st.pending.erase(f.second);
          log(self, std::string{"submission not accepted: "} + e.what());
          return caf::make_error(caf::sec::runtime_error,
                                 std::string{"submission not accepted: "}
                                   + e.what());
        }
      }
      test_batch batch;
      batch.tests.reserve(fresh.size());
      for (auto& [k, ref] : fresh) {
        auto& t = s.tests[k];
        auto& p = st.pending[ref];
        p.has_spec = !t.command.empty() || !t.env.empty() || !t.cwd.empty();
        if (p.has_spec)
          st.specs->put(
            t.req.test_id,
            run_spec{std::move(t.command), std::move(t.env), std::move(t.cwd)});
        if (client)
          p.waiters.push_back(client);
        if (ci)
          ci->delivered.erase(t.req.test_id);
        batch.tests.push_back(std::move(t.req));
      }
      for (auto ref : attach)
        if (client)
          st.pending[ref].waiters.push_back(client);
      auto n = batch.tests.size();
      auto line = "accepted " + std::to_string(n) + " tests";
      if (!attach.empty())
        line += ", " + std::to_string(attach.size())
                + " already running (client attached)";
      if (!answered.empty())
        line += ", " + std::to_string(answered.size())
                + " answered from the journal";
      if (rejected > 0)
        line += ", rejected " + std::to_string(rejected);
      log(self, line);
      if (n > 0)
        self->send(st.scheduler, std::move(batch));
      if (!answers.items.empty() && client)
        caf::anon_send(client, std::move(answers));
      return static_cast<uint64_t>(s.tests.size());
    },
    [self](outcome_batch& b) {
      auto& st = self->state;
      // Gathered: with a journal for one transaction (not one disk sync per
      // test); without one until the batches already in the mailbox are
      // in, since the flush message queues behind them. Under load a client
      // then gets a few large batches rather than one per scheduler turn.
      if (st.outbox.empty())
        st.outbox = std::move(b.items);
      else
        for (auto& c : b.items)
          st.outbox.push_back(std::move(c));
      if (st.flush_scheduled)
        return;
      st.flush_scheduled = true;
      auto dt = st.opts.journal ? st.opts.journal_flush_interval : 0.0;
      if (dt > 0)
        self->delayed_send(self,
                           std::chrono::duration_cast<caf::timespan>(
                             std::chrono::duration<double>(dt)),
                           tick_atom::value);
      else
        self->send(self, tick_atom::value);
    },
    [self](tick_atom) { flush_outcomes(self); },
    [self](stats_atom) -> caf::result<std::string> {
      auto rp = self->make_response_promise<std::string>();
      self->request(self->state.scheduler, caf::infinite, stats_atom::value)
        .then(
          [self, rp](std::string& s) mutable {
            auto j = nlohmann::json::parse(s, nullptr, false);
            if (j.is_discarded())
              j = nlohmann::json::object();
            auto nodes = nlohmann::json::object();
            for (auto& [name, info] : self->state.nodes)
              nodes[name] = {{"workers", info.workers}, {"peer", info.peer}};
            j["nodes"] = std::move(nodes);
            j["open_tests"] = self->state.pending.size();
            // How well placements to nodes are batched on the wire.
            j["node_uplink"]
              = {{"worker_batches", self->state.routes->batches()},
                 {"messages", self->state.routes->messages()}};
            rp.deliver(j.dump());
          },
          [rp](caf::error& e) mutable { rp.deliver(std::move(e)); });
      return rp;
    },
  };
}

} // namespace

coordinator_actor spawn_coordinator(caf::actor_system& sys,
                                    coordinator_options opts) {
  return sys.spawn(coordinator_behavior, std::move(opts));
}

} // namespace alb
