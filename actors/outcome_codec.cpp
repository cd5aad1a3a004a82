#include "actors/outcome_codec.hpp"

#include <cstdint>
#include <cstring>

namespace alb {

namespace {

// The first byte: a batch of another layout is refused, not misread.
constexpr unsigned char layout_version = 2;

// Bytes of one outcome without its strings' bytes: 7 string lengths (4
// each), 4 flags, 5 integers (4 each) and 4 doubles (8 each).
constexpr size_t fixed_bytes = 7 * 4 + 4 + 5 * 4 + 4 * 8;

struct writer {
  std::string& out;

  template<class T>
  void raw(T x) {
    char buf[sizeof(T)];
    std::memcpy(buf, &x, sizeof(T));
    out.append(buf, sizeof(T));
  }

  void str(const std::string& s) {
    raw(static_cast<uint32_t>(s.size()));
    out.append(s);
  }
};

struct reader {
  const std::string& in;
  size_t pos = 0;
  bool ok = true;

  template<class T>
  T raw() {
    T x{};
    if (!ok || in.size() - pos < sizeof(T)) {
      ok = false;
      return x;
    }
    std::memcpy(&x, in.data() + pos, sizeof(T));
    pos += sizeof(T);
    return x;
  }

  void str(std::string& s) {
    auto n = raw<uint32_t>();
    if (!ok || in.size() - pos < n) {
      ok = false;
      return;
    }
    s.assign(in.data() + pos, n);
    pos += n;
  }

  bool flag() {
    auto b = raw<uint8_t>();
    if (b > 1)
      ok = false;
    return b == 1;
  }
};

} // namespace

void pack_outcomes(const std::vector<cluster_outcome>& items,
                   std::string& out) {
  writer w{out};
  size_t bytes = 1 + 4;
  for (auto& c : items)
    bytes += fixed_bytes + c.test_id.size() + c.status.size()
             + c.worker_id.size() + c.error.size() + c.output_tail.size()
             + c.node.size() + c.stderr_tail.size();
  out.reserve(out.size() + bytes);
  w.raw(layout_version);
  w.raw(static_cast<uint32_t>(items.size()));
  for (auto& c : items) {
    w.str(c.test_id);
    w.str(c.status);
    w.raw(static_cast<uint8_t>(c.success ? 1 : 0));
    w.raw(static_cast<uint8_t>(c.timed_out ? 1 : 0));
    w.raw(c.exit_code);
    w.raw(c.signal);
    w.raw(c.exec_seconds);
    w.raw(c.attempts);
    w.raw(c.migrated);
    w.raw(c.stolen);
    w.str(c.worker_id);
    w.str(c.error);
    w.str(c.output_tail);
    w.str(c.node);
    w.raw(c.submitted_at);
    w.raw(c.started_at);
    w.raw(c.ended_at);
    w.str(c.stderr_tail);
    w.raw(static_cast<uint8_t>(c.speculated ? 1 : 0));
    w.raw(static_cast<uint8_t>(c.speculation_won ? 1 : 0));
  }
}

bool unpack_outcomes(const std::string& in,
                     std::vector<cluster_outcome>& items) {
  items.clear();
  reader r{in};
  if (r.raw<uint8_t>() != layout_version || !r.ok)
    return false;
  auto n = r.raw<uint32_t>();
  // Each outcome takes at least fixed_bytes: a count beyond what the rest
  // could hold is refused before anything is reserved.
  if (!r.ok || n > (in.size() - r.pos) / fixed_bytes)
    return false;
  items.resize(n);
  for (auto& c : items) {
    r.str(c.test_id);
    r.str(c.status);
    c.success = r.flag();
    c.timed_out = r.flag();
    c.exit_code = r.raw<int32_t>();
    c.signal = r.raw<int32_t>();
    c.exec_seconds = r.raw<double>();
    c.attempts = r.raw<int32_t>();
    c.migrated = r.raw<int32_t>();
    c.stolen = r.raw<int32_t>();
    r.str(c.worker_id);
    r.str(c.error);
    r.str(c.output_tail);
    r.str(c.node);
    c.submitted_at = r.raw<double>();
    c.started_at = r.raw<double>();
    c.ended_at = r.raw<double>();
    r.str(c.stderr_tail);
    c.speculated = r.flag();
    c.speculation_won = r.flag();
    if (!r.ok)
      break;
  }
  if (!r.ok || r.pos != in.size()) {
    items.clear();
    return false;
  }
  return true;
}

} // namespace alb
