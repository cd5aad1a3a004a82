#include "report/visualize/gnuplot.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace alb::report::viz {

std::optional<std::string> find_program(const std::string& name) {
  auto usable = [](const std::string& p) {
    struct stat st;
    return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode)
           && ::access(p.c_str(), X_OK) == 0;
  };
  if (name.empty())
    return std::nullopt;
  if (name.find('/') != std::string::npos) {
    if (!usable(name))
      return std::nullopt;
    std::error_code ec;
    auto abs = fs::absolute(name, ec);
    return ec ? name : abs.string();
  }
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  std::size_t pos = 0;
  while (pos <= dirs.size()) {
    auto end = dirs.find(':', pos);
    if (end == std::string::npos)
      end = dirs.size();
    std::string dir = dirs.substr(pos, end - pos);
    if (dir.empty())
      dir = ".";
    std::string cand = dir + "/" + name;
    if (usable(cand)) {
      std::error_code ec;
      auto abs = fs::absolute(cand, ec);
      return ec ? cand : abs.string();
    }
    pos = end + 1;
  }
  return std::nullopt;
}

std::pair<int, std::string> run_gnuplot(const std::string& program,
                                        const fs::path& dir,
                                        const std::string& script) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    return {-1, std::string("pipe: ") + std::strerror(errno)};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
  posix_spawn_file_actions_addchdir_np(&fa, dir.c_str());
  std::string arg0 = program, arg1 = script;
  char* argv[] = {arg0.data(), arg1.data(), nullptr};
  pid_t pid = 0;
  int err = ::posix_spawn(&pid, program.c_str(), &fa, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(fds[1]);
  if (err != 0) {
    ::close(fds[0]);
    return {-1, "cannot start " + program + ": " + std::strerror(err)};
  }
  std::string out;
  char buf[4096];
  for (;;) {
    auto n = ::read(fds[0], buf, sizeof(buf));
    if (n > 0)
      out.append(buf, static_cast<std::size_t>(n));
    else if (n == 0 || errno != EINTR)
      break;
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    // retry
  }
  int rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return {rc, out};
}

} // namespace alb::report::viz
