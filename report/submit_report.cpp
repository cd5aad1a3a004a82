#include "report/submit_report.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>

#include <nlohmann/json.hpp>

#include "runtime/log_format.hpp"

namespace alb::report {

namespace {

std::string one_line(std::string s, size_t max) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  if (s.size() > max)
    s = s.substr(0, max - 3) + "...";
  return s;
}

} // namespace

void print_outcome_table(std::FILE* out,
                         const std::vector<cluster_outcome>& rows) {
  size_t w_id = 4, w_worker = 6;
  for (auto& r : rows) {
    w_id = std::max(w_id, r.test_id.size());
    w_worker = std::max(w_worker, r.worker_id.size());
  }
  w_id = std::min<size_t>(w_id, 40);
  w_worker = std::min<size_t>(w_worker, 30);
  std::fprintf(out, "%-*s  %-9s  %5s  %8s  %3s  %-*s  %s\n",
               static_cast<int>(w_id), "test", "status", "exit", "seconds",
               "try", static_cast<int>(w_worker), "worker", "error");
  for (auto& r : rows) {
    auto status = r.timed_out ? std::string{"timeout"} : r.status;
    std::fprintf(out, "%-*s  %-9s  %5d  %8.2f  %3d  %-*s  %s\n",
                 static_cast<int>(w_id), one_line(r.test_id, 40).c_str(),
                 status.c_str(), r.exit_code, r.exec_seconds, r.attempts,
                 static_cast<int>(w_worker), one_line(r.worker_id, 30).c_str(),
                 one_line(r.error, 60).c_str());
  }
}

std::string signal_name(int sig) {
  if (auto* abbrev = ::sigabbrev_np(sig))
    return std::string{"SIG"} + abbrev;
  return "signal " + std::to_string(sig);
}

namespace {

nlohmann::json time_or_null(double unix_seconds) {
  auto s = iso8601_local(unix_seconds);
  return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s);
}

// The exit status of a command that exited by itself (a signal or the
// timeout leaves none).
bool has_exit_code(const cluster_outcome& r) {
  return r.signal == 0 && !r.timed_out;
}

} // namespace

nlohmann::json outcomes_json(const std::vector<cluster_outcome>& rows) {
  auto arr = nlohmann::json::array();
  for (auto& r : rows) {
    nlohmann::json x = {{"test_id", r.test_id},
                        {"status", r.status},
                        {"success", r.success},
                        {"timed_out", r.timed_out},
                        {"exit_code", nullptr},
                        {"signal", nullptr},
                        {"signal_name", nullptr},
                        {"execution_time", r.exec_seconds},
                        {"duration_seconds", r.exec_seconds},
                        {"attempts", r.attempts},
                        {"migrated", r.migrated},
                        {"stolen", r.stolen},
                        {"speculated", r.speculated},
                        {"speculation_won", r.speculation_won},
                        {"worker_id", r.worker_id},
                        {"node", r.node},
                        {"submitted_at", time_or_null(r.submitted_at)},
                        {"started_at", time_or_null(r.started_at)},
                        {"ended_at", time_or_null(r.ended_at)},
                        {"queued_seconds", nullptr},
                        {"error", r.error},
                        // stdout then stderr: what this key held before
                        // they were kept apart.
                        {"output_tail", r.output_tail + r.stderr_tail},
                        {"stdout_tail", r.output_tail},
                        {"stderr_tail", r.stderr_tail}};
    if (has_exit_code(r))
      x["exit_code"] = r.exit_code;
    if (r.signal != 0) {
      x["signal"] = r.signal;
      x["signal_name"] = signal_name(r.signal);
    }
    if (r.submitted_at > 0 && r.started_at >= r.submitted_at)
      x["queued_seconds"] = r.started_at - r.submitted_at;
    arr.push_back(std::move(x));
  }
  return arr;
}

std::string finished_line(const cluster_outcome& o, size_t done, size_t total) {
  auto width = std::to_string(total).size();
  char head[64];
  std::snprintf(head, sizeof(head), "[%*zu/%zu] ", static_cast<int>(width),
                done, total);
  std::string line = head;
  auto word = o.timed_out ? std::string{"timeout"}
                          : (o.success ? std::string{"passed"} : o.status);
  line += word;
  line.append(word.size() < 9 ? 9 - word.size() : 1, ' ');
  line += one_line(o.test_id, 200);
  char secs[32];
  std::snprintf(secs, sizeof(secs), "  %.2f s", o.exec_seconds);
  line += secs;
  if (!o.node.empty())
    line += "  on " + o.node + " (" + o.worker_id + ")";
  else if (!o.worker_id.empty())
    line += "  on " + o.worker_id;
  if (o.attempts > 1)
    line += "  attempt " + std::to_string(o.attempts);
  if (!o.success) {
    if (o.signal != 0)
      line += "  " + signal_name(o.signal);
    else if (has_exit_code(o) && o.exit_code != 0)
      line += "  exit " + std::to_string(o.exit_code);
    if (!o.error.empty())
      line += ": " + one_line(o.error, 200);
  }
  return line;
}

std::string progress_line(const progress_counts& c, double elapsed) {
  char buf[200];
  auto ended = c.passed + c.failed;
  std::snprintf(buf, sizeof(buf),
                "[%7.1fs] %zu/%zu ended: %zu passed, %zu failed", elapsed,
                ended, c.total, c.passed, c.failed);
  std::string line = buf;
  if (c.running >= 0 && c.waiting >= 0) {
    line += "; " + std::to_string(c.running) + " running, "
            + std::to_string(c.waiting) + " waiting";
  } else {
    auto open = c.total > ended ? c.total - ended : 0;
    line += "; " + std::to_string(open) + " open";
  }
  if (!c.reasons.empty())
    line += " (" + one_line(c.reasons, 120) + ")";
  return line;
}

std::string summary_line(const submission_summary& s,
                         const std::vector<cluster_outcome>& rows) {
  char buf[160];
  std::snprintf(buf, sizeof(buf),
                "%zu tests: %zu passed, %zu failed, %zu without outcome "
                "(%.2f s)",
                s.tests, s.passed, rows.size() - s.passed, s.open,
                s.wall_seconds);
  return buf;
}

std::string moves_line(const std::vector<cluster_outcome>& rows) {
  long long migrated = 0, stolen = 0;
  for (auto& r : rows) {
    migrated += r.migrated;
    stolen += r.stolen;
  }
  if (migrated + stolen == 0)
    return {};
  char buf[160];
  std::snprintf(buf, sizeof(buf),
                "rebalanced before they started: %lld migrated, %lld stolen",
                migrated, stolen);
  return buf;
}

nlohmann::json outcome_stats(const std::vector<cluster_outcome>& rows,
                             size_t open) {
  std::map<std::string, int64_t> by_status{
    {"completed", 0}, {"failed", 0}, {"cancelled", 0}};
  int64_t timed_out = 0, migrated = 0, stolen = 0, moved = 0, again = 0;
  int64_t speculated = 0, won = 0;
  for (auto& r : rows) {
    speculated += r.speculated ? 1 : 0;
    won += r.speculation_won ? 1 : 0;
    ++by_status[r.status];
    timed_out += r.timed_out ? 1 : 0;
    migrated += r.migrated;
    stolen += r.stolen;
    moved += r.migrated + r.stolen > 0 ? 1 : 0;
    again += r.attempts > 1 ? 1 : 0;
  }
  nlohmann::json j = by_status;
  j["timed_out"] = timed_out;
  j["without_outcome"] = open;
  j["migrated"] = migrated;
  j["stolen"] = stolen;
  j["tests_moved"] = moved;
  j["tests_placed_again"] = again;
  j["speculated_tests"] = speculated;
  j["speculation_wins"] = won;
  return j;
}

nlohmann::json result_document(const submission_summary& s,
                               const std::vector<cluster_outcome>& rows) {
  return {{"coordinator", s.coordinator},
          {"tests", s.tests},
          {"passed", s.passed},
          {"wall_seconds", s.wall_seconds},
          {"stats", outcome_stats(rows, s.open)},
          {"results", outcomes_json(rows)}};
}

} // namespace alb::report
