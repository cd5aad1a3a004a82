#include "runtime/cluster_status.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include <nlohmann/json.hpp>

#include "runtime/cluster_state.hpp"
#include "runtime/constraints.hpp"

namespace alb {

namespace {

constexpr const char* kind_names[]
  = {"unplaceable", "busy", "concurrency_key", "excluded", "dispatch"};

// "64 GB", "0.5 GB": no trailing zeros, so a reason reads like its config.
std::string gb(double x) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%g GB", x);
  return buf;
}

std::string join(const std::vector<std::string>& xs, const char* sep) {
  std::string out;
  for (auto& x : xs) {
    if (!out.empty())
      out += sep;
    out += x;
  }
  return out;
}

} // namespace

const char* to_string(wait_kind x) {
  return kind_names[static_cast<size_t>(x)];
}

bool from_string(std::string_view name, wait_kind& x) {
  for (size_t i = 0; i < std::size(kind_names); ++i)
    if (name == kind_names[i]) {
      x = static_cast<wait_kind>(i);
      return true;
    }
  return false;
}

std::vector<unmet_requirement> unmet_requirements(const cluster_state& cs,
                                                  uint32_t slot,
                                                  const test_record& t,
                                                  bool now) {
  std::vector<unmet_requirement> out;
  auto& w = cs.worker(slot);
  auto& req = t.req;
  const std::string free = now ? " free" : "";
  // The reservations are kept in float: compare with a little slack so a
  // test that needs exactly what a worker has is not called short of it.
  double mem = now ? w.free_memory : w.total_memory;
  if (req.minimum_memory > mem + 1e-6)
    out.push_back({"memory >= " + gb(req.minimum_memory), gb(mem) + free});
  for (auto& [name, count] : req.required_accelerators) {
    if (count <= 0)
      continue;
    int k = cs.accel_index(name);
    int have = k < 0 ? 0 : now ? w.free_accel[k] : w.total_accel[k];
    if (have < count)
      out.push_back({name + " >= " + std::to_string(count),
                     std::to_string(have) + " " + name + free});
  }
  // Backend, software (with versions) and tags: the scheduler's own check
  // (runtime/constraints), so status never says other than placement does.
  for (auto& u : unmet_constraints(*t.cons, w.caps))
    out.push_back({std::move(u.need), std::move(u.have)});
  // Room for one more test: its running slots plus its local queue.
  if (now && static_cast<int>(w.held.size()) >= w.capacity)
    out.push_back({"a free slot", std::to_string(w.held.size()) + " of "
                                    + std::to_string(w.capacity) + " held"});
  return out;
}

wait_reason why_waiting(const cluster_state& cs, const test_record& t) {
  if (t.key_waiting)
    return {wait_kind::concurrency_key, "concurrency key '"
                                          + t.req.concurrency_key
                                          + "' is held by a running test"};
  auto& live = cs.live_workers();
  if (live.empty())
    return {wait_kind::unplaceable, "no node is connected"};
  // For each requirement, on how many workers it is unmet (in the order
  // they are first seen, so the reason names them as the test lists them).
  std::vector<std::pair<std::string, size_t>> unmet;
  std::vector<uint32_t> could;
  for (auto slot : live) {
    auto u = unmet_requirements(cs, slot, t, false);
    if (u.empty()) {
      could.push_back(slot);
      continue;
    }
    for (auto& r : u) {
      auto i = std::find_if(unmet.begin(), unmet.end(),
                            [&](auto& p) { return p.first == r.need; });
      if (i == unmet.end())
        unmet.emplace_back(r.need, 1);
      else
        ++i->second;
    }
  }
  if (could.empty()) {
    std::vector<std::string> nowhere;
    for (auto& [need, n] : unmet)
      if (n == live.size())
        nowhere.push_back("no node has " + need);
    if (!nowhere.empty())
      return {wait_kind::unplaceable, join(nowhere, "; ")};
    // Each need is met somewhere, never all on one worker.
    std::vector<std::string> all;
    for (auto& p : unmet)
      all.push_back(p.first);
    return {wait_kind::unplaceable,
            "no node has " + join(all, " and ") + " at once"};
  }
  std::vector<uint32_t> usable;
  for (auto slot : could)
    if (slot != t.excluded)
      usable.push_back(slot);
  if (usable.empty())
    return {wait_kind::excluded, "its last attempt failed on '"
                                   + cs.worker(t.excluded).caps.worker_id
                                   + "', the only worker that can hold it"};
  std::vector<std::pair<std::string, size_t>> short_of;
  for (auto slot : usable) {
    auto u = unmet_requirements(cs, slot, t, true);
    if (u.empty())
      return {wait_kind::dispatch, "fits worker '"
                                     + cs.worker(slot).caps.worker_id
                                     + "' now (placed on the next pass)"};
    for (auto& r : u) {
      auto i = std::find_if(short_of.begin(), short_of.end(),
                            [&](auto& p) { return p.first == r.need; });
      if (i == short_of.end())
        short_of.emplace_back(r.need, 1);
      else
        ++i->second;
    }
  }
  auto n = usable.size();
  auto text = n == 1 ? "the one worker that can hold it ('"
                         + cs.worker(usable[0]).caps.worker_id + "') is busy"
                     : "all " + std::to_string(n)
                         + " workers that can hold it are busy";
  std::vector<std::string> everywhere;
  for (auto& [need, k] : short_of)
    if (k == n)
      everywhere.push_back(need);
  if (!everywhere.empty())
    text += " (short of: " + join(everywhere, ", ") + ")";
  return {wait_kind::busy, std::move(text)};
}

namespace {

// What decides a waiting test's reason besides its concurrency key: tests
// with the same requirements wait for the same reason, so a suite of
// thousands costs one look at the workers per kind of test.
std::string signature(const test_record& t) {
  std::string s = std::to_string(t.req.minimum_memory);
  s += '\n';
  for (auto& [name, count] : t.req.required_accelerators)
    s += name + '=' + std::to_string(count) + ',';
  s += '\n' + t.req.required_backend + '\n';
  for (auto& sw : t.req.required_software)
    s += sw + ',';
  s += '\n';
  for (auto& tag : t.req.required_tags)
    s += tag + ',';
  s += '\n' + std::to_string(t.excluded);
  return s;
}

} // namespace

cluster_status status_of(const cluster_state& cs, double now,
                         double wall_at_zero,
                         const std::vector<double>& last_seen,
                         size_t max_rows) {
  cluster_status s;
  s.time = wall_at_zero + now;
  s.uptime_seconds = now;
  auto& tot = s.totals;
  // Real workers report a test when it ends, not when it starts; a worker
  // starts its local queue first in, first out whenever a slot is free, so
  // its `slots` earliest placements are the ones running.
  std::unordered_set<const test_record*> running;
  std::vector<const test_record*> held;
  for (auto slot : cs.live_workers()) {
    auto& w = cs.worker(slot);
    held.clear();
    for (auto& h : w.held)
      held.push_back(&cs.record(h));
    std::sort(held.begin(), held.end(),
              [](auto* a, auto* b) { return a->placed_seq < b->placed_seq; });
    int k = 0;
    for (auto* t : held)
      if (t->status == test_status::running || k++ < w.slots)
        running.insert(t);
  }
  for (auto slot : cs.live_workers()) {
    auto& w = cs.worker(slot);
    worker_row r;
    r.worker_id = w.caps.worker_id;
    r.slot = slot;
    r.slots = w.slots;
    r.held = static_cast<int>(w.held.size());
    for (auto& h : w.held)
      r.running += running.count(&cs.record(h)) > 0 ? 1 : 0;
    r.memory_gb = w.total_memory;
    r.memory_free_gb = w.free_memory;
    for (auto& [name, count] : w.caps.available_accelerators) {
      r.accelerators[name] = count;
      int k = cs.accel_index(name);
      r.accelerators_free[name] = k < 0 ? count : w.free_accel[k];
    }
    r.cpu_cores = w.caps.cpu_cores;
    r.backends = w.caps.supported_backends;
    r.software = w.caps.software_versions;
    if (slot < last_seen.size() && last_seen[slot] >= 0)
      r.last_seen = wall_at_zero + last_seen[slot];
    tot.slots += static_cast<uint64_t>(r.slots);
    tot.busy_slots += static_cast<uint64_t>(std::min(r.running, r.slots));
    s.workers.push_back(std::move(r));
  }
  std::sort(s.workers.begin(), s.workers.end(),
            [](auto& a, auto& b) { return a.worker_id < b.worker_id; });
  tot.workers = s.workers.size();
  std::vector<const test_record*> waiting, placed;
  cs.for_each_open([&](const test_record& t) {
    if (t.status == test_status::pending)
      waiting.push_back(&t);
    else
      placed.push_back(&t);
  });
  std::unordered_map<std::string, wait_reason> reasons;
  auto reason_of = [&](const test_record& t) {
    if (t.key_waiting)
      return why_waiting(cs, t);
    auto sig = signature(t);
    auto i = reasons.find(sig);
    if (i == reasons.end())
      i = reasons.emplace(std::move(sig), why_waiting(cs, t)).first;
    return i->second;
  };
  tot.waiting = waiting.size();
  tot.key_waiting = cs.key_waiting();
  auto by_queue = [](const test_record* a, const test_record* b) {
    if (a->req.priority != b->req.priority)
      return a->req.priority < b->req.priority;
    return a->submitted_at < b->submitted_at;
  };
  std::sort(waiting.begin(), waiting.end(), by_queue);
  for (size_t i = 0; i < waiting.size(); ++i) {
    auto& t = *waiting[i];
    auto why = reason_of(t);
    if (why.kind == wait_kind::unplaceable)
      ++tot.unplaceable;
    if (i >= max_rows)
      continue;
    waiting_row r;
    r.test_id = t.req.test_id;
    r.priority = t.req.priority;
    r.state = t.key_waiting ? "key" : t.parked ? "parked" : "queued";
    r.reason = std::move(why);
    r.memory_gb = t.req.minimum_memory;
    r.submitted = wall_at_zero + t.submitted_at;
    r.waited_seconds = now - t.submitted_at;
    r.attempts = t.attempts;
    s.waiting.push_back(std::move(r));
  }
  tot.hidden_waiting = waiting.size() - s.waiting.size();
  auto since = [](const test_record* t) {
    return t->started_at >= 0 ? t->started_at : t->assigned_at;
  };
  std::sort(placed.begin(), placed.end(),
            [&](auto* a, auto* b) { return since(a) < since(b); });
  for (auto* t : placed) {
    bool runs = running.count(t) > 0;
    if (runs)
      ++tot.running;
    else
      ++tot.assigned;
    if (s.running.size() >= max_rows)
      continue;
    running_row r;
    r.test_id = t->req.test_id;
    if (t->worker != cluster_state::npos)
      r.worker_id = cs.worker(t->worker).caps.worker_id;
    r.state = runs ? "running" : "assigned";
    r.priority = t->req.priority;
    r.since = wall_at_zero + since(t);
    r.seconds = now - since(t);
    r.attempts = t->attempts;
    s.running.push_back(std::move(r));
  }
  tot.hidden_running = placed.size() - s.running.size();
  tot.submitted = cs.stats().submitted_count();
  tot.ended = cs.stats().ended();
  tot.completed = cs.stats().completed_count();
  return s;
}

void group_nodes(
  cluster_status& s,
  const std::function<std::string(const std::string&)>& address_of) {
  std::map<std::string, node_row> nodes;
  for (auto& w : s.workers) {
    auto& name = w.node.empty() ? w.worker_id : w.node;
    auto& n = nodes[name];
    n.name = name;
    ++n.workers;
    n.slots += w.slots;
    n.busy += std::min(w.running, w.slots);
    n.held += w.held;
    n.memory_gb += w.memory_gb;
    n.memory_free_gb += w.memory_free_gb;
    for (auto& [k, v] : w.accelerators)
      n.accelerators[k] += v;
    for (auto& [k, v] : w.accelerators_free)
      n.accelerators_free[k] += v;
    n.cpu_cores += w.cpu_cores;
    n.last_seen = std::max(n.last_seen, w.last_seen);
  }
  s.nodes.clear();
  for (auto& [name, n] : nodes) {
    if (address_of)
      n.address = address_of(name);
    s.nodes.push_back(std::move(n));
  }
  s.totals.nodes = s.nodes.size();
  std::sort(s.workers.begin(), s.workers.end(), [](auto& a, auto& b) {
    return std::tie(a.node, a.worker_id) < std::tie(b.node, b.worker_id);
  });
}

void keep_visible(cluster_status& s,
                  const std::function<bool(const std::string&)>& visible) {
  s.view = "own";
  auto drop = [&](auto& rows, uint64_t* hidden) {
    auto n = rows.size();
    rows.erase(std::remove_if(rows.begin(), rows.end(),
                              [&](auto& r) { return !visible(r.test_id); }),
               rows.end());
    *hidden += n - rows.size();
  };
  drop(s.waiting, &s.totals.hidden_waiting);
  drop(s.running, &s.totals.hidden_running);
}

// -- JSON ---------------------------------------------------------------------

namespace {

using nlohmann::json;

// Unix times "never" are null in JSON.
json time_or_null(double t) {
  return t < 0 ? json(nullptr) : json(t);
}

double time_from(const json& j, const char* key) {
  auto i = j.find(key);
  return i == j.end() || i->is_null() ? -1.0 : i->get<double>();
}

template<class T>
T get_or(const json& j, const char* key, T fallback) {
  auto i = j.find(key);
  return i == j.end() || i->is_null() ? fallback : i->get<T>();
}

json worker_json(const worker_row& w) {
  return {{"worker_id", w.worker_id},
          {"node", w.node},
          {"slot", w.slot},
          {"slots", w.slots},
          {"running", w.running},
          {"held", w.held},
          {"memory_gb", w.memory_gb},
          {"memory_free_gb", w.memory_free_gb},
          {"accelerators", w.accelerators},
          {"accelerators_free", w.accelerators_free},
          {"cpu_cores", w.cpu_cores},
          {"backends", w.backends},
          {"software", w.software},
          {"last_seen", time_or_null(w.last_seen)}};
}

worker_row worker_from(const json& j) {
  worker_row w;
  w.worker_id = j.at("worker_id").get<std::string>();
  w.node = get_or<std::string>(j, "node", "");
  w.slot = get_or<uint32_t>(j, "slot", 0);
  w.slots = get_or(j, "slots", 1);
  w.running = get_or(j, "running", 0);
  w.held = get_or(j, "held", 0);
  w.memory_gb = get_or(j, "memory_gb", 0.0);
  w.memory_free_gb = get_or(j, "memory_free_gb", 0.0);
  w.accelerators = get_or(j, "accelerators", std::map<std::string, int>{});
  w.accelerators_free
    = get_or(j, "accelerators_free", std::map<std::string, int>{});
  w.cpu_cores = get_or(j, "cpu_cores", 0);
  w.backends = get_or(j, "backends", std::vector<std::string>{});
  w.software = get_or(j, "software", std::map<std::string, std::string>{});
  w.last_seen = time_from(j, "last_seen");
  return w;
}

json node_json(const node_row& n) {
  return {{"name", n.name},
          {"address", n.address},
          {"workers", n.workers},
          {"slots", n.slots},
          {"busy", n.busy},
          {"held", n.held},
          {"memory_gb", n.memory_gb},
          {"memory_free_gb", n.memory_free_gb},
          {"accelerators", n.accelerators},
          {"accelerators_free", n.accelerators_free},
          {"cpu_cores", n.cpu_cores},
          {"last_seen", time_or_null(n.last_seen)}};
}

node_row node_from(const json& j) {
  node_row n;
  n.name = j.at("name").get<std::string>();
  n.address = get_or<std::string>(j, "address", "");
  n.workers = get_or(j, "workers", 0);
  n.slots = get_or(j, "slots", 0);
  n.busy = get_or(j, "busy", 0);
  n.held = get_or(j, "held", 0);
  n.memory_gb = get_or(j, "memory_gb", 0.0);
  n.memory_free_gb = get_or(j, "memory_free_gb", 0.0);
  n.accelerators = get_or(j, "accelerators", std::map<std::string, int>{});
  n.accelerators_free
    = get_or(j, "accelerators_free", std::map<std::string, int>{});
  n.cpu_cores = get_or(j, "cpu_cores", 0);
  n.last_seen = time_from(j, "last_seen");
  return n;
}

json waiting_json(const waiting_row& w) {
  return {{"test_id", w.test_id},     {"priority", w.priority},
          {"state", w.state},         {"reason_kind", to_string(w.reason.kind)},
          {"reason", w.reason.text},  {"memory_gb", w.memory_gb},
          {"submitted", w.submitted}, {"waited_seconds", w.waited_seconds},
          {"attempts", w.attempts}};
}

waiting_row waiting_from(const json& j) {
  waiting_row w;
  w.test_id = j.at("test_id").get<std::string>();
  w.priority = get_or(j, "priority", 3);
  w.state = get_or<std::string>(j, "state", "queued");
  auto kind = get_or<std::string>(j, "reason_kind", "dispatch");
  if (!from_string(kind, w.reason.kind))
    throw json::other_error::create(501, "unknown reason_kind '" + kind + "'",
                                    &j);
  w.reason.text = get_or<std::string>(j, "reason", "");
  w.memory_gb = get_or(j, "memory_gb", 0.0);
  w.submitted = get_or(j, "submitted", 0.0);
  w.waited_seconds = get_or(j, "waited_seconds", 0.0);
  w.attempts = get_or(j, "attempts", 0);
  return w;
}

json running_json(const running_row& r) {
  return {{"test_id", r.test_id},   {"worker_id", r.worker_id},
          {"node", r.node},         {"state", r.state},
          {"priority", r.priority}, {"since", r.since},
          {"seconds", r.seconds},   {"attempts", r.attempts}};
}

running_row running_from(const json& j) {
  running_row r;
  r.test_id = j.at("test_id").get<std::string>();
  r.worker_id = get_or<std::string>(j, "worker_id", "");
  r.node = get_or<std::string>(j, "node", "");
  r.state = get_or<std::string>(j, "state", "running");
  r.priority = get_or(j, "priority", 3);
  r.since = get_or(j, "since", 0.0);
  r.seconds = get_or(j, "seconds", 0.0);
  r.attempts = get_or(j, "attempts", 0);
  return r;
}

json failure_json(const failure_row& f) {
  return {{"test_id", f.test_id},         {"status", f.status},
          {"worker_id", f.worker_id},     {"error", f.error},
          {"exit_code", f.exit_code},     {"timed_out", f.timed_out},
          {"output_tail", f.output_tail}, {"ended", f.ended}};
}

failure_row failure_from(const json& j) {
  failure_row f;
  f.test_id = j.at("test_id").get<std::string>();
  f.status = get_or<std::string>(j, "status", "failed");
  f.worker_id = get_or<std::string>(j, "worker_id", "");
  f.error = get_or<std::string>(j, "error", "");
  f.exit_code = get_or(j, "exit_code", 0);
  f.timed_out = get_or(j, "timed_out", false);
  f.output_tail = get_or<std::string>(j, "output_tail", "");
  f.ended = get_or(j, "ended", 0.0);
  return f;
}

} // namespace

void to_json(json& j, const cluster_status& s) {
  auto rows = [](auto& xs, auto fn) {
    auto a = json::array();
    for (auto& x : xs)
      a.push_back(fn(x));
    return a;
  };
  auto& t = s.totals;
  j = {{"time", s.time},
       {"uptime_seconds", s.uptime_seconds},
       {"view", s.view},
       {"nodes", rows(s.nodes, node_json)},
       {"workers", rows(s.workers, worker_json)},
       {"waiting", rows(s.waiting, waiting_json)},
       {"running", rows(s.running, running_json)},
       {"recent_failures", rows(s.recent_failures, failure_json)},
       {"totals",
        {{"nodes", t.nodes},
         {"workers", t.workers},
         {"slots", t.slots},
         {"busy_slots", t.busy_slots},
         {"waiting", t.waiting},
         {"unplaceable", t.unplaceable},
         {"key_waiting", t.key_waiting},
         {"running", t.running},
         {"assigned", t.assigned},
         {"submitted", t.submitted},
         {"ended", t.ended},
         {"completed", t.completed},
         {"hidden_waiting", t.hidden_waiting},
         {"hidden_running", t.hidden_running}}}};
}

void from_json(const json& j, cluster_status& s) {
  s = {};
  s.time = get_or(j, "time", 0.0);
  s.uptime_seconds = get_or(j, "uptime_seconds", 0.0);
  s.view = get_or<std::string>(j, "view", "all");
  auto rows = [&](const char* key, auto& out, auto fn) {
    if (auto i = j.find(key); i != j.end())
      for (auto& x : *i)
        out.push_back(fn(x));
  };
  rows("nodes", s.nodes, node_from);
  rows("workers", s.workers, worker_from);
  rows("waiting", s.waiting, waiting_from);
  rows("running", s.running, running_from);
  rows("recent_failures", s.recent_failures, failure_from);
  if (auto i = j.find("totals"); i != j.end()) {
    auto& x = *i;
    auto& t = s.totals;
    t.nodes = get_or<uint64_t>(x, "nodes", 0);
    t.workers = get_or<uint64_t>(x, "workers", 0);
    t.slots = get_or<uint64_t>(x, "slots", 0);
    t.busy_slots = get_or<uint64_t>(x, "busy_slots", 0);
    t.waiting = get_or<uint64_t>(x, "waiting", 0);
    t.unplaceable = get_or<uint64_t>(x, "unplaceable", 0);
    t.key_waiting = get_or<uint64_t>(x, "key_waiting", 0);
    t.running = get_or<uint64_t>(x, "running", 0);
    t.assigned = get_or<uint64_t>(x, "assigned", 0);
    t.submitted = get_or<uint64_t>(x, "submitted", 0);
    t.ended = get_or<uint64_t>(x, "ended", 0);
    t.completed = get_or<uint64_t>(x, "completed", 0);
    t.hidden_waiting = get_or<uint64_t>(x, "hidden_waiting", 0);
    t.hidden_running = get_or<uint64_t>(x, "hidden_running", 0);
  }
}

} // namespace alb
