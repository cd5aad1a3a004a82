#include "runtime/journal.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <functional>
#include <set>
#include <string_view>
#include <unordered_set>
#include <utility>

namespace alb {

namespace {

/// Finalizes a statement however the function is left.
struct stmt {
  sqlite3_stmt* st = nullptr;
  ~stmt() {
    if (st)
      sqlite3_finalize(st);
  }
};

const char* create_tests_sql
  = "CREATE TABLE IF NOT EXISTS journal_tests ("
    "seq INTEGER PRIMARY KEY AUTOINCREMENT, test_id TEXT NOT NULL, "
    "definition TEXT NOT NULL, state TEXT NOT NULL, status TEXT, "
    "success INTEGER, timed_out INTEGER, exit_code INTEGER, "
    "exec_seconds REAL, attempts INTEGER, worker_id TEXT, error TEXT, "
    "output_tail TEXT, node TEXT, signal INTEGER, submitted_at REAL, "
    "started_at REAL, ended_at REAL)";

// Columns added after the first release of the table, in order: a
// journal written by an older alb gets them (empty) when opened.
constexpr const char* added_columns[][2]
  = {{"node", "TEXT"},          {"signal", "INTEGER"},
     {"submitted_at", "REAL"},  {"started_at", "REAL"},
     {"ended_at", "REAL"},      {"run_id", "TEXT"},
     {"owner", "TEXT"},         {"migrated", "INTEGER"},
     {"stolen", "INTEGER"},     {"stderr_tail", "TEXT"},
     {"speculated", "INTEGER"}, {"speculation_won", "INTEGER"}};

// At most one live record per id, enforced by the database as well.
const char* create_index_sql
  = "CREATE UNIQUE INDEX IF NOT EXISTS journal_tests_live ON "
    "journal_tests (test_id) WHERE state != 'retired'";

// Which run each test belongs to, and who submitted it (added to journals
// written before runs were recorded: their tests have neither).
const char* create_runs_sql
  = "CREATE TABLE IF NOT EXISTS journal_runs (run_id TEXT PRIMARY KEY, "
    "owner TEXT NOT NULL, label TEXT, submitted_at REAL)";

const char* create_run_index_sql
  = "CREATE INDEX IF NOT EXISTS journal_tests_run ON journal_tests (run_id)";

const char* create_nodes_sql
  = "CREATE TABLE IF NOT EXISTS journal_nodes (name TEXT PRIMARY KEY)";

// Definitions are netstrings ("<length>:<bytes>,") in a fixed field order:
// canonical (one text per definition), exact for any bytes in commands and
// environments (JSON would need valid UTF-8) and quick to write on the
// submission path (about 1 us a test).
constexpr const char* definition_version = "alb-test-1";

struct def_writer {
  std::string& out;

  void str(const char* p, size_t n) {
    char len[24];
    auto r = std::to_chars(len, len + sizeof(len), n);
    out.append(len, r.ptr);
    out += ':';
    out.append(p, n);
    out += ',';
  }

  void str(const std::string& s) { str(s.data(), s.size()); }

  void num(double x) {
    char buf[64];
    // Shortest text that reads back as the same double.
    auto r = std::to_chars(buf, buf + sizeof(buf), x);
    str(buf, static_cast<size_t>(r.ptr - buf));
  }

  void num(long long x) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof(buf), x);
    str(buf, static_cast<size_t>(r.ptr - buf));
  }
};

// Throws std::runtime_error on a malformed text; the caller names the row.
struct def_reader {
  const std::string& in;
  size_t pos = 0;

  [[noreturn]] static void bad() {
    throw std::runtime_error{"malformed definition"};
  }

  std::string str() {
    size_t n = 0;
    auto b = in.data() + pos;
    auto e = in.data() + in.size();
    auto r = std::from_chars(b, e, n);
    if (r.ec != std::errc{} || r.ptr == e || *r.ptr != ':')
      bad();
    auto start = static_cast<size_t>(r.ptr - in.data()) + 1;
    if (n > in.size() || start + n >= in.size() || in[start + n] != ',')
      bad();
    pos = start + n + 1;
    return in.substr(start, n);
  }

  template<class T>
  T num() {
    auto s = str();
    T x{};
    auto r = std::from_chars(s.data(), s.data() + s.size(), x);
    if (r.ec != std::errc{} || r.ptr != s.data() + s.size())
      bad();
    return x;
  }

  size_t count() {
    auto n = num<long long>();
    // Every item takes at least two bytes: a bound on what may follow.
    if (n < 0 || static_cast<size_t>(n) > in.size() - pos)
      bad();
    return static_cast<size_t>(n);
  }
};

void encode_into(const journaled_test& t, std::string& out) {
  auto& r = t.req;
  def_writer w{out};
  w.out.reserve(128);
  w.str(definition_version, std::strlen(definition_version));
  w.str(r.test_id);
  w.str(r.model_id);
  w.str(r.model_family);
  w.str(r.test_type);
  w.num(r.minimum_memory);
  w.str(r.required_backend);
  w.str(r.preferred_backend);
  w.num(static_cast<long long>(r.required_accelerators.size()));
  for (auto& [k, v] : r.required_accelerators) {
    w.str(k);
    w.num(static_cast<long long>(v));
  }
  w.num(static_cast<long long>(r.required_software.size()));
  for (auto& x : r.required_software)
    w.str(x);
  w.num(r.expected_duration);
  w.num(static_cast<long long>(r.priority));
  w.num(r.timeout);
  w.num(static_cast<long long>(r.retries));
  w.str(r.concurrency_key);
  w.num(r.wait_limit);
  w.num(static_cast<long long>(t.command.size()));
  for (auto& x : t.command)
    w.str(x);
  w.num(static_cast<long long>(t.env.size()));
  for (auto& [k, v] : t.env) {
    w.str(k);
    w.str(v);
  }
  w.str(t.cwd);
  // Appended after the first format: entries without it read as no tags.
  w.num(static_cast<long long>(r.required_tags.size()));
  for (auto& x : r.required_tags)
    w.str(x);
  // Only when set, so definitions (and their digests) without it stay as
  // they were.
  if (t.max_output != 0 || !r.speculate)
    w.num(static_cast<long long>(t.max_output));
  // The same for `speculate = false` (after max_output, written then).
  if (!r.speculate)
    w.num(0LL);
}

std::string encode(const journaled_test& t) {
  std::string out;
  encode_into(t, out);
  return out;
}

journaled_test decode(const std::string& text) {
  def_reader rd{text};
  if (rd.str() != definition_version)
    def_reader::bad();
  journaled_test t;
  auto& r = t.req;
  r.test_id = rd.str();
  r.model_id = rd.str();
  r.model_family = rd.str();
  r.test_type = rd.str();
  r.minimum_memory = rd.num<double>();
  r.required_backend = rd.str();
  r.preferred_backend = rd.str();
  for (auto n = rd.count(); n > 0; --n) {
    auto k = rd.str();
    r.required_accelerators[k] = static_cast<int>(rd.num<long long>());
  }
  for (auto n = rd.count(); n > 0; --n)
    r.required_software.push_back(rd.str());
  r.expected_duration = rd.num<double>();
  r.priority = static_cast<int>(rd.num<long long>());
  r.timeout = rd.num<double>();
  r.retries = static_cast<int>(rd.num<long long>());
  r.concurrency_key = rd.str();
  r.wait_limit = rd.num<double>();
  for (auto n = rd.count(); n > 0; --n)
    t.command.push_back(rd.str());
  for (auto n = rd.count(); n > 0; --n) {
    auto k = rd.str();
    t.env[k] = rd.str();
  }
  t.cwd = rd.str();
  if (rd.pos != text.size())
    for (auto n = rd.count(); n > 0; --n)
      r.required_tags.push_back(rd.str());
  if (rd.pos < text.size())
    t.max_output = static_cast<uint64_t>(rd.num<long long>());
  if (rd.pos < text.size())
    r.speculate = rd.num<long long>() != 0;
  if (rd.pos != text.size())
    def_reader::bad();
  return t;
}

bool finite_numbers(const test_requirements& r) {
  return std::isfinite(r.minimum_memory) && std::isfinite(r.expected_duration)
         && std::isfinite(r.timeout) && std::isfinite(r.wait_limit);
}

std::string column_blob(sqlite3_stmt* st, int col) {
  auto p = static_cast<const char*>(sqlite3_column_blob(st, col));
  auto n = sqlite3_column_bytes(st, col);
  return p && n > 0 ? std::string(p, static_cast<size_t>(n)) : std::string{};
}

std::string column_text(sqlite3_stmt* st, int col) {
  auto p = sqlite3_column_text(st, col);
  return p ? std::string{reinterpret_cast<const char*>(p)} : std::string{};
}

// Named apart from std::bind, which argument-dependent lookup would pick
// for a non-const std::string.
void bind_text(sqlite3_stmt* st, int i, const std::string& s) {
  sqlite3_bind_text(st, i, s.data(), static_cast<int>(s.size()),
                    SQLITE_TRANSIENT);
}

} // namespace

// -- opening ------------------------------------------------------------------

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw journal_error("journal database '" + path + "': " + what);
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

void prepare(const std::string& path, sqlite3* db, const char* sql, stmt& s,
             const char* doing) {
  if (sqlite3_prepare_v2(db, sql, -1, &s.st, nullptr) != SQLITE_OK)
    fail_db(path, db, doing);
}

} // namespace

// The outcome's columns, in the order read_outcome and bind_outcome use:
// one list, so every query that reads or writes an outcome carries all of
// its fields (an answer from the journal is the outcome the client saw).
constexpr const char* outcome_columns
  = "status, success, timed_out, exit_code, exec_seconds, attempts, "
    "worker_id, error, output_tail, node, signal, submitted_at, started_at, "
    "ended_at, migrated, stolen, stderr_tail, speculated, speculation_won";
constexpr int outcome_column_count = 19;

// Reads the outcome columns starting at `col` (the id is not among them).
void read_outcome(sqlite3_stmt* st, int col, journaled_outcome& o) {
  o.status = column_text(st, col);
  o.success = sqlite3_column_int(st, col + 1) != 0;
  o.timed_out = sqlite3_column_int(st, col + 2) != 0;
  o.exit_code = sqlite3_column_int(st, col + 3);
  o.exec_seconds = sqlite3_column_double(st, col + 4);
  o.attempts = sqlite3_column_int(st, col + 5);
  o.worker_id = column_text(st, col + 6);
  o.error = column_text(st, col + 7);
  o.output_tail = column_text(st, col + 8);
  o.node = column_text(st, col + 9);
  o.signal = sqlite3_column_int(st, col + 10);
  o.submitted_at = sqlite3_column_double(st, col + 11);
  o.started_at = sqlite3_column_double(st, col + 12);
  o.ended_at = sqlite3_column_double(st, col + 13);
  o.migrated = sqlite3_column_int(st, col + 14);
  o.stolen = sqlite3_column_int(st, col + 15);
  o.stderr_tail = column_text(st, col + 16);
  o.speculated = sqlite3_column_int(st, col + 17) != 0;
  o.speculation_won = sqlite3_column_int(st, col + 18) != 0;
}

// Binds the outcome to parameters `first`.. in outcome_columns' order.
void bind_outcome(sqlite3_stmt* st, int first, const journaled_outcome& o) {
  bind_text(st, first, o.status);
  sqlite3_bind_int(st, first + 1, o.success ? 1 : 0);
  sqlite3_bind_int(st, first + 2, o.timed_out ? 1 : 0);
  sqlite3_bind_int(st, first + 3, o.exit_code);
  sqlite3_bind_double(st, first + 4, o.exec_seconds);
  sqlite3_bind_int(st, first + 5, o.attempts);
  bind_text(st, first + 6, o.worker_id);
  bind_text(st, first + 7, o.error);
  bind_text(st, first + 8, o.output_tail);
  bind_text(st, first + 9, o.node);
  sqlite3_bind_int(st, first + 10, o.signal);
  sqlite3_bind_double(st, first + 11, o.submitted_at);
  sqlite3_bind_double(st, first + 12, o.started_at);
  sqlite3_bind_double(st, first + 13, o.ended_at);
  sqlite3_bind_int(st, first + 14, o.migrated);
  sqlite3_bind_int(st, first + 15, o.stolen);
  bind_text(st, first + 16, o.stderr_tail);
  sqlite3_bind_int(st, first + 17, o.speculated ? 1 : 0);
  sqlite3_bind_int(st, first + 18, o.speculation_won ? 1 : 0);
}

submission_journal submission_journal::open(const std::string& path) {
  submission_journal j;
  j.path_ = path;
  sqlite3* raw = nullptr;
  auto rc = sqlite3_open_v2(
    path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  j.db_ = {raw, sqlite3_close_v2};
  if (rc != SQLITE_OK)
    fail_db(path, raw, "cannot open");
  auto* db = raw;
  // Another alb writing the same file (the history save) is waited for.
  sqlite3_busy_timeout(db, 5000);
  // Every commit reaches the disk before the coordinator acknowledges or
  // reports what it wrote; the rollback journal keeps each transaction
  // atomic when the process is killed mid-write.
  exec(path, db, "PRAGMA synchronous = FULL", "cannot open");
  exec(path, db, create_tests_sql, "cannot create the journal");
  exec(path, db, create_index_sql, "cannot create the journal");
  {
    std::set<std::string> have;
    stmt info;
    prepare(path, db, "PRAGMA table_info(journal_tests)", info,
            "malformed table journal_tests");
    while (sqlite3_step(info.st) == SQLITE_ROW)
      have.insert(column_text(info.st, 1));
    for (auto& [name, type] : added_columns)
      if (!have.count(name))
        exec(path, db,
             (std::string{"ALTER TABLE journal_tests ADD COLUMN "} + name + " "
              + type)
               .c_str(),
             "cannot upgrade the journal");
  }
  exec(path, db, create_nodes_sql, "cannot create the journal");
  exec(path, db, create_runs_sql, "cannot create the journal");
  exec(path, db, create_run_index_sql, "cannot create the journal");
  stmt q;
  prepare(path, db,
          (std::string{"SELECT seq, test_id, definition, state, owner, "
                       "run_id, "}
           + outcome_columns
           + " FROM journal_tests WHERE state != 'retired' ORDER BY seq")
            .c_str(),
          q, "malformed table journal_tests");
  for (;;) {
    rc = sqlite3_step(q.st);
    if (rc == SQLITE_DONE)
      break;
    if (rc != SQLITE_ROW)
      fail_db(path, db, "cannot read table journal_tests");
    journal_record r;
    r.seq = sqlite3_column_int64(q.st, 0);
    auto id = column_text(q.st, 1);
    r.definition = column_blob(q.st, 2);
    auto state = column_text(q.st, 3);
    r.owner = column_text(q.st, 4);
    r.run_id = column_text(q.st, 5);
    auto bad = [&](const std::string& why) {
      fail(path, "malformed row " + std::to_string(r.seq)
                   + " in table journal_tests (test '" + id + "'): " + why);
    };
    journaled_test t;
    try {
      t = decode(r.definition);
    } catch (const std::exception& e) {
      bad(std::string{"bad definition: "} + e.what());
    }
    if (id.empty() || t.req.test_id != id)
      bad("the definition names another test");
    if (state == "ended") {
      r.ended = true;
      auto& o = r.outcome;
      o.test_id = id;
      read_outcome(q.st, 6, o);
      if (o.status.empty())
        bad("ended without a status");
    } else if (state != "open") {
      bad("unknown state '" + state + "'");
    }
    if (!r.ended)
      ++j.open_;
    auto [ref, added] = j.live_.try_emplace(id);
    if (!added)
      bad("two live records");
    j.live_[ref] = std::move(r);
  }
  stmt n;
  prepare(path, db, "SELECT name FROM journal_nodes ORDER BY name", n,
          "malformed table journal_nodes");
  while ((rc = sqlite3_step(n.st)) == SQLITE_ROW)
    j.nodes_.insert(column_text(n.st, 0));
  if (rc != SQLITE_DONE)
    fail_db(path, db, "cannot read table journal_nodes");
  stmt runs;
  prepare(path, db, "SELECT run_id, owner FROM journal_runs", runs,
          "malformed table journal_runs");
  while ((rc = sqlite3_step(runs.st)) == SQLITE_ROW)
    j.run_owners_[column_text(runs.st, 0)] = column_text(runs.st, 1);
  if (rc != SQLITE_DONE)
    fail_db(path, db, "cannot read table journal_runs");
  return j;
}

submission_journal::submission_journal(submission_journal&&) noexcept = default;

submission_journal&
submission_journal::operator=(submission_journal&&) noexcept = default;

submission_journal::~submission_journal() = default;

// -- reading ------------------------------------------------------------------

const journal_record*
submission_journal::find(const std::string& test_id) const {
  auto ref = live_.find(test_id);
  return ref == live_.npos ? nullptr : &live_[ref];
}

std::vector<journaled_test> submission_journal::open_tests() const {
  std::vector<const journal_record*> open;
  open.reserve(open_);
  live_.for_each([&](const std::string&, const journal_record& r) {
    if (!r.ended)
      open.push_back(&r);
  });
  std::sort(open.begin(), open.end(),
            [](auto* a, auto* b) { return a->seq < b->seq; });
  std::vector<journaled_test> out;
  out.reserve(open.size());
  // Decoded here: kept in memory only as its encoding, which was checked
  // when it was read or written.
  for (auto* r : open)
    out.push_back(decode(r->definition));
  return out;
}

std::vector<std::string> submission_journal::known_nodes() const {
  return {nodes_.begin(), nodes_.end()};
}

std::string submission_journal::definition_of(const journaled_test& t) {
  return encode(t);
}

// -- writing ------------------------------------------------------------------

void submission_journal::begin() {
  exec(path_, db_.get(), "BEGIN IMMEDIATE", "cannot write");
}

void submission_journal::commit() {
  exec(path_, db_.get(), "COMMIT", "cannot write");
}

void submission_journal::rollback() noexcept {
  sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
}

uint64_t submission_journal::digest_of(const journaled_test& t) {
  // One buffer per thread: no allocation per test once it has grown.
  thread_local std::string buf;
  buf.clear();
  encode_into(t, buf);
  return std::hash<std::string_view>{}(buf);
}

void submission_journal::accept(const std::vector<journaled_test>& tests) {
  std::vector<const journaled_test*> ptrs;
  ptrs.reserve(tests.size());
  for (auto& t : tests)
    ptrs.push_back(&t);
  accept(ptrs);
}

void submission_journal::accept(
  const std::vector<const journaled_test*>& tests) {
  accept(tests, journal_run{});
}

void submission_journal::accept(const std::vector<const journaled_test*>& tests,
                                const journal_run& run) {
  if (tests.empty())
    return;
  bool new_run = false;
  if (!run.run_id.empty()) {
    auto k = run_owners_.find(run.run_id);
    if (k == run_owners_.end())
      new_run = true;
    else if (k->second != run.owner)
      fail(path_, "run '" + run.run_id + "' belongs to another client");
  }
  // Views into `tests`: no copy of each id just to check for doubles.
  std::unordered_set<std::string_view> ids;
  ids.reserve(tests.size());
  std::vector<std::string> defs;
  defs.reserve(tests.size());
  // Sequence number of the ended record each test supersedes (0 = none).
  std::vector<int64_t> superseded;
  superseded.reserve(tests.size());
  for (auto* tp : tests) {
    auto& t = *tp;
    auto& id = t.req.test_id;
    if (id.empty())
      fail(path_, "cannot accept a test without an id");
    if (!ids.insert(id).second)
      fail(path_, "test '" + id + "' appears twice in one submission");
    auto r = find(id);
    if (r && !r->ended)
      fail(path_, "test '" + id + "' is open already");
    if (!finite_numbers(t.req))
      fail(path_, "test '" + id + "' has a number that is not finite");
    superseded.push_back(r ? r->seq : 0);
    defs.push_back(definition_of(t));
  }
  auto* db = db_.get();
  std::vector<int64_t> seqs;
  seqs.reserve(tests.size());
  begin();
  try {
    stmt retire, ins;
    prepare(path_, db,
            "UPDATE journal_tests SET state = 'retired' WHERE seq = ?", retire,
            "cannot write");
    prepare(path_, db,
            "INSERT INTO journal_tests (test_id, definition, state, run_id, "
            "owner) VALUES (?, ?, 'open', ?, ?)",
            ins, "cannot write");
    if (new_run) {
      stmt r;
      prepare(path_, db,
              "INSERT INTO journal_runs (run_id, owner, label, submitted_at) "
              "VALUES (?, ?, ?, ?)",
              r, "cannot write");
      bind_text(r.st, 1, run.run_id);
      bind_text(r.st, 2, run.owner);
      bind_text(r.st, 3, run.label);
      sqlite3_bind_double(r.st, 4, run.submitted_at);
      if (sqlite3_step(r.st) != SQLITE_DONE)
        fail_db(path_, db, "cannot write");
    }
    for (size_t i = 0; i < tests.size(); ++i) {
      auto& id = tests[i]->req.test_id;
      if (superseded[i] != 0) {
        sqlite3_reset(retire.st);
        sqlite3_bind_int64(retire.st, 1, superseded[i]);
        if (sqlite3_step(retire.st) != SQLITE_DONE)
          fail_db(path_, db, "cannot write");
      }
      sqlite3_reset(ins.st);
      bind_text(ins.st, 1, id);
      // A blob: commands may hold any bytes, NUL included.
      sqlite3_bind_blob(ins.st, 2, defs[i].data(),
                        static_cast<int>(defs[i].size()), SQLITE_TRANSIENT);
      if (run.run_id.empty())
        sqlite3_bind_null(ins.st, 3);
      else
        bind_text(ins.st, 3, run.run_id);
      bind_text(ins.st, 4, run.owner);
      if (sqlite3_step(ins.st) != SQLITE_DONE)
        fail_db(path_, db, "cannot write");
      seqs.push_back(sqlite3_last_insert_rowid(db));
    }
    commit();
  } catch (...) {
    rollback();
    throw;
  }
  // Only what is on disk is mirrored in memory.
  for (size_t i = 0; i < tests.size(); ++i) {
    journal_record r;
    r.seq = seqs[i];
    r.definition = std::move(defs[i]);
    r.owner = run.owner;
    r.run_id = run.run_id;
    live_[live_.try_emplace(tests[i]->req.test_id).first] = std::move(r);
    ++open_;
  }
  if (new_run)
    run_owners_[run.run_id] = run.owner;
}

std::string submission_journal::run_owner(const std::string& run_id) const {
  auto k = run_owners_.find(run_id);
  return k == run_owners_.end() ? std::string{} : k->second;
}

std::vector<journal_run_summary>
submission_journal::runs(const std::string& owner) const {
  auto* db = db_.get();
  stmt q;
  prepare(path_, db,
          "SELECT r.run_id, r.owner, r.label, r.submitted_at, count(t.seq), "
          "coalesce(sum(t.state = 'open'), 0), "
          "coalesce(sum(t.state != 'open' AND t.status = 'completed'), 0), "
          "coalesce(sum(t.state != 'open' AND t.status = 'failed'), 0), "
          "coalesce(sum(t.state != 'open' AND t.status = 'failed' AND "
          "t.timed_out = 1), 0), "
          "coalesce(sum(t.state != 'open' AND t.status = 'cancelled'), 0) "
          "FROM journal_runs r LEFT JOIN journal_tests t ON t.run_id = "
          "r.run_id WHERE ?1 = '' OR r.owner = ?1 GROUP BY r.run_id ORDER BY "
          "r.submitted_at, r.rowid",
          q, "cannot read table journal_runs");
  bind_text(q.st, 1, owner);
  std::vector<journal_run_summary> out;
  int rc;
  while ((rc = sqlite3_step(q.st)) == SQLITE_ROW) {
    journal_run_summary s;
    s.run.run_id = column_text(q.st, 0);
    s.run.owner = column_text(q.st, 1);
    s.run.label = column_text(q.st, 2);
    s.run.submitted_at = sqlite3_column_double(q.st, 3);
    s.tests = static_cast<uint64_t>(sqlite3_column_int64(q.st, 4));
    s.open = static_cast<uint64_t>(sqlite3_column_int64(q.st, 5));
    s.completed = static_cast<uint64_t>(sqlite3_column_int64(q.st, 6));
    s.failed = static_cast<uint64_t>(sqlite3_column_int64(q.st, 7));
    s.timed_out = static_cast<uint64_t>(sqlite3_column_int64(q.st, 8));
    s.cancelled = static_cast<uint64_t>(sqlite3_column_int64(q.st, 9));
    out.push_back(std::move(s));
  }
  if (rc != SQLITE_DONE)
    fail_db(path_, db, "cannot read table journal_runs");
  return out;
}

std::vector<journal_run_test>
submission_journal::run_tests(const std::string& run_id) const {
  auto* db = db_.get();
  stmt q;
  prepare(path_, db,
          (std::string{"SELECT test_id, state, "} + outcome_columns
           + " FROM journal_tests WHERE run_id = ? ORDER BY seq")
            .c_str(),
          q, "cannot read table journal_tests");
  bind_text(q.st, 1, run_id);
  std::vector<journal_run_test> out;
  int rc;
  while ((rc = sqlite3_step(q.st)) == SQLITE_ROW) {
    journal_run_test t;
    auto& o = t.outcome;
    o.test_id = column_text(q.st, 0);
    t.ended = column_text(q.st, 1) != "open";
    if (t.ended)
      read_outcome(q.st, 2, o);
    out.push_back(std::move(t));
  }
  if (rc != SQLITE_DONE)
    fail_db(path_, db, "cannot read table journal_tests");
  return out;
}

void submission_journal::record(
  const std::vector<journaled_outcome>& outcomes) {
  // (outcome, record) pairs, each record found once.
  std::vector<std::pair<const journaled_outcome*, uint32_t>> todo;
  std::unordered_set<std::string_view> seen;
  for (auto& o : outcomes) {
    auto ref = live_.find(o.test_id);
    // A test ends once: a second outcome in the batch is a stale report.
    if (ref != live_.npos && !live_[ref].ended && seen.insert(o.test_id).second)
      todo.emplace_back(&o, ref);
  }
  if (todo.empty())
    return;
  auto* db = db_.get();
  begin();
  try {
    stmt up;
    // "UPDATE ... SET state = 'ended', c1 = ?, c2 = ?, ... WHERE seq = ?"
    // from the one column list.
    std::string sql = "UPDATE journal_tests SET state = 'ended'";
    {
      std::string cols = outcome_columns;
      size_t at = 0;
      while (at < cols.size()) {
        auto end = cols.find(',', at);
        if (end == std::string::npos)
          end = cols.size();
        sql += ", " + cols.substr(at, end - at) + " = ?";
        at = end + 2;
      }
    }
    sql += " WHERE seq = ?";
    prepare(path_, db, sql.c_str(), up, "cannot write");
    for (auto& [o, ref] : todo) {
      sqlite3_reset(up.st);
      bind_outcome(up.st, 1, *o);
      sqlite3_bind_int64(up.st, outcome_column_count + 1, live_[ref].seq);
      if (sqlite3_step(up.st) != SQLITE_DONE)
        fail_db(path_, db, "cannot write");
    }
    commit();
  } catch (...) {
    rollback();
    throw;
  }
  for (auto& [o, ref] : todo) {
    auto& r = live_[ref];
    r.ended = true;
    r.outcome = *o;
    --open_;
  }
}

void submission_journal::retire(const std::vector<std::string>& test_ids) {
  std::vector<int64_t> seqs;
  std::vector<std::string> ids;
  std::unordered_set<std::string> seen;
  for (auto& id : test_ids) {
    auto r = find(id);
    if (r && r->ended && seen.insert(id).second) {
      seqs.push_back(r->seq);
      ids.push_back(id);
    }
  }
  if (seqs.empty())
    return;
  auto* db = db_.get();
  begin();
  try {
    stmt up;
    prepare(path_, db,
            "UPDATE journal_tests SET state = 'retired' WHERE seq = ?", up,
            "cannot write");
    for (auto seq : seqs) {
      sqlite3_reset(up.st);
      sqlite3_bind_int64(up.st, 1, seq);
      if (sqlite3_step(up.st) != SQLITE_DONE)
        fail_db(path_, db, "cannot write");
    }
    commit();
  } catch (...) {
    rollback();
    throw;
  }
  for (auto& id : ids)
    live_.erase(std::string_view{id});
}

bool submission_journal::note_node(const std::string& name) {
  if (nodes_.count(name) > 0)
    return false;
  auto* db = db_.get();
  stmt ins;
  prepare(path_, db, "INSERT OR IGNORE INTO journal_nodes (name) VALUES (?)",
          ins, "cannot write");
  bind_text(ins.st, 1, name);
  if (sqlite3_step(ins.st) != SQLITE_DONE)
    fail_db(path_, db, "cannot write");
  nodes_.insert(name);
  return true;
}

} // namespace alb
