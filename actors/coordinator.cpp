#include "actors/coordinator.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include <caf/actor_system.hpp>
#include <caf/io/middleman.hpp>
#include <caf/io/middleman_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <nlohmann/json.hpp>

#include <openssl/evp.h>

#include "actors/caf_ec.hpp"
#include "actors/coordinator_ended_logs.hpp"
#include "actors/coordinator_internal.hpp"
#include "actors/coordinator_proxy.hpp"
#include "actors/coordinator_routes.hpp"
#include "runtime/admission.hpp"
#include "runtime/cluster_state.hpp"
#include "runtime/cluster_status.hpp"
#include "runtime/id_map.hpp"
#include "runtime/journal.hpp"
#include "runtime/liveness.hpp"

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

namespace coord {

namespace {

// -- coordinator --------------------------------------------------------------

struct node_info {
  size_t workers = 0;
  std::string peer;
  /// Its uplink (answers log requests; null for a node without one).
  node_uplink_actor uplink;
};

/// Ended tests whose log location the coordinator remembers (beyond the
/// journal, which keeps them too): the newest this many.
constexpr size_t kept_log_locations = 20000;

/// The session of one node process (a node name joined from one CAF node).
struct node_session {
  /// Its handle (what the node's workers take for the scheduler).
  node_session_actor handle;
  /// What it checks against.
  std::shared_ptr<node_session_data> data;
  /// Workers registered through it.
  size_t workers = 0;
};

/// Where a registered remote worker belongs.
struct worker_entry {
  /// Node name.
  std::string node;
  /// Its proxy in this process.
  caf::actor_id proxy = 0;
  /// The same proxy (ended when its node is declared lost).
  revocable_worker_actor proxy_handle;
  /// Its node's process.
  caf::node_id nid;
  /// Its scheduler slot.
  uint32_t slot = 0;
};

/// A client that said hello or submitted tests.
struct client_info {
  /// Its number in the admission state.
  client_id id = 0;
  /// Its address, for DEBUG lines ("" until known or without DEBUG).
  std::string peer;
};

/// The journal as admission reads it (its live records, in memory).
struct journal_lookup final : journal_view {
  const submission_journal* j = nullptr;
  explicit journal_lookup(const submission_journal* x) : j(x) {
    // nop
  }
  const journal_record* find(const std::string& id) const override {
    return j->find(id);
  }
};

struct coordinator_state {
  static inline const char* name = "alb.coordinator";

  coordinator_options opts;
  scheduler_actor scheduler;
  std::shared_ptr<route_table> routes = std::make_shared<route_table>();
  /// Open tests, their waiters and owners, and what clients received:
  /// the admission rules (runtime/admission.hpp).
  admission adm;
  /// Clients by the address of their outcome actor.
  std::unordered_map<caf::actor_addr, client_info> clients;
  /// The outcome actor of each client, by admission's id.
  std::unordered_map<client_id, caf::actor> client_actors;
  /// Outcomes waiting to be written to the journal.
  std::vector<cluster_outcome> outbox;
  bool flush_scheduled = false;
  std::map<std::string, node_info> nodes;
  /// Sessions by node name and process.
  std::map<std::pair<std::string, caf::node_id>, node_session> sessions;
  /// Every registered remote worker.
  std::unordered_map<caf::actor_addr, worker_entry> worker_node;
  /// Node name of each worker id that ever joined (outcomes name the
  /// node that ran them; kept after a leave, as outcomes may come later).
  std::unordered_map<std::string, std::string> node_of_worker;
  /// Refusals, rate-limited (shared with the door and the sessions).
  std::shared_ptr<refusal_log> refusals;
  std::unordered_set<std::string> seen_nodes;
  size_t live_nodes = 0;
  /// Journal failures, rate-limited: a full disk fails every write (each
  /// flush of outcomes), which must not become a line each.
  log_limiter journal_errors{5, 10.0, "journal errors"};
  /// Origin of the times given to `journal_errors`.
  std::chrono::steady_clock::time_point epoch
    = std::chrono::steady_clock::now();
  /// A tick is due to write the summary of suppressed journal errors.
  bool journal_roll_scheduled = false;
  /// The latest tests that failed or were cancelled, with the clients that
  /// waited for them (who may see them in the status view), newest last.
  std::deque<std::pair<failure_row, std::vector<client_id>>> failures;
  /// When the core started (its clock for the liveness check).
  caf::actor_clock::time_point start;
  /// Last heartbeat per node session (by session id).
  node_watch watch;
  /// Session ids to their keys in `sessions`.
  std::unordered_map<uint64_t, std::pair<std::string, caf::node_id>>
    session_keys;
  /// Numbers sessions.
  uint64_t session_ids = 0;
  /// Heartbeats heard from nodes since the last DEBUG summary.
  uint64_t node_heartbeats = 0;
  /// Heartbeats heard from clients since the last DEBUG summary.
  uint64_t client_heartbeats = 0;
  /// When the last heartbeat summary was written (core clock).
  double heartbeat_summary_at = 0;
  /// Last heartbeat per client session (by session id).
  node_watch client_watch;
  /// Client sessions watched: their handle and the client's outcome actor.
  std::unordered_map<uint64_t, std::pair<client_session_actor, caf::actor_addr>>
    client_sessions;
  /// Ended tests: where their logs are (the newest kept_log_locations).
  ended_log_ring ended_logs{kept_log_locations};
};

/// Failures the status view keeps.
constexpr size_t kept_failures = 20;

/// Output kept per failure for the status view (the end of the tail).
constexpr size_t kept_tail = 2048;

double unix_now() {
  return std::chrono::duration<double>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

using coordinator_impl = core_actor::stateful_pointer<coordinator_state>;

void log(coordinator_impl self, const std::string& line) {
  if (self->state.opts.log)
    self->state.opts.log(line);
}

// Calls `f` with "host:port" of the process `nid` (or "local").
template<class F>
void with_peer(coordinator_impl self, const caf::node_id& nid, F f) {
  coord::with_peer(self, self->state.opts.peer_name, nid, std::move(f));
}

// Tells the relay in front (opts.on_admitted) that the connection of
// process `nid` got through: it joined or said hello with the token, so
// the guard's handshake deadline and caps no longer apply to it.
void admitted(coordinator_impl self, const caf::node_id& nid) {
  auto& f = self->state.opts.on_admitted;
  auto& sys = self->home_system();
  if (!f || nid == sys.node() || !sys.has_middleman())
    return;
  self
    ->request(sys.middleman().actor_handle(), std::chrono::seconds(5),
              caf::get_atom::value, nid)
    .then([f](const caf::node_id&, std::string& host,
              uint16_t port) { f(host, port); },
          [](caf::error&) {
            // Gone already: nothing to admit.
          });
}

// The owner a client's key stands for: its SHA-256, so neither the log nor
// the journal holds a key. A client without a key owns what its own
// session submits: a random owner no other session can present.
std::string owner_of(const std::string& key) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  if (key.empty()) {
    std::random_device rd;
    out = "session-";
    for (int i = 0; i < 32; ++i)
      out += hex[rd() & 15];
    return out;
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(key.data(), key.size(), md, &n, EVP_sha256(), nullptr);
  out.reserve(2 * n);
  for (unsigned int i = 0; i < n; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

nlohmann::json outcome_json(const cluster_outcome& r) {
  return {{"test_id", r.test_id},     {"status", r.status},
          {"success", r.success},     {"timed_out", r.timed_out},
          {"exit_code", r.exit_code}, {"execution_time", r.exec_seconds},
          {"attempts", r.attempts},   {"worker_id", r.worker_id},
          {"error", r.error},         {"output_tail", r.output_tail}};
}

nlohmann::json run_json(const journal_run_summary& s) {
  return {{"run_id", s.run.run_id},
          {"label", s.run.label},
          {"submitted_at", s.run.submitted_at},
          {"tests", s.tests},
          {"open", s.open},
          {"completed", s.completed},
          {"failed", s.failed},
          {"timed_out", s.timed_out},
          {"cancelled", s.cancelled}};
}

// Seconds since the core started.
double now_of(coordinator_impl self) {
  return std::chrono::duration<double>(self->clock().now() - self->state.start)
    .count();
}

// Seconds between liveness checks, which is also the heartbeat interval
// the nodes are asked for: several per --node-timeout, so one late or lost
// heartbeat does not drop a node, but never busier than 10 per second.
double check_interval(double timeout) {
  return std::clamp(timeout / 5, 0.1, 5.0);
}

// One check for nodes and clients: at the pace of the shorter timeout.
double check_interval(const coordinator_options& o) {
  auto t = o.node_timeout > 0 ? o.node_timeout : o.client_timeout;
  if (o.client_timeout > 0)
    t = std::min(t, o.client_timeout);
  return check_interval(t);
}

// "15" for 15.0, "2.5" for 2.5.
std::string seconds_text(double s) {
  std::ostringstream os;
  os << s;
  return os.str();
}

void count_nodes(coordinator_impl self);

// The session `id` sent no heartbeat for --node-timeout: the node is treated
// exactly as if its process had died. Its proxies end with `unreachable`
// (the scheduler requeues what their workers held and counts them lost),
// its session ends (which tells the node, once it hears it, that it was
// dropped), and nothing it still sends through that session counts.
void declare_lost(coordinator_impl self, uint64_t id) {
  auto& st = self->state;
  auto k = st.session_keys.find(id);
  if (k == st.session_keys.end())
    return;
  auto key = k->second;
  st.session_keys.erase(k);
  auto si = st.sessions.find(key);
  if (si == st.sessions.end())
    return;
  auto ses = std::move(si->second);
  st.sessions.erase(si);
  ses.data->dropped = true;
  {
    std::lock_guard<std::mutex> g{ses.data->mtx};
    ses.data->slots.clear();
  }
  auto& name = key.first;
  size_t gone = 0;
  for (auto i = st.worker_node.begin(); i != st.worker_node.end();) {
    auto& e = i->second;
    if (e.node != name || e.nid != key.second) {
      ++i;
      continue;
    }
    // Its down (when the node ends it, or the connection goes) must not
    // count against the node that joins again under the same name.
    self->demonitor(i->first);
    st.routes->remove(e.proxy);
    self->send_exit(e.proxy_handle, caf::exit_reason::unreachable);
    ++gone;
    i = st.worker_node.erase(i);
  }
  self->send_exit(ses.handle, caf::exit_reason::unreachable);
  auto& info = st.nodes[name];
  info.workers = info.workers > gone ? info.workers - gone : 0;
  log(self, "node '" + name + "' lost: no heartbeat for "
              + seconds_text(st.opts.node_timeout) + " s (at " + info.peer
              + "; " + std::to_string(gone)
              + (gone == 1 ? " worker" : " workers")
              + " dropped, its tests requeued)");
  if (st.opts.on_node_lost)
    st.opts.on_node_lost();
  count_nodes(self);
}

// The client of session `id` sent no heartbeat for --client-timeout: its
// session ends (which tells the client, once it hears it) and it gets no
// more outcomes; its tests go on, and their outcomes are journaled for the
// next client that submits them (as after a lost connection).
void expire_client(coordinator_impl self, uint64_t id) {
  auto& st = self->state;
  auto i = st.client_sessions.find(id);
  if (i == st.client_sessions.end())
    return;
  auto [session, outcomes] = std::move(i->second);
  st.client_sessions.erase(i);
  self->demonitor(outcomes);
  // As after a lost connection: nothing it received is retired, the
  // journal keeps answering for it.
  if (auto ci = st.clients.find(outcomes); ci != st.clients.end()) {
    st.adm.remove_client(ci->second.id, false, nullptr);
    st.client_actors.erase(ci->second.id);
    st.clients.erase(ci);
  }
  self->send_exit(session, caf::exit_reason::unreachable);
  with_peer(self, outcomes.node(), [self](const std::string& peer) {
    log(self, "client at " + peer + " expired: no heartbeat for "
                + seconds_text(self->state.opts.client_timeout)
                + " s (its tests go on; their outcomes stay in the journal)");
  });
}

// DEBUG: the heartbeats heard, one line per --debug interval (not one per
// heartbeat: 100 nodes send several a second), with the longest silence
// among the watched nodes, which tells how close one is to being lost.
void heartbeat_summary(coordinator_impl self) {
  auto& st = self->state;
  if (!st.opts.debug)
    return;
  auto now = now_of(self);
  if (now - st.heartbeat_summary_at < st.opts.debug_interval)
    return;
  auto span = now - st.heartbeat_summary_at;
  st.heartbeat_summary_at = now;
  if (st.node_heartbeats + st.client_heartbeats == 0 && st.watch.size() == 0)
    return;
  double silent = 0;
  std::string who;
  for (auto& [id, key] : st.session_keys) {
    auto t = st.watch.last_heard(id);
    if (t >= 0 && now - t >= silent) {
      silent = now - t;
      who = key.first;
    }
  }
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.0f", span);
  auto line = "heartbeats in the last " + std::string{buf}
              + " s: " + std::to_string(st.node_heartbeats) + " from "
              + std::to_string(st.watch.size()) + " nodes, "
              + std::to_string(st.client_heartbeats) + " from "
              + std::to_string(st.client_watch.size()) + " clients";
  if (!who.empty()) {
    std::snprintf(buf, sizeof(buf), "%.1f", silent);
    line += "; longest silence: node '" + who + "' " + buf + " s";
  }
  st.opts.debug("coordinator", line);
  st.node_heartbeats = 0;
  st.client_heartbeats = 0;
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

// Unix seconds now (outcome times are wall-clock for people and CI
// reports; the scheduler's own clock only measures intervals).
double wall_now() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

// Runs on the scheduler's thread as the test ends, so the scheduler's
// times of `a` convert to wall-clock ones against this moment.
cluster_outcome make_outcome(const assignment& a, const attempt_outcome* o) {
  cluster_outcome c;
  c.ended_at = wall_now();
  if (a.submitted_at >= 0 && a.completed_at >= a.submitted_at)
    c.submitted_at = c.ended_at - (a.completed_at - a.submitted_at);
  c.test_id = a.test_id;
  c.status = to_string(a.status);
  c.success = a.success;
  c.exec_seconds = a.execution_time;
  c.attempts = a.attempts;
  c.migrated = a.migrated;
  c.stolen = a.stolen;
  c.speculated = a.speculated;
  c.speculation_won = a.speculation_won;
  c.worker_id = a.worker_id;
  c.error = a.error;
  if (o) {
    c.timed_out = o->timed_out;
    c.exit_code = o->exit_code;
    c.output_tail = o->output_tail;
    c.signal = o->signal;
    // The node measured how long the command ran; the start is that much
    // before the end (transfer time of the report is not counted as run).
    c.started_at = c.ended_at - o->exec_seconds;
    c.stderr_tail = o->stderr_tail;
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
    auto rec = j ? j->find(c.test_id) : nullptr;
    auto closed = st.adm.end(c.test_id, rec && rec->ended
                                          ? std::optional<int64_t>{rec->seq}
                                          : std::nullopt);
    if (!closed)
      continue;
    auto& waiters = closed->waiters;
    if (!c.success) {
      failure_row f;
      f.test_id = c.test_id;
      f.status = c.status;
      f.worker_id = c.worker_id;
      f.error = c.error;
      f.exit_code = c.exit_code;
      f.timed_out = c.timed_out;
      f.output_tail = c.output_tail.size() > kept_tail
                        ? c.output_tail.substr(c.output_tail.size() - kept_tail)
                        : c.output_tail;
      f.ended = unix_now();
      st.failures.emplace_back(std::move(f), waiters);
      if (st.failures.size() > kept_failures)
        st.failures.pop_front();
    }
    // Its log stays its owner's to read after the end (`alb logs`).
    st.ended_logs.add(c.test_id, c.node, closed->owner, c.status);
    for (size_t w = 0; w < waiters.size(); ++w) {
      // A client that left gets nothing: the journal keeps the outcome for
      // the next one that asks.
      auto ci = st.client_actors.find(waiters[w]);
      if (ci == st.client_actors.end())
        continue;
      auto& client = ci->second;
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

double seconds_since_start(coordinator_impl self) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now()
                                       - self->state.epoch)
    .count();
}

// Logs a failed journal write of kind `kind` (rate-limited: each kind and
// error once per 10 s, at most 5 lines, the rest summarised in one line).
void journal_failed(coordinator_impl self, const std::string& kind,
                    const std::string& line, const journal_error& e) {
  auto& st = self->state;
  auto out = [self](const std::string& l) { log(self, l); };
  if (st.journal_errors.admit(kind + '\n' + e.what(), seconds_since_start(self),
                              out)) {
    log(self, line + e.what());
    return;
  }
  // The summary is written when the window is over even if no further
  // error comes (the tick rolls it).
  if (!st.journal_roll_scheduled) {
    st.journal_roll_scheduled = true;
    self->delayed_send(self, std::chrono::seconds(10), tick_atom::value);
  }
}

// Writes the summary of suppressed journal errors once their window is
// over; `now` = force it (a stop).
void roll_journal_errors(coordinator_impl self, bool now = false) {
  auto& st = self->state;
  auto out = [self](const std::string& l) { log(self, l); };
  auto t = seconds_since_start(self);
  if (now)
    st.journal_errors.finish(t, out);
  else
    st.journal_errors.roll(t, out);
  st.journal_roll_scheduled = false;
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
      if (st.adm.is_open(c.test_id))
        rows.push_back(c);
    try {
      j->record(rows);
    } catch (const journal_error& e) {
      // Holding the outcomes back would stall every client; a restart runs
      // these tests again instead.
      journal_failed(self, "record",
                     "cannot record " + std::to_string(rows.size())
                       + " outcomes, reporting them anyway: ",
                     e);
    }
  }
  auto items = std::move(st.outbox);
  st.outbox.clear();
  deliver(self, items);
}

// A client disconnected: after a clean leave, the outcomes it received are
// collected and retired (its next submission of those ids runs afresh);
// after a lost connection they stay to answer it when it comes back.
// DEBUG: what the scheduler did, summed per interval rather than one line
// per test (a suite of 100,000 tests must not mean 200,000 lines). The
// hooks and the tally all run on the scheduler's thread.
void add_debug_summary(
  scheduler_options& sopts,
  std::function<void(const std::string&, const std::string&)> debug,
  double interval) {
  struct tally {
    uint64_t placed = 0;
    uint64_t batches = 0;
    uint64_t passed = 0;
    uint64_t failed = 0;
    double since = -1;
  };
  auto t = std::make_shared<tally>();
  auto route = std::move(sopts.route);
  sopts.route = [t, route](const worker_actor& h, work_batch& b) {
    t->placed += b.items.size();
    ++t->batches;
    return route ? route(h, b) : false;
  };
  auto on_end = std::move(sopts.on_end);
  sopts.on_end = [t, on_end](const assignment& a, const attempt_outcome* o) {
    ++(a.success ? t->passed : t->failed);
    if (on_end)
      on_end(a, o);
  };
  auto on_tick = std::move(sopts.on_tick);
  sopts.on_tick
    = [t, on_tick, debug, interval](const cluster_state& core, double now) {
        if (on_tick)
          on_tick(core, now);
        if (t->since < 0)
          t->since = now;
        if (now - t->since < interval)
          return;
        // Quiet intervals say nothing.
        if (t->placed + t->passed + t->failed > 0) {
          char secs[32];
          std::snprintf(secs, sizeof(secs), "%.0f", now - t->since);
          debug("scheduler", "placed " + std::to_string(t->placed)
                               + " tests in the last " + secs + " s ("
                               + std::to_string(t->batches) + " batches); "
                               + std::to_string(t->passed) + " passed, "
                               + std::to_string(t->failed) + " failed; now "
                               + std::to_string(core.in_flight()) + " placed, "
                               + std::to_string(core.queued()) + " waiting");
        }
        *t = tally{};
        t->since = now;
      };
}

// The client whose outcomes go to `outcomes`, registered (and watched) the
// first time it is seen.
client_info& client_of(coordinator_impl self, const caf::actor& outcomes) {
  auto& st = self->state;
  auto [it, fresh] = st.clients.try_emplace(outcomes.address());
  if (fresh) {
    it->second.id = st.adm.add_client();
    st.client_actors[it->second.id] = outcomes;
    self->monitor(outcomes);
  }
  return it->second;
}

void client_down(coordinator_impl self, const caf::down_msg& dm) {
  auto& st = self->state;
  auto i = st.clients.find(dm.source);
  if (i == st.clients.end())
    return;
  if (st.opts.debug)
    st.opts.debug(
      "coordinator",
      "client " + (i->second.peer.empty() ? std::string{"?"} : i->second.peer)
        + " disconnected ("
        + (dm.reason ? self->home_system().render(dm.reason)
                     : std::string{"clean"})
        + ")");
  auto* j = st.opts.journal.get();
  bool clean = !dm.reason || dm.reason == caf::exit_reason::normal;
  auto id = i->second.id;
  journal_lookup view{j};
  auto ids = st.adm.remove_client(id, clean, j ? &view : nullptr);
  st.client_actors.erase(id);
  if (j && !ids.empty()) {
    try {
      j->retire(ids);
    } catch (const journal_error& e) {
      journal_failed(self, "retire", "cannot retire collected outcomes: ", e);
    }
  }
  st.clients.erase(i);
  // Its session ended with it: no longer watched.
  for (auto k = st.client_sessions.begin(); k != st.client_sessions.end();) {
    if (k->second.second == dm.source) {
      st.client_watch.forget(k->first);
      k = st.client_sessions.erase(k);
    } else {
      ++k;
    }
  }
}

// How to run `t` (its command, environment, directory and output cap),
// taken out of it.
test_run run_of(cluster_test& t) {
  return test_run{std::move(t.command), std::move(t.env), std::move(t.cwd),
                  t.max_output};
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
    batch.runs.reserve(open.size());
    for (auto& t : open) {
      auto* r = j->find(t.req.test_id);
      st.adm.resume(t, r ? r->owner : std::string{});
      batch.runs.push_back(run_of(t));
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

/// Waiting and placed tests the status view lists at most (each).
constexpr uint64_t status_rows = 1000;

// Adds what only the coordinator knows to the scheduler's status view
// (nodes, their addresses, recent failures) and keeps what `client` may
// see: every test with `all`, else those it waits for.
std::string finish_status(coordinator_impl self, const std::string& js,
                          const caf::actor& client, bool all) {
  auto& st = self->state;
  auto s = nlohmann::json::parse(js).get<cluster_status>();
  std::unordered_map<uint32_t, const std::string*> node_of;
  for (auto& [addr, e] : st.worker_node)
    node_of[e.slot] = &e.node;
  std::unordered_map<std::string, std::string> by_worker;
  for (auto& w : s.workers) {
    if (auto i = node_of.find(w.slot); i != node_of.end())
      w.node = *i->second;
    by_worker[w.worker_id] = w.node;
  }
  for (auto& r : s.running)
    if (auto i = by_worker.find(r.worker_id); i != by_worker.end())
      r.node = i->second;
  group_nodes(s, [&](const std::string& name) {
    auto i = st.nodes.find(name);
    return i == st.nodes.end() ? std::string{} : i->second.peer;
  });
  // Idle workers send nothing, so a node's heartbeat is the latest word
  // from it; without it an idle node would look silent since its last
  // report.
  std::unordered_map<std::string, double> beat;
  auto now = now_of(self);
  auto wall = wall_now();
  for (auto& [id, key] : st.session_keys)
    if (auto t = st.watch.last_heard(id); t >= 0) {
      auto& b = beat[key.first];
      b = std::max(b, wall - (now - t));
    }
  for (auto& n : s.nodes)
    if (auto i = beat.find(n.name); i != beat.end())
      n.last_seen = std::max(n.last_seen, i->second);
  client_id me = 0;
  if (client)
    if (auto i = st.clients.find(client.address()); i != st.clients.end())
      me = i->second.id;
  auto waits = [&](const std::vector<client_id>& who) {
    return me != 0 && std::find(who.begin(), who.end(), me) != who.end();
  };
  if (!all)
    keep_visible(s, [&](const std::string& id) {
      return me != 0 && st.adm.waits(id, me);
    });
  for (auto& [f, who] : st.failures)
    if (all || waits(who))
      s.recent_failures.push_back(f);
  return nlohmann::json(s).dump();
}

// Asks node `node` for the piece `rq` of a test's log and delivers it to
// `rp`; `open` = the test has not ended.
void fetch_log(coordinator_impl self, caf::typed_response_promise<log_chunk> rp,
               const std::string& node, log_request rq, bool open) {
  auto& st = self->state;
  log_chunk c;
  c.node = node;
  c.open = open;
  c.offset = rq.offset;
  auto i = st.nodes.find(node);
  if (i == st.nodes.end() || i->second.workers == 0 || !i->second.uplink) {
    c.state = static_cast<int32_t>(log_state::node_gone);
    c.why = "node '" + node + "', which ran test '" + rq.test_id
            + "', is not connected (its log is on that machine)";
    rp.deliver(std::move(c));
    return;
  }
  auto id = rq.test_id;
  auto timeout
    = std::chrono::milliseconds(rq.wait_ms) + std::chrono::seconds(10);
  self->request(i->second.uplink, timeout, log_atom::value, std::move(rq))
    .then(
      [rp, node, open](log_chunk& got) mutable {
        got.node = node;
        got.open = open;
        // Placed but not started yet (or between attempts): nothing
        // written there yet, not something lost.
        if (open && got.state == static_cast<int32_t>(log_state::not_kept)) {
          got.state = static_cast<int32_t>(log_state::not_started);
          got.why = "it has not started on node '" + node + "' yet";
        }
        rp.deliver(std::move(got));
      },
      [rp, c, node, id](caf::error&) mutable {
        c.state = static_cast<int32_t>(log_state::node_gone);
        c.why = "node '" + node + "', which ran test '" + id
                + "', did not answer (it went away)";
        rp.deliver(std::move(c));
      });
}

core_actor::behavior_type
coordinator_behavior(coordinator_impl self, coordinator_options opts,
                     std::shared_ptr<refusal_log> refusals) {
  auto& st = self->state;
  st.opts = std::move(opts);
  st.refusals = std::move(refusals);
  auto sopts = st.opts.scheduler;
  sopts.finish_when_done = false;
  sopts.timeout_grace = st.opts.timeout_grace;
  if (!sopts.log)
    sopts.log = st.opts.log;
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
  sopts.route = [routes = st.routes](const worker_actor& h, work_batch& b) {
    return routes->gather(h, b);
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
  if (st.opts.debug)
    add_debug_summary(sopts, st.opts.debug, st.opts.debug_interval);
  st.scheduler = spawn_scheduler(self->home_system(), std::move(sopts));
  self->link_to(st.scheduler);
  st.start = self->clock().now();
  // One check for all nodes, not a timer per node.
  if (st.opts.node_timeout > 0 || st.opts.client_timeout > 0)
    self->send(self, liveness_atom::value);
  if (st.opts.journal)
    resume(self);
  self->set_exit_handler([self](caf::exit_msg& em) {
    // Outcomes still gathered for the journal are written (and reported)
    // before a stop: a clean stop must not leave them to run again after
    // a restart.
    flush_outcomes(self);
    roll_journal_errors(self, true);
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
    auto entry = std::move(i->second);
    auto& name = entry.node;
    st.routes->remove(entry.proxy);
    st.worker_node.erase(i);
    // Its slot is no longer the node's to report for; the session ends
    // with the node's last worker.
    auto si = st.sessions.find({name, entry.nid});
    if (si != st.sessions.end()) {
      {
        std::lock_guard<std::mutex> g{si->second.data->mtx};
        si->second.data->slots.erase(entry.slot);
      }
      if (si->second.workers > 0 && --si->second.workers == 0) {
        self->send_exit(si->second.handle, caf::exit_reason::user_shutdown);
        st.watch.forget(si->second.data->id);
        st.session_keys.erase(si->second.data->id);
        st.sessions.erase(si);
      }
    }
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
        auto code = j.token.empty() ? ec::no_token : ec::wrong_token;
        auto what = describe(code);
        if (st.refusals->admit(to_string(nid) + "\njoin\n" + what))
          with_peer(self, nid,
                    [self, what, node = j.node,
                     wid = j.caps.worker_id](const std::string& peer) {
                      self->state.refusals->write(
                        "refused worker '" + wid + "' of node '" + node
                        + "' from " + peer + ": " + what);
                    });
        return caf::make_error(code);
      }
      if (!w)
        return caf::make_error(ec::missing_handle,
                               std::string{"no worker handle"});
      auto proxy = spawn_worker_proxy(self->home_system(), w, j.uplink);
      auto rp = self->make_response_promise<uint32_t, scheduler_actor>();
      auto wid = j.caps.worker_id;
      // The node it joined as, whatever its capabilities claim: the
      // scheduler puts a speculative copy of a real command on another
      // node than the one running it (runtime/cluster_state.hpp).
      j.caps.node = j.node;
      self
        ->request(st.scheduler, caf::infinite, join_atom::value,
                  std::move(j.caps), caf::actor_cast<worker_actor>(proxy))
        .then(
          [self, rp, w, nid, wid, proxy, uplink = j.uplink,
           node = j.node](uint32_t slot) mutable {
            auto& st = self->state;
            st.worker_node[w.address()] = {node, proxy.id(), proxy, nid, slot};
            st.node_of_worker[wid] = node;
            self->monitor(w);
            // One session per node process: all its workers (and its
            // uplink) report through the same handle.
            auto& ses = st.sessions[{node, nid}];
            if (!ses.handle) {
              admitted(self, nid);
              ses.data = std::make_shared<node_session_data>();
              ses.data->id = ++st.session_ids;
              if (st.opts.node_timeout > 0)
                ses.data->heartbeat_interval
                  = check_interval(st.opts.node_timeout);
              ses.data->name = node;
              ses.data->node = nid;
              // The join is the first sign of life.
              st.session_keys[ses.data->id] = {node, nid};
              if (st.opts.node_timeout > 0)
                st.watch.heard(ses.data->id, now_of(self));
              ses.handle
                = spawn_node_session(self->home_system(), self, st.scheduler,
                                     ses.data, st.refusals, st.opts.peer_name);
            }
            {
              std::lock_guard<std::mutex> g{ses.data->mtx};
              ses.data->slots.insert(slot);
            }
            ++ses.workers;
            auto session = caf::actor_cast<scheduler_actor>(ses.handle);
            auto& info = st.nodes[node];
            if (uplink)
              info.uplink = uplink;
            if (info.workers++ == 0) {
              bool again = !st.seen_nodes.insert(node).second;
              if (!again && st.opts.journal) {
                // Remembered so a node is recognised across restarts too.
                try {
                  st.opts.journal->note_node(node);
                } catch (const journal_error& e) {
                  journal_failed(self, "note_node", "", e);
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
            rp.deliver(slot, session);
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
    [self](hello_atom, client_hello& h) -> caf::result<client_session_actor> {
      auto& st = self->state;
      auto nid = sender_node(self);
      // An open cluster (no token at all) has nothing to hide from a
      // client: anyone may submit there.
      bool op = st.opts.operator_token.empty()
                  ? st.opts.token.empty()
                  : tokens_equal(h.token, st.opts.operator_token);
      if (!op && !st.opts.token.empty()
          && !tokens_equal(h.token, st.opts.token)) {
        auto code = h.token.empty() ? ec::no_token : ec::wrong_token;
        auto what = describe(code);
        if (st.refusals->admit(to_string(nid) + "\nhello\n" + what))
          with_peer(self, nid, [self, what](const std::string& peer) {
            self->state.refusals->write("refused client from " + peer + ": "
                                        + what);
          });
        return caf::make_error(code);
      }
      if (!h.outcomes)
        return caf::make_error(ec::missing_handle,
                               std::string{"no actor for its outcomes"});
      client_of(self, h.outcomes);
      if (st.opts.debug)
        with_peer(
          self, nid, [self, a = h.outcomes.address()](const std::string& peer) {
            auto& st = self->state;
            auto i = st.clients.find(a);
            if (i != st.clients.end())
              i->second.peer = peer;
            if (st.opts.debug)
              st.opts.debug("coordinator", "client connected from " + peer
                                             + " (session opened)");
          });
      admitted(self, nid);
      auto id = ++st.session_ids;
      auto watched = st.opts.client_timeout > 0;
      auto addr = h.outcomes.address();
      auto session = spawn_client_session(
        self->home_system(), self, nid, std::move(h.outcomes),
        owner_of(h.owner_key), st.refusals, st.opts.peer_name, op, id,
        watched ? check_interval(st.opts.client_timeout) : 0.0);
      if (watched) {
        st.client_sessions[id] = {session, addr};
        st.client_watch.heard(id, now_of(self));
      }
      return session;
    },
    [self](submit_atom, cluster_submission& s, caf::actor& client,
           std::string& owner) -> caf::result<uint64_t> {
      auto& st = self->state;
      auto* j = st.opts.journal.get();
      if (j && !s.run_id.empty()) {
        auto o = j->run_owner(s.run_id);
        if (!o.empty() && o != owner)
          return caf::make_error(ec::not_owner, "run '" + s.run_id + "'");
      }
      client_id cid = client ? client_of(self, client).id : 0;
      journal_lookup view{j};
      auto plan = st.adm.admit(cid, owner, s.tests, s.rerun,
                               j ? &view : nullptr, wall_now());
      // Durable before acknowledged: a coordinator killed from here on
      // resumes these tests.
      if (j && !plan.run.empty()) {
        std::vector<const journaled_test*> rows;
        rows.reserve(plan.run.size());
        for (auto k : plan.run)
          rows.push_back(&s.tests[k]);
        journal_run run{s.run_id, owner, s.label,
                        std::chrono::duration<double>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count()};
        try {
          j->accept(rows, run);
        } catch (const journal_error& e) {
          st.adm.abandon(plan);
          journal_failed(self, "accept", "submission not accepted: ", e);
          return caf::make_error(ec::journal_failed,
                                 std::string{"submission not accepted: "}
                                   + e.what());
        }
      }
      st.adm.accept(plan);
      // The whole definition goes to the scheduler: how to run each test
      // rides in its record to the worker.
      test_batch batch;
      batch.tests.reserve(plan.run.size());
      batch.runs.reserve(plan.run.size());
      for (auto k : plan.run) {
        auto& t = s.tests[k];
        batch.runs.push_back(run_of(t));
        batch.tests.push_back(std::move(t.req));
      }
      outcome_batch answers{std::move(plan.answers)};
      auto n = batch.tests.size();
      auto line = "accepted " + std::to_string(n) + " tests";
      if (plan.attached > 0)
        line += ", " + std::to_string(plan.attached)
                + " already running (client attached)";
      if (plan.answered > 0)
        line += ", " + std::to_string(plan.answered)
                + " answered from the journal";
      if (plan.rejected > 0)
        line += ", rejected " + std::to_string(plan.rejected);
      log(self, line);
      if (n > 0)
        self->send(st.scheduler, std::move(batch));
      if (!answers.items.empty() && client)
        caf::anon_send(client, std::move(answers));
      return static_cast<uint64_t>(s.tests.size());
    },
    [self](outcome_batch& b) {
      auto& st = self->state;
      for (auto& c : b.items)
        if (!c.worker_id.empty() && c.node.empty()) {
          auto i = st.node_of_worker.find(c.worker_id);
          if (i != st.node_of_worker.end())
            c.node = i->second;
        }
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
    [self](tick_atom) {
      // One tick type for both: an early flush or roll is harmless.
      flush_outcomes(self);
      if (self->state.journal_roll_scheduled)
        roll_journal_errors(self);
    },
    [self](heartbeat_atom, uint64_t id) {
      auto& st = self->state;
      // Only sessions still watched: a late heartbeat of a dropped node
      // does not bring it back (it joins again instead).
      if (st.session_keys.count(id) > 0) {
        st.watch.heard(id, now_of(self));
        ++st.node_heartbeats;
      } else if (st.client_sessions.count(id) > 0) {
        st.client_watch.heard(id, now_of(self));
        ++st.client_heartbeats;
      }
    },
    [self](liveness_atom) {
      auto& st = self->state;
      if (st.opts.node_timeout > 0)
        for (auto id : st.watch.lost(now_of(self), st.opts.node_timeout))
          declare_lost(self, id);
      if (st.opts.client_timeout > 0)
        for (auto id :
             st.client_watch.lost(now_of(self), st.opts.client_timeout))
          expire_client(self, id);
      heartbeat_summary(self);
      self->delayed_send(
        self,
        std::chrono::duration_cast<caf::timespan>(
          std::chrono::duration<double>(check_interval(st.opts))),
        liveness_atom::value);
    },
    [self](limits_atom) -> uint64_t { return self->state.opts.max_submission; },
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
            j["open_tests"] = self->state.adm.open_count();
            // Ended, waiting for their journal transaction.
            j["outcomes_gathered"] = self->state.outbox.size();
            // How well placements to nodes are batched on the wire.
            j["node_uplink"]
              = {{"worker_batches", self->state.routes->batches()},
                 {"messages", self->state.routes->messages()}};
            rp.deliver(j.dump());
          },
          [rp](caf::error& e) mutable { rp.deliver(std::move(e)); });
      return rp;
    },
    [self](status_atom, caf::actor& client,
           bool all) -> caf::result<std::string> {
      auto rp = self->make_response_promise<std::string>();
      self
        ->request(self->state.scheduler, caf::infinite, status_atom::value,
                  uint64_t{status_rows})
        .then(
          [self, rp, client, all](std::string& js) mutable {
            try {
              rp.deliver(finish_status(self, js, client, all));
            } catch (const std::exception& e) {
              rp.deliver(
                caf::make_error(ec::status_failed, std::string{e.what()}));
            }
          },
          [rp](caf::error& e) mutable { rp.deliver(std::move(e)); });
      return rp;
    },
    [self](cancel_atom, cancel_request& rq, std::string& owner,
           bool op) -> caf::result<cancel_result> {
      auto& st = self->state;
      cancel_result res;
      auto plan = st.adm.plan_cancel(owner, rq.ids, rq.all_mine, op);
      for (auto& [id, why] : plan.refused) {
        refuse(self, st.refusals, st.opts.peer_name,
               "cancel of test '" + id + "'", why);
        res.refused.push_back(id);
      }
      res.unknown = std::move(plan.unknown);
      auto ask = std::move(plan.ask);
      if (ask.empty())
        return res;
      auto rp = self->make_response_promise<cancel_result>();
      // The scheduler says which were still open: a test that ended while
      // the cancel was on its way keeps its outcome.
      self->request(st.scheduler, caf::infinite, cancel_atom::value, ask)
        .then(
          [self, rp, res, ask, op](std::vector<std::string>& done) mutable {
            std::unordered_set<std::string> hit{done.begin(), done.end()};
            for (auto& id : ask)
              if (hit.count(id) == 0)
                res.unknown.push_back(id);
            res.cancelled = std::move(done);
            if (!res.cancelled.empty())
              log(self, "cancelled " + std::to_string(res.cancelled.size())
                          + " tests on " + (op ? "an operator's" : "a client's")
                          + " request");
            rp.deliver(std::move(res));
          },
          [rp](caf::error& e) mutable { rp.deliver(std::move(e)); });
      return rp;
    },
    [self](log_atom, log_request& rq, std::string& owner,
           bool op) -> caf::result<log_chunk> {
      auto& st = self->state;
      if (rq.stream != 0 && rq.stream != 1)
        return caf::make_error(ec::not_accepted,
                               "the stream is stdout (0) or stderr (1)");
      rq.max = rq.max == 0 ? max_log_chunk : std::min(rq.max, max_log_chunk);
      // Bounded: a held request costs the node a look every 50 ms.
      rq.wait_ms = std::min<uint32_t>(rq.wait_ms, 10000);
      auto id = rq.test_id;
      auto not_yours = [&](const std::string& why) {
        refuse(self, st.refusals, st.opts.peer_name, "log of test '" + id + "'",
               why);
        return caf::make_error(ec::not_owner, "test '" + id + "'");
      };
      if (auto* o = st.adm.owner_of(id)) {
        if (!op && *o != owner)
          return not_yours("not submitted by this client");
        // Made only now: an error returned after it would go nowhere.
        auto rp = self->make_response_promise<log_chunk>();
        // Where it runs is the scheduler's to say (it may move).
        self->request(st.scheduler, caf::infinite, log_atom::value, id)
          .then(
            [self, rp, rq](uint32_t slot) mutable {
              auto& st = self->state;
              for (auto& [addr, e] : st.worker_node)
                if (e.slot == slot) {
                  fetch_log(self, rp, e.node, std::move(rq), true);
                  return;
                }
              log_chunk c;
              c.open = true;
              c.offset = rq.offset;
              c.state = static_cast<int32_t>(log_state::not_started);
              c.why = "it waits to be placed";
              rp.deliver(std::move(c));
            },
            [rp](caf::error& e) mutable { rp.deliver(std::move(e)); });
        return rp;
      }
      ended_log where;
      if (auto* e = st.ended_logs.find(id))
        where = *e;
      else if (auto* r = st.opts.journal ? st.opts.journal->find(id) : nullptr;
               r && r->ended)
        where = ended_log{id, r->outcome.node, r->owner, r->outcome.status};
      else
        return caf::make_error(ec::unknown_test, "test '" + id + "'");
      if (!op && where.owner != owner)
        return not_yours("not submitted by this client");
      if (where.node.empty()) {
        log_chunk c;
        c.offset = rq.offset;
        c.state = static_cast<int32_t>(log_state::not_kept);
        c.why = "it ended as " + where.status + " without running on a node";
        return c;
      }
      auto rp = self->make_response_promise<log_chunk>();
      fetch_log(self, rp, where.node, std::move(rq), false);
      return rp;
    },
    [self](results_atom, std::string& run,
           std::string& owner) -> caf::result<std::string> {
      auto& st = self->state;
      auto* j = st.opts.journal.get();
      if (!j)
        return caf::make_error(ec::no_journal);
      try {
        if (run.empty()) {
          auto arr = nlohmann::json::array();
          for (auto& r : j->runs(owner))
            arr.push_back(run_json(r));
          return nlohmann::json{{"runs", std::move(arr)}}.dump();
        }
        auto o = j->run_owner(run);
        if (o.empty())
          return caf::make_error(ec::unknown_run, "run '" + run + "'");
        if (o != owner) {
          refuse(self, st.refusals, st.opts.peer_name,
                 "results of run '" + run + "'",
                 "not submitted by this client");
          return caf::make_error(ec::not_owner, "run '" + run + "'");
        }
        nlohmann::json doc;
        for (auto& r : j->runs(owner))
          if (r.run.run_id == run)
            doc["run"] = run_json(r);
        auto arr = nlohmann::json::array();
        for (auto& t : j->run_tests(run)) {
          auto x = outcome_json(t.outcome);
          if (!t.ended)
            x["status"] = "open";
          arr.push_back(std::move(x));
        }
        doc["results"] = std::move(arr);
        return doc.dump();
      } catch (const journal_error& e) {
        return caf::make_error(ec::journal_failed,
                               std::string{"results: "} + e.what());
      }
    },
  };
}

} // namespace

} // namespace coord

void stop_coordinator(caf::actor_system& sys, const coordinator_actor& c,
                      caf::exit_reason reason) {
  if (!c)
    return;
  caf::scoped_actor self{sys};
  self->send_exit(c, reason);
}

coordinator_actor spawn_coordinator(caf::actor_system& sys,
                                    coordinator_options opts,
                                    status_reader* reader) {
  auto refusals = std::make_shared<coord::refusal_log>(opts.log);
  auto name = opts.peer_name;
  auto core = sys.spawn(coord::coordinator_behavior, std::move(opts), refusals);
  if (reader) {
    // Weak: a reader left behind must not keep the core's state alive.
    auto addr = caf::actor_cast<caf::actor_addr>(core);
    *reader = [&sys, addr](double timeout) {
      auto h = caf::actor_cast<coord::core_actor>(addr);
      if (!h)
        throw std::runtime_error{"the coordinator has stopped"};
      caf::scoped_actor self{sys};
      std::string out;
      caf::error failure;
      self
        ->request(h,
                  std::chrono::duration_cast<caf::timespan>(
                    std::chrono::duration<double>(std::max(0.001, timeout))),
                  status_atom::value, caf::actor{}, true)
        .receive([&](std::string& s) { out = std::move(s); },
                 [&](caf::error& e) { failure = std::move(e); });
      if (failure)
        throw std::runtime_error{"status: " + sys.render(failure)};
      return out;
    };
  }
  // The door links itself to the core: they end together.
  return coord::spawn_door(sys, std::move(core), std::move(refusals),
                           std::move(name));
}

} // namespace alb
