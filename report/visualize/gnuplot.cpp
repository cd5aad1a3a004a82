#include "report/visualize/gnuplot.hpp"

#include <cstdlib>

#include <sys/stat.h>
#include <unistd.h>

#include "runtime/process.hpp"

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
  // One process class for every child alb starts: gnuplot too is a
  // `process` (its own group, killed with alb, reaped by its owner).
  spawn_options o;
  o.argv = {program, script};
  o.cwd = dir.string();
  auto r = run_to_end(std::move(o));
  if (!r.error.empty())
    return {-1, "cannot start " + program + ": " + r.error};
  return {r.exit_code(), r.output};
}

} // namespace alb::report::viz
