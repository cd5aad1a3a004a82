#include "runtime/output.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
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

// "/dev/fd/3" -> 3; -1 when `path` is not `prefix` + a number.
int fd_number(const std::string& path, const std::string& prefix) {
  if (path.compare(0, prefix.size(), prefix) != 0
      || path.size() == prefix.size())
    return -1;
  int n = 0;
  for (size_t i = prefix.size(); i < path.size(); ++i) {
    if (path[i] < '0' || path[i] > '9' || n > 100000)
      return -1;
    n = n * 10 + (path[i] - '0');
  }
  return n;
}

void write_all(int fd, const std::string& text, const std::string& path) {
  size_t off = 0;
  while (off < text.size()) {
    auto n = ::write(fd, text.data() + off, text.size() - off);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      throw std::runtime_error("cannot write '" + path
                               + "': write: " + std::strerror(errno));
    }
    off += static_cast<size_t>(n);
  }
}

} // namespace

output_kind classify_output(const std::string& path, int* fd,
                            std::string* target) {
  // The names a shell gives its own descriptors: write to the descriptor, as
  // `> /dev/stdout` does, instead of opening (or replacing) the name.
  int n = -1;
  if (path == "-" || path == "/dev/stdout")
    n = STDOUT_FILENO;
  else if (path == "/dev/stderr")
    n = STDERR_FILENO;
  else if ((n = fd_number(path, "/dev/fd/")) < 0)
    n = fd_number(path, "/proc/self/fd/");
  if (n >= 0) {
    if (fd)
      *fd = n;
    return output_kind::descriptor;
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
    return output_kind::in_place;
  struct stat lst {};
  if (::lstat(path.c_str(), &lst) == 0 && S_ISLNK(lst.st_mode)) {
    // A link to a regular file: replace the file it points to, keep the
    // link. A dangling link: create its target in place through it.
    char* real = ::realpath(path.c_str(), nullptr);
    if (!real)
      return output_kind::in_place;
    if (target)
      *target = real;
    std::free(real);
    return output_kind::atomic_file;
  }
  if (target)
    *target = path;
  return output_kind::atomic_file;
}

std::string check_output_path(const std::string& path) {
  if (path.empty())
    return "output path is empty";
  int fd = -1;
  std::string target;
  auto kind = classify_output(path, &fd, &target);
  if (kind == output_kind::descriptor) {
    if (::fcntl(fd, F_GETFL) < 0)
      return "cannot write '" + path + "': descriptor " + std::to_string(fd)
             + " is not open";
    return {};
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode))
      return "output path '" + path + "' is a directory";
    if (::access(path.c_str(), W_OK) != 0)
      return "output path '" + path
             + "' is not writable: " + std::strerror(errno);
  }
  if (kind == output_kind::in_place)
    return {};
  auto dir = parent_of(target.empty() ? path : target);
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

void write_result(const std::string& path, const std::string& text) {
  int fd = -1;
  std::string target;
  switch (classify_output(path, &fd, &target)) {
    case output_kind::descriptor:
      // Whatever stdio buffered for this descriptor goes first.
      std::fflush(nullptr);
      write_all(fd, text, path);
      return;
    case output_kind::in_place: {
      // No O_TRUNC: a FIFO or device has nothing to truncate, and a
      // dangling link's new target is created empty.
      int out = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
      if (out < 0)
        throw std::runtime_error("cannot write '" + path
                                 + "': open: " + std::strerror(errno));
      try {
        write_all(out, text, path);
      } catch (...) {
        ::close(out);
        throw;
      }
      if (::close(out) != 0)
        throw std::runtime_error("cannot write '" + path
                                 + "': close: " + std::strerror(errno));
      return;
    }
    case output_kind::atomic_file:
      write_file_atomic(target, text);
      return;
  }
}

std::string format_summary(const nlohmann::json& doc) {
  std::ostringstream out;
  auto& m = doc.at("metrics");
  auto num = [&](const char* key) { return m.value(key, 0.0); };
  char line[256];
  if (doc.value("interrupted", false))
    out << "INTERRUPTED: partial result, submissions stopped at "
        << m.value("total_tests", uint64_t{0}) << " tests\n";
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
