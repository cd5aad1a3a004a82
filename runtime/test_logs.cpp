#include "runtime/test_logs.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace alb {

namespace {

const char* const suffix[2] = {".stdout", ".stderr"};

bool ends_with(const std::string& s, const char* tail) {
  auto n = std::strlen(tail);
  return s.size() > n && s.compare(s.size() - n, n, tail) == 0;
}

} // namespace

std::shared_ptr<test_log_store> test_log_store::open(const test_log_options& o,
                                                     std::string& error) {
  std::shared_ptr<test_log_store> st{new test_log_store(o)};
  if (o.dir.empty()) {
    auto* tmp = std::getenv("TMPDIR");
    std::string tmpl
      = std::string{tmp && *tmp ? tmp : "/tmp"} + "/alb-logs-XXXXXX";
    if (!::mkdtemp(tmpl.data())) {
      error
        = "cannot create a log directory: " + std::string{std::strerror(errno)};
      return nullptr;
    }
    st->dir_ = tmpl;
    st->temporary_ = true;
    return st;
  }
  st->dir_ = o.dir;
  while (st->dir_.size() > 1 && st->dir_.back() == '/')
    st->dir_.pop_back();
  // Parents too, as `mkdir -p` (only the last one is private).
  for (size_t i = 1; i <= st->dir_.size(); ++i) {
    if (i == st->dir_.size() || st->dir_[i] == '/') {
      auto part = st->dir_.substr(0, i);
      if (::mkdir(part.c_str(), i == st->dir_.size() ? 0700 : 0755) != 0
          && errno != EEXIST) {
        error = part + ": " + std::strerror(errno);
        return nullptr;
      }
    }
  }
  struct stat sb;
  if (::stat(st->dir_.c_str(), &sb) != 0 || !S_ISDIR(sb.st_mode)) {
    error = st->dir_ + ": not a directory";
    return nullptr;
  }
  if (::access(st->dir_.c_str(), W_OK | X_OK) != 0) {
    error = st->dir_ + ": " + std::strerror(errno);
    return nullptr;
  }
  // What an earlier run left counts too, oldest first.
  struct found {
    uint64_t bytes = 0;
    int64_t mtime = 0;
  };
  std::map<std::string, found> stems;
  if (auto* d = ::opendir(st->dir_.c_str())) {
    while (auto* e = ::readdir(d)) {
      std::string name = e->d_name;
      for (auto* suf : suffix) {
        if (!ends_with(name, suf))
          continue;
        struct stat fs;
        if (::stat((st->dir_ + "/" + name).c_str(), &fs) != 0
            || !S_ISREG(fs.st_mode))
          continue;
        auto& f = stems[name.substr(0, name.size() - std::strlen(suf))];
        f.bytes += static_cast<uint64_t>(fs.st_size);
        f.mtime = std::max<int64_t>(f.mtime, fs.st_mtime);
      }
    }
    ::closedir(d);
  }
  std::vector<std::pair<int64_t, std::string>> order;
  for (auto& [stem, f] : stems)
    order.emplace_back(f.mtime, stem);
  std::sort(order.begin(), order.end());
  std::lock_guard<std::mutex> g{st->mtx_};
  for (auto& [mtime, stem] : order) {
    auto gen = ++st->gen_;
    st->closed_.emplace_back(stem, gen);
    st->sizes_[stem] = {stems[stem].bytes, gen};
    st->total_ += stems[stem].bytes;
  }
  st->prune_locked();
  return st;
}

test_log_store::~test_log_store() {
  if (!temporary_)
    return;
  if (auto* d = ::opendir(dir_.c_str())) {
    while (auto* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name != "." && name != "..")
        ::unlink((dir_ + "/" + name).c_str());
    }
    ::closedir(d);
  }
  ::rmdir(dir_.c_str());
}

std::string test_log_store::stem(const std::string& test_id) {
  // Readable part: safe characters only, bounded; the hash of the whole id
  // keeps different ids apart ("a/b" and "a_b").
  std::string out;
  for (char c : test_id) {
    if (out.size() >= 80)
      break;
    bool safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
                || (c >= '0' && c <= '9') || c == '_' || c == '-'
                || (c == '.' && !out.empty());
    out.push_back(safe ? c : '_');
  }
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : test_id) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char hex[17];
  for (int i = 15; i >= 0; --i) {
    hex[i] = "0123456789abcdef"[h & 15];
    h >>= 4;
  }
  hex[16] = '\0';
  return out + "-" + hex;
}

std::string test_log_store::path(const std::string& test_id,
                                 stream_id s) const {
  return dir_ + "/" + stem(test_id) + suffix[s];
}

bool test_log_store::create(const std::string& test_id, int fds[2],
                            std::string& error) {
  auto st = stem(test_id);
  {
    std::lock_guard<std::mutex> g{mtx_};
    // Written again (a retry, a rerun): the old logs are replaced.
    if (auto i = sizes_.find(st); i != sizes_.end()) {
      total_ -= i->second.first;
      sizes_.erase(i);
    }
    ++open_[st];
  }
  for (int s = 0; s < 2; ++s) {
    auto p = dir_ + "/" + st + suffix[s];
    fds[s] = ::open(p.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fds[s] < 0) {
      error = p + ": " + std::strerror(errno);
      if (s == 1)
        ::close(fds[0]);
      fds[0] = fds[1] = -1;
      std::lock_guard<std::mutex> g{mtx_};
      if (--open_[st] == 0)
        open_.erase(st);
      return false;
    }
  }
  return true;
}

void test_log_store::closed(const std::string& test_id, uint64_t bytes) {
  auto st = stem(test_id);
  std::lock_guard<std::mutex> g{mtx_};
  if (auto i = open_.find(st); i != open_.end() && --i->second == 0)
    open_.erase(i);
  if (auto i = sizes_.find(st); i != sizes_.end())
    total_ -= i->second.first;
  auto gen = ++gen_;
  sizes_[st] = {bytes, gen};
  total_ += bytes;
  closed_.emplace_back(st, gen);
  prune_locked();
}

void test_log_store::prune_locked() {
  while (
    !closed_.empty()
    && (sizes_.size() > opts_.max_tests || total_ > opts_.max_total_bytes)) {
    auto [st, gen] = closed_.front();
    closed_.pop_front();
    auto i = sizes_.find(st);
    if (i == sizes_.end() || i->second.second != gen)
      continue; // stale: written again since
    total_ -= i->second.first;
    sizes_.erase(i);
    // Being written again right now: its new files are not this entry's.
    if (open_.count(st) != 0)
      continue;
    for (auto* suf : suffix)
      ::unlink((dir_ + "/" + st + suf).c_str());
  }
}

log_piece test_log_store::read(const std::string& test_id, stream_id s,
                               uint64_t offset, size_t max) const {
  log_piece out;
  auto st = stem(test_id);
  {
    std::lock_guard<std::mutex> g{mtx_};
    out.writing = open_.count(st) != 0;
    // Only logs this store wrote or counted: a file someone else put in
    // the directory is not served.
    if (!out.writing && sizes_.count(st) == 0)
      return out;
  }
  int fd = ::open((dir_ + "/" + st + suffix[s]).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return out;
  struct stat sb;
  if (::fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode)) {
    out.found = true;
    out.size = static_cast<uint64_t>(sb.st_size);
    if (offset < out.size) {
      auto len
        = static_cast<size_t>(std::min<uint64_t>(out.size - offset, max));
      out.data.resize(len);
      size_t got = 0;
      while (got < len) {
        auto n = ::pread(fd, out.data.data() + got, len - got,
                         static_cast<off_t>(offset + got));
        if (n <= 0)
          break;
        got += static_cast<size_t>(n);
      }
      out.data.resize(got);
    }
  }
  ::close(fd);
  return out;
}

bool test_log_store::writing(const std::string& test_id) const {
  std::lock_guard<std::mutex> g{mtx_};
  return open_.count(stem(test_id)) != 0;
}

size_t test_log_store::kept() const {
  std::lock_guard<std::mutex> g{mtx_};
  return sizes_.size();
}

uint64_t test_log_store::kept_bytes() const {
  std::lock_guard<std::mutex> g{mtx_};
  return total_;
}

} // namespace alb
