#include "report/submit_report.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

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

nlohmann::json outcomes_json(const std::vector<cluster_outcome>& rows) {
  auto arr = nlohmann::json::array();
  for (auto& r : rows)
    arr.push_back({{"test_id", r.test_id},
                   {"status", r.status},
                   {"success", r.success},
                   {"timed_out", r.timed_out},
                   {"exit_code", r.exit_code},
                   {"execution_time", r.exec_seconds},
                   {"attempts", r.attempts},
                   {"worker_id", r.worker_id},
                   {"error", r.error},
                   {"output_tail", r.output_tail}});
  return arr;
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

nlohmann::json result_document(const submission_summary& s,
                               const std::vector<cluster_outcome>& rows) {
  return {{"coordinator", s.coordinator},
          {"tests", s.tests},
          {"passed", s.passed},
          {"wall_seconds", s.wall_seconds},
          {"results", outcomes_json(rows)}};
}

} // namespace alb::report
