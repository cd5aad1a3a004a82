#include "runtime/output.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <sstream>
#include <stdexcept>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

namespace alb {

namespace {

std::string parent_of(const std::string& path) {
  auto pos = path.find_last_of('/');
  if (pos == std::string::npos)
    return ".";
  if (pos == 0)
    return "/";
  return path.substr(0, pos);
}

} // namespace

std::string check_output_path(const std::string& path) {
  if (path.empty())
    return "output path is empty";
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode))
      return "output path '" + path + "' is a directory";
    if (::access(path.c_str(), W_OK) != 0)
      return "output path '" + path
             + "' is not writable: " + std::strerror(errno);
  }
  auto dir = parent_of(path);
  if (::stat(dir.c_str(), &st) != 0)
    return "cannot write '" + path + "': directory '" + dir
           + "' does not exist";
  if (!S_ISDIR(st.st_mode))
    return "cannot write '" + path + "': '" + dir + "' is not a directory";
  if (::access(dir.c_str(), W_OK) != 0)
    return "cannot write '" + path + "': directory '" + dir
           + "' is not writable";
  return {};
}

void write_file_atomic(const std::string& path, const std::string& text) {
  auto tmp = path + ".tmp." + std::to_string(::getpid());
  auto fail = [&](const char* what) {
    auto err = std::string{std::strerror(errno)};
    ::unlink(tmp.c_str());
    throw std::runtime_error("cannot write '" + path + "': " + what + ": "
                             + err);
  };
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    fail("open");
  size_t off = 0;
  while (off < text.size()) {
    auto n = ::write(fd, text.data() + off, text.size() - off);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      ::close(fd);
      fail("write");
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    ::close(fd);
    fail("fsync");
  }
  if (::close(fd) != 0)
    fail("close");
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    fail("rename");
}

std::string format_summary(const nlohmann::json& doc) {
  std::ostringstream out;
  auto& m = doc.at("metrics");
  auto num = [&](const char* key) { return m.value(key, 0.0); };
  char line[256];
  std::snprintf(line, sizeof(line),
                "tests: %.0f submitted, %.0f completed, %.0f failed, %.0f "
                "pending (success rate %.1f%%)\n",
                num("total_tests"), num("completed_tests"), num("failed_tests"),
                num("pending_tests"), num("success_rate"));
  out << line;
  std::snprintf(line, sizeof(line),
                "latency (submit to start): avg %.4f s, p50 %.4f s, p95 "
                "%.4f s, p99 %.4f s, max %.4f s\n",
                num("avg_latency"), num("p50_latency"), num("p95_latency"),
                num("p99_latency"), num("max_latency"));
  out << line;
  std::snprintf(line, sizeof(line),
                "throughput: avg %.1f tests/s, peak %.1f tests/s; makespan "
                "%.2f s\n",
                num("avg_throughput"), num("peak_throughput"), num("makespan"));
  out << line;
  std::snprintf(line, sizeof(line),
                "workers: %.0f at the end; assignments per worker stddev "
                "%.2f, range %.0f; utilization %.1f%%\n",
                num("final_worker_count"), num("worker_assignment_stddev"),
                num("worker_assignment_range"),
                100 * num("worker_utilization"));
  out << line;
  std::snprintf(line, sizeof(line),
                "retried %.0f, requeued %.0f, migrated %.0f, stolen %.0f; "
                "avg scheduling attempts %.2f; peak reservation: memory "
                "%.0f%%, accelerators %.0f%%\n",
                num("retried_tests"), num("requeued_tests"),
                num("migrated_tests"), num("stolen_tests"),
                num("avg_scheduling_attempts"),
                100 * num("max_memory_reservation"),
                100 * num("max_accelerator_reservation"));
  out << line;
  return out.str();
}

} // namespace alb
