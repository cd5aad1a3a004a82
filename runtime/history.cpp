#include "runtime/history.hpp"

#include <sqlite3.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <sys/stat.h>
#include <unistd.h>

namespace alb {

// -- statistics ---------------------------------------------------------------

void running_stats::add(double x) {
  ++count;
  auto d = x - mean;
  mean += d / static_cast<double>(count);
  m2 += d * (x - mean);
}

void running_stats::merge(const running_stats& o) {
  if (o.count == 0)
    return;
  if (count == 0) {
    *this = o;
    return;
  }
  auto n = static_cast<double>(count + o.count);
  auto d = o.mean - mean;
  mean += d * static_cast<double>(o.count) / n;
  m2 += o.m2
        + d * d * static_cast<double>(count) * static_cast<double>(o.count) / n;
  count += o.count;
}

// -- history ------------------------------------------------------------------

void execution_history::add_to(
  std::unordered_map<std::string, worker_history>& map, size_t& pairs,
  add_cache& cache, const std::string& model, const std::string& family,
  const std::string& worker, double exec_seconds, double expected_seconds) {
  if (!cache.w || cache.worker != worker) {
    cache.w = &map[worker];
    cache.worker = worker;
    cache.m = cache.f = nullptr;
  }
  auto& w = *cache.w;
  if (!cache.m || cache.model != model) {
    auto [it, fresh] = w.by_model.try_emplace(model);
    if (fresh)
      ++pairs;
    cache.m = &it->second;
    cache.model = model;
  }
  if (family.empty()) {
    cache.f = nullptr;
    cache.family.clear();
  } else if (!cache.f || cache.family != family) {
    cache.f = &w.by_family[family];
    cache.family = family;
  }
  auto* m = cache.m;
  auto* fam = cache.f;
  auto add = [&](auto member, double x) {
    (m->*member).add(x);
    (w.overall.*member).add(x);
    if (fam)
      (fam->*member).add(x);
  };
  add(&exec_stats::seconds, exec_seconds);
  if (std::isfinite(expected_seconds) && expected_seconds > 0)
    add(&exec_stats::slowdown, exec_seconds / expected_seconds);
}

void execution_history::record(const std::string& model,
                               const std::string& worker, double exec_seconds,
                               double expected_seconds,
                               const std::string& family) {
  if (!std::isfinite(exec_seconds) || exec_seconds < 0)
    return;
  // One lookup, and a copy of the family only when it is new or changed:
  // this runs on every completion.
  const std::string* fam;
  if (!family.empty()) {
    auto [it, added] = families_.try_emplace(model, family);
    if (!added && it->second != family)
      it->second = family;
    fam = &it->second;
  } else {
    fam = &family_of(model);
  }
  add_to(workers_, pairs_, workers_cache_, model, *fam, worker, exec_seconds,
         expected_seconds);
  add_to(fresh_, fresh_pairs_, fresh_cache_, model, *fam, worker, exec_seconds,
         expected_seconds);
}

const std::string&
execution_history::family_of(const std::string& model) const {
  static const std::string none;
  auto it = families_.find(model);
  return it == families_.end() ? none : it->second;
}

void execution_history::add_family(worker_history& w, const std::string& model,
                                   const exec_stats& s) const {
  auto& fam = family_of(model);
  if (!fam.empty())
    w.by_family[fam].merge(s);
}

execution_history execution_history::fresh() const {
  execution_history h;
  h.workers_ = fresh_;
  h.pairs_ = fresh_pairs_;
  h.families_ = families_;
  return h;
}

const worker_history*
execution_history::find_worker(const std::string& worker) const {
  auto it = workers_.find(worker);
  return it == workers_.end() ? nullptr : &it->second;
}

const exec_stats* execution_history::find(const std::string& model,
                                          const std::string& worker) const {
  auto w = find_worker(worker);
  if (!w)
    return nullptr;
  auto it = w->by_model.find(model);
  return it == w->by_model.end() ? nullptr : &it->second;
}

run_estimate execution_history::estimate_run(const std::string& model,
                                             const worker_history* w,
                                             double expected_seconds,
                                             double fallback_speed,
                                             const std::string& family) const {
  auto speed = fallback_speed > 0 ? fallback_speed : 1.0;
  // The ratio carries over between tests of different sizes; a mean of
  // seconds would not.
  bool ratio = expected_seconds > 0;
  auto scale = ratio ? expected_seconds : 1.0;
  run_estimate out{scale / speed, 0};
  if (!w)
    return out;
  auto series = [&](const exec_stats& s) -> const running_stats& {
    return ratio ? s.slowdown : s.seconds;
  };
  double mean = 1.0 / speed;
  double sd = 0;
  // Each level is drawn towards the one above it by prior_samples
  // pseudo-samples; the deepest level with a spread gives the spread.
  auto level = [&](const exec_stats* s, bool top) {
    if (!s)
      return;
    auto& r = series(*s);
    if (r.count == 0)
      return;
    auto n = static_cast<double>(r.count);
    mean = top ? r.mean
               : (n * r.mean + prior_samples * mean) / (n + prior_samples);
    if (r.count > 1)
      sd = std::sqrt(r.variance());
  };
  level(&w->overall, true);
  auto& fam = family.empty() ? family_of(model) : family;
  if (!fam.empty()) {
    auto it = w->by_family.find(fam);
    level(it == w->by_family.end() ? nullptr : &it->second, false);
  }
  auto it = w->by_model.find(model);
  level(it == w->by_model.end() ? nullptr : &it->second, false);
  return {mean * scale, sd * scale};
}

void execution_history::merge(const execution_history& other) {
  for (auto& [model, family] : other.families_)
    families_.try_emplace(model, family);
  for (auto& [worker, ow] : other.workers_) {
    auto& w = workers_[worker];
    for (auto& [model, os] : ow.by_model) {
      auto [it, fresh] = w.by_model.try_emplace(model);
      if (fresh)
        ++pairs_;
      it->second.merge(os);
    }
    for (auto& [family, os] : ow.by_family)
      w.by_family[family].merge(os);
    w.overall.merge(ow.overall);
  }
}

// -- SQLite -------------------------------------------------------------------

namespace {

/// Closes the connection however the function is left.
struct db_handle {
  sqlite3* db = nullptr;
  ~db_handle() {
    if (db)
      sqlite3_close_v2(db);
  }
};

/// Finalizes a statement however the function is left.
struct stmt_handle {
  sqlite3_stmt* st = nullptr;
  ~stmt_handle() {
    if (st)
      sqlite3_finalize(st);
  }
};

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw history_error("history database '" + path + "': " + what);
}

[[noreturn]] void fail_db(const std::string& path, sqlite3* db,
                          const std::string& doing) {
  fail(path, doing + ": " + (db ? sqlite3_errmsg(db) : "out of memory"));
}

void exec(const std::string& path, sqlite3* db, const char* sql,
          const char* doing) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errmsg(db);
    sqlite3_free(err);
    fail(path, std::string{doing} + ": " + msg);
  }
}

const char* create_sql = "CREATE TABLE IF NOT EXISTS execution_history ("
                         "model TEXT NOT NULL, worker TEXT NOT NULL, "
                         "count INTEGER NOT NULL, mean REAL NOT NULL, "
                         "m2 REAL NOT NULL, ratio_count INTEGER NOT NULL, "
                         "ratio_mean REAL NOT NULL, ratio_m2 REAL NOT NULL, "
                         "PRIMARY KEY (model, worker))";

void open_db(const std::string& path, db_handle& h, int flags) {
  // A busy database (another alb saving) is waited for, not an error.
  if (sqlite3_open_v2(path.c_str(), &h.db, flags, nullptr) != SQLITE_OK)
    fail_db(path, h.db, "cannot open");
  sqlite3_busy_timeout(h.db, 5000);
}

const char* create_family_sql
  = "CREATE TABLE IF NOT EXISTS execution_history_family ("
    "model TEXT PRIMARY KEY NOT NULL, family TEXT NOT NULL)";

/// Whether the database has a table called `name`.
bool has_table(const std::string& path, sqlite3* db, const char* name) {
  stmt_handle probe;
  if (sqlite3_prepare_v2(db,
                         "SELECT count(*) FROM sqlite_master WHERE type = "
                         "'table' AND name = ?",
                         -1, &probe.st, nullptr)
        != SQLITE_OK
      || sqlite3_bind_text(probe.st, 1, name, -1, SQLITE_STATIC) != SQLITE_OK
      || sqlite3_step(probe.st) != SQLITE_ROW)
    fail_db(path, db, "cannot read");
  return sqlite3_column_int(probe.st, 0) > 0;
}

/// Reads the model families into `out`; a database saved before families
/// were kept has no such table and no families.
void read_families(const std::string& path, sqlite3* db,
                   std::unordered_map<std::string, std::string>& out) {
  if (!has_table(path, db, execution_history::family_table))
    return;
  stmt_handle q;
  if (sqlite3_prepare_v2(db,
                         "SELECT model, family FROM execution_history_family",
                         -1, &q.st, nullptr)
      != SQLITE_OK)
    fail_db(path, db, "malformed table execution_history_family");
  for (;;) {
    auto rc = sqlite3_step(q.st);
    if (rc == SQLITE_DONE)
      break;
    if (rc != SQLITE_ROW)
      fail_db(path, db, "cannot read table execution_history_family");
    auto model = sqlite3_column_text(q.st, 0);
    auto family = sqlite3_column_text(q.st, 1);
    if (model && family && *family)
      out[reinterpret_cast<const char*>(model)]
        = reinterpret_cast<const char*>(family);
  }
}

bool valid_stats(sqlite3_int64 count, double mean, double m2) {
  return count >= 0 && std::isfinite(mean) && mean >= 0 && std::isfinite(m2)
         && m2 >= 0;
}

} // namespace

execution_history execution_history::load(const std::string& path) {
  execution_history h;
  struct stat sb {};
  if (::stat(path.c_str(), &sb) != 0) {
    if (errno == ENOENT)
      return h; // first run: nothing learned yet
    fail(path, std::strerror(errno));
  }
  if (S_ISDIR(sb.st_mode))
    fail(path, "is a directory");
  if (::access(path.c_str(), R_OK) != 0)
    fail(path, std::strerror(errno));
  db_handle db;
  // Read-write when it may be: a writer killed mid-transaction (a save, or
  // the coordinator's journal in the same file) leaves a hot journal that
  // SQLite must roll back before anyone can read, and a read-only
  // connection cannot ("attempt to write a readonly database").
  open_db(path, db,
          ::access(path.c_str(), W_OK) == 0 ? SQLITE_OPEN_READWRITE
                                            : SQLITE_OPEN_READONLY);
  // The first statement is what reads the header: a garbage file fails
  // here with "file is not a database".
  if (!has_table(path, db.db, table))
    return h; // a database of other tables (the journal): nothing learned
  read_families(path, db.db, h.families_);
  stmt_handle q;
  if (sqlite3_prepare_v2(db.db,
                         "SELECT model, worker, count, mean, m2, ratio_count, "
                         "ratio_mean, ratio_m2 FROM execution_history",
                         -1, &q.st, nullptr)
      != SQLITE_OK)
    fail_db(path, db.db, "malformed table execution_history");
  for (;;) {
    auto rc = sqlite3_step(q.st);
    if (rc == SQLITE_DONE)
      break;
    if (rc != SQLITE_ROW)
      fail_db(path, db.db, "cannot read table execution_history");
    auto text = [&](int col) {
      auto p = sqlite3_column_text(q.st, col);
      return p ? std::string{reinterpret_cast<const char*>(p)} : std::string{};
    };
    auto model = text(0);
    auto worker = text(1);
    auto count = sqlite3_column_int64(q.st, 2);
    auto mean = sqlite3_column_double(q.st, 3);
    auto m2 = sqlite3_column_double(q.st, 4);
    auto rcount = sqlite3_column_int64(q.st, 5);
    auto rmean = sqlite3_column_double(q.st, 6);
    auto rm2 = sqlite3_column_double(q.st, 7);
    if (worker.empty() || !valid_stats(count, mean, m2)
        || !valid_stats(rcount, rmean, rm2))
      fail(path, "malformed row in table execution_history (model '" + model
                   + "', worker '" + worker + "')");
    exec_stats s;
    s.seconds = {static_cast<uint64_t>(count), mean, m2};
    s.slowdown = {static_cast<uint64_t>(rcount), rmean, rm2};
    auto& w = h.workers_[worker];
    auto [it, fresh] = w.by_model.try_emplace(model);
    if (fresh)
      ++h.pairs_;
    it->second.merge(s);
    w.overall.merge(s);
    h.add_family(w, model, s);
  }
  return h;
}

void execution_history::save(const std::string& path) const {
  db_handle db;
  open_db(path, db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  // Rollback journal with full sync: the transaction below is atomic even
  // when the process is killed or the machine loses power mid-write.
  exec(path, db.db, "PRAGMA synchronous = FULL", "cannot write");
  exec(path, db.db, "BEGIN IMMEDIATE", "cannot write");
  try {
    exec(path, db.db, create_sql, "cannot write");
    exec(path, db.db, "DELETE FROM execution_history", "cannot write");
    stmt_handle ins;
    if (sqlite3_prepare_v2(db.db,
                           "INSERT INTO execution_history (model, worker, "
                           "count, mean, m2, ratio_count, ratio_mean, "
                           "ratio_m2) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           -1, &ins.st, nullptr)
        != SQLITE_OK)
      fail_db(path, db.db, "malformed table execution_history");
    for (auto& [worker, w] : workers_) {
      for (auto& [model, s] : w.by_model) {
        sqlite3_reset(ins.st);
        sqlite3_bind_text(ins.st, 1, model.data(),
                          static_cast<int>(model.size()), SQLITE_TRANSIENT);
        sqlite3_bind_text(ins.st, 2, worker.data(),
                          static_cast<int>(worker.size()), SQLITE_TRANSIENT);
        sqlite3_bind_int64(ins.st, 3,
                           static_cast<sqlite3_int64>(s.seconds.count));
        sqlite3_bind_double(ins.st, 4, s.seconds.mean);
        sqlite3_bind_double(ins.st, 5, s.seconds.m2);
        sqlite3_bind_int64(ins.st, 6,
                           static_cast<sqlite3_int64>(s.slowdown.count));
        sqlite3_bind_double(ins.st, 7, s.slowdown.mean);
        sqlite3_bind_double(ins.st, 8, s.slowdown.m2);
        if (sqlite3_step(ins.st) != SQLITE_DONE)
          fail_db(path, db.db, "cannot write");
      }
    }
    exec(path, db.db, create_family_sql, "cannot write");
    exec(path, db.db, "DELETE FROM execution_history_family", "cannot write");
    stmt_handle fam;
    if (sqlite3_prepare_v2(db.db,
                           "INSERT INTO execution_history_family (model, "
                           "family) VALUES (?, ?)",
                           -1, &fam.st, nullptr)
        != SQLITE_OK)
      fail_db(path, db.db, "malformed table execution_history_family");
    for (auto& [model, family] : families_) {
      sqlite3_reset(fam.st);
      sqlite3_bind_text(fam.st, 1, model.data(), static_cast<int>(model.size()),
                        SQLITE_TRANSIENT);
      sqlite3_bind_text(fam.st, 2, family.data(),
                        static_cast<int>(family.size()), SQLITE_TRANSIENT);
      if (sqlite3_step(fam.st) != SQLITE_DONE)
        fail_db(path, db.db, "cannot write");
    }
    exec(path, db.db, "COMMIT", "cannot write");
  } catch (...) {
    sqlite3_exec(db.db, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

} // namespace alb
