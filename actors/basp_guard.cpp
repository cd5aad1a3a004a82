#include "actors/basp_guard.hpp"

#include "runtime/log_limiter.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <list>
#include <map>
#include <mutex>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <set>
#include <stdexcept>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace alb {

namespace {

using clock_type = std::chrono::steady_clock;

// Serialized BASP header of CAF 0.17: operation, two padding bytes, flags,
// payload length (big-endian), operation data, source and destination
// actor ids.
constexpr size_t header_size = 32;
constexpr uint8_t client_handshake = 0x01;
constexpr uint8_t last_operation = 0x06;
// TLS record header: content type, protocol version (3.x), length
// (big-endian). Records carry at most 2^14 bytes plus 2048 of expansion.
constexpr size_t tls_header_size = 5;
constexpr uint8_t tls_change_cipher_spec = 20;
constexpr uint8_t tls_handshake = 22;
constexpr uint8_t tls_application_data = 23;
constexpr uint32_t tls_max_record = (1u << 14) + 2048;
// Bytes buffered per direction before the guard stops reading that side.
constexpr size_t buffer_limit = 1u << 20;

struct connection {
  int client = -1;
  int upstream = -1;
  std::string peer;
  /// The peer's address without the port (the caps count by it).
  std::string host;
  uint16_t relay_port = 0;
  clock_type::time_point accepted;
  /// When its relay connection to CAF was opened (TLS: it may wait).
  clock_type::time_point relayed;
  bool handshaken = false;
  /// The coordinator accepted its join or hello (basp_guard::admit).
  bool admitted = false;
  /// A frame header that must wait for admission is held in `header`:
  /// nothing more is read from the client until then.
  bool held = false;
  /// The payload of its handshake frame is still coming.
  bool in_first_frame = false;
  bool seen_record = false;
  /// TLS: bytes the coordinator sent after the client's first encrypted
  /// record (see `through`).
  uint64_t answered = 0;
  bool dead = false;
  /// Counted in `pending` and `pending_by_host`.
  bool counted = false;
  /// Why the guard ends it ("" = an ordinary end, not logged).
  std::string why;
  /// Metric label of `why` (when not empty).
  guard_refusal kind = guard_refusal::closed_early;
  /// Client bytes read but not checked yet (behind a held header).
  std::string inbox;
  std::string header;
  uint64_t payload_left = 0;
  std::string to_upstream;
  std::string to_client;
};

void set_nonblocking(int fd) {
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
}

std::string addr_string(const sockaddr_storage& ss) {
  char host[INET6_ADDRSTRLEN] = {0};
  uint16_t port = 0;
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
    port = ntohs(a->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    ::inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
    port = ntohs(a->sin6_port);
  }
  return std::string{host} + ":" + std::to_string(port);
}

// Writes what it can of `buf` to `fd`; false on a broken connection.
bool drain(int fd, std::string& buf) {
  while (!buf.empty()) {
    auto n = ::send(fd, buf.data(), buf.size(), MSG_NOSIGNAL);
    if (n < 0)
      return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    buf.erase(0, static_cast<size_t>(n));
  }
  return true;
}

std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", s);
  return buf;
}

} // namespace

const char* label(guard_refusal r) {
  switch (r) {
    case guard_refusal::handshake_timeout:
      return "handshake_timeout";
    case guard_refusal::address_cap:
      return "address_cap";
    case guard_refusal::total_cap:
      return "total_cap";
    case guard_refusal::connection_cap:
      return "connection_cap";
    case guard_refusal::bad_frame:
      return "bad_frame";
    case guard_refusal::closed_early:
      return "closed_early";
  }
  return "closed_early";
}

struct basp_guard::impl {
  basp_guard_options opts;
  int listener = -1;
  int wake[2] = {-1, -1};
  uint16_t bound = 0;
  std::thread thread;
  std::list<connection> conns;
  mutable std::mutex peers_mtx;
  std::map<uint16_t, std::string> peers;
  /// Relay ports admitted by the coordinator, not yet applied (guarded by
  /// `peers_mtx`; the wake pipe says there are some).
  std::vector<uint16_t> admissions;
  /// Connections not admitted yet, by host, and in total.
  std::map<std::string, size_t> pending_by_host;
  size_t pending = 0;
  /// Refusal lines: each reason once per 10 s (naming the first peer), at
  /// most `refusals_shown` lines; the rest counted in one summary line.
  log_limiter limiter{10, 10.0, "connections refused"};
  clock_type::time_point epoch = clock_type::now();

  double seconds_since_start(clock_type::time_point now) const {
    return std::chrono::duration<double>(now - epoch).count();
  }

  void roll(clock_type::time_point now) {
    limiter.roll(seconds_since_start(now), opts.on_refused);
  }

  void refused(const std::string& peer, const std::string& why,
               guard_refusal kind) {
    if (opts.on_count)
      opts.on_count(kind);
    if (!opts.on_refused)
      return;
    // By reason, not by host: a flood from many addresses (or one reason
    // per address) must not hide the other reasons behind the cap.
    if (limiter.admit(why, seconds_since_start(clock_type::now()),
                      opts.on_refused))
      opts.on_refused("refused connection from " + peer + ": " + why);
  }

  // Whether `c` got through its handshake as far as logging is concerned.
  // TLS 1.3 disguises every encrypted record (the client's certificate
  // and Finished included) as application data, so the client's first one
  // does not mean the coordinator accepted it: it answers an accepted
  // client with session tickets and its BASP handshake (hundreds of
  // bytes), a refused one with a 24-byte alert.
  bool through(const connection& c) const {
    return c.handshaken && (!opts.tls || c.answered >= 64);
  }

  // Why connection `c`, not through its handshake yet, ended when its
  // client (or the coordinator) closed it.
  std::string early_close(const connection& c, bool by_client) const {
    if (!opts.tls)
      return by_client ? "closed before its handshake"
                       : "the coordinator refused its handshake";
    if (!c.seen_record)
      return by_client ? "closed before its TLS handshake"
                       : "the coordinator closed it before its TLS handshake";
    // TLS 1.3 encrypts the alert that says why: the side that closed first
    // is all the relay can tell.
    return std::string{"the TLS handshake failed (closed by "}
           + (by_client ? "the peer" : "the coordinator")
           + "): a certificate not signed by the cluster's CA, or a peer "
             "that does not trust the coordinator's";
  }

  void unpend(connection& c) {
    if (!c.counted)
      return;
    c.counted = false;
    --pending;
    auto i = pending_by_host.find(c.host);
    if (i != pending_by_host.end() && --i->second == 0)
      pending_by_host.erase(i);
  }

  // Makes room for a new pending connection from `host`: closes that
  // host's oldest pending connection when it holds its cap, else (total
  // cap) the oldest of the host holding the most. Oldest first because a
  // member's handshake takes milliseconds: what has waited longest is what
  // is most likely held open on purpose.
  void make_room(const std::string& host) {
    std::string victim_host;
    guard_refusal kind;
    std::string why;
    auto h = pending_by_host.find(host);
    if (h != pending_by_host.end()
        && h->second >= opts.max_pending_per_address) {
      victim_host = host;
      kind = guard_refusal::address_cap;
      why = "more than " + std::to_string(opts.max_pending_per_address)
            + " connections from one address in their handshake (its "
              "oldest is closed)";
    } else if (pending >= opts.max_pending) {
      size_t most = 0;
      for (auto& [k, n] : pending_by_host)
        if (n > most) {
          most = n;
          victim_host = k;
        }
      kind = guard_refusal::total_cap;
      why = "more than " + std::to_string(opts.max_pending)
            + " connections in their handshake (the oldest of the address "
              "holding the most is closed)";
    } else {
      return;
    }
    // Spares a connection whose protocol handshake is over (a member's,
    // about to join, whose admission may still be on its way) while there
    // is another to close.
    for (int pass = 0; pass < 2; ++pass)
      for (auto& c : conns)
        if (!c.dead && c.counted && c.host == victim_host
            && (pass == 1 || !protocol_done(c))) {
          c.dead = true;
          c.why = why;
          c.kind = kind;
          unpend(c);
          return;
        }
  }

  // Whether `c` got through CAF's handshake (plain: its whole handshake
  // frame; TLS: the coordinator accepted its certificate): what is left is
  // its join or hello.
  bool protocol_done(const connection& c) const {
    return opts.tls ? through(c) : c.handshaken && !c.in_first_frame;
  }

  void close_conn(connection& c) {
    unpend(c);
    if (c.client >= 0)
      ::close(c.client);
    if (c.upstream >= 0)
      ::close(c.upstream);
    c.client = c.upstream = -1;
    std::lock_guard<std::mutex> g{peers_mtx};
    peers.erase(c.relay_port);
  }

  void accept_one() {
    sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int fd = ::accept4(listener, reinterpret_cast<sockaddr*>(&ss), &len,
                       SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0)
      return;
    auto peer = addr_string(ss);
    auto host = peer.substr(0, peer.rfind(':'));
    make_room(host);
    // Connections closed to make room still hold their sockets until the
    // sweep: count only the live ones.
    size_t live = 0;
    for (auto& c : conns)
      live += c.dead ? 0 : 1;
    if (live >= opts.max_connections) {
      ::close(fd);
      refused(peer,
              "more than " + std::to_string(opts.max_connections)
                + " connections at once",
              guard_refusal::connection_cap);
      return;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    connection c;
    c.client = fd;
    c.peer = peer;
    c.host = host;
    c.accepted = clock_type::now();
    c.counted = true;
    ++pending;
    ++pending_by_host[host];
    conns.push_back(std::move(c));
    // Over TLS it waits for a place in CAF's handshakes (connect_waiting,
    // after the accept queue is drained: newest first).
    if (!opts.tls)
      if (!connect_upstream(conns.back())) {
        unpend(conns.back());
        ::close(fd);
        conns.pop_back();
      }
  }

  // Connections relayed to CAF that are not admitted yet.
  size_t upstream_pending() const {
    size_t n = 0;
    for (auto& c : conns)
      n += c.upstream >= 0 && !c.dead && !c.admitted ? 1 : 0;
    return n;
  }

  // Opens the relay connection of `c` to the middleman; false = failed.
  bool connect_upstream(connection& c) {
    int up = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(opts.upstream_port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (up < 0
        || ::connect(up, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0) {
      if (up >= 0)
        ::close(up);
      return false;
    }
    set_nonblocking(up);
    int one = 1;
    ::setsockopt(up, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    sockaddr_in local{};
    socklen_t llen = sizeof(local);
    ::getsockname(up, reinterpret_cast<sockaddr*>(&local), &llen);
    c.upstream = up;
    c.relay_port = ntohs(local.sin_port);
    c.relayed = clock_type::now();
    std::lock_guard<std::mutex> g{peers_mtx};
    peers[c.relay_port] = c.peer;
    return true;
  }

  // Over TLS, CAF's middleman spends milliseconds of its one thread on
  // each connection it accepts (a new OpenSSL context, the handshake): a
  // flood of ClientHellos would keep it busy for seconds and members out.
  // So at most `tls_handshakes` unadmitted connections are relayed at a
  // time; the others wait here (their bytes buffered), newest first:
  // sockets held open are old, a member's connection is new.
  void connect_waiting() {
    if (!opts.tls)
      return;
    auto busy = upstream_pending();
    size_t waiting = 0;
    for (auto& c : conns)
      waiting += !c.dead && c.upstream < 0 ? 1 : 0;
    // A member's TLS handshake and join take a fraction of a second: a
    // place held for a quarter of the deadline while others wait goes to
    // the next (so held sockets keep no one out for long).
    auto hold = std::chrono::duration<double>(opts.handshake_timeout / 4);
    auto now = clock_type::now();
    for (auto& c : conns) {
      if (busy < opts.tls_handshakes || waiting == 0)
        break;
      if (c.dead || c.upstream < 0 || c.admitted || protocol_done(c)
          || now - c.relayed < hold)
        continue;
      c.dead = true;
      c.why = "no TLS handshake within " + seconds_text(hold.count())
              + " s while others waited";
      c.kind = guard_refusal::handshake_timeout;
      unpend(c);
      --busy;
    }
    for (auto i = conns.rbegin();
         i != conns.rend() && busy < opts.tls_handshakes; ++i) {
      if (i->dead || i->upstream >= 0)
        continue;
      if (connect_upstream(*i)) {
        ++busy;
      } else {
        i->dead = true;
        i->why = "the coordinator's middleman did not accept a connection";
        i->kind = guard_refusal::closed_early;
      }
    }
  }

  // Checks the client's bytes frame by frame; false = disconnect.
  bool filter(connection& c, const char* data, size_t n) {
    if (opts.tls)
      return filter_tls(c, data, n);
    c.inbox.append(data, n);
    return pump(c);
  }

  // Relays what `c.inbox` holds up to a frame that must wait for
  // admission; false = disconnect.
  bool pump(connection& c) {
    size_t pos = 0;
    bool ok = true;
    while (ok) {
      auto n = c.inbox.size() - pos;
      if (c.payload_left > 0) {
        if (n == 0)
          break;
        auto k = static_cast<size_t>(
          std::min<uint64_t>(c.payload_left, static_cast<uint64_t>(n)));
        c.to_upstream.append(c.inbox, pos, k);
        c.payload_left -= k;
        pos += k;
        if (c.payload_left == 0)
          c.in_first_frame = false;
        continue;
      }
      if (c.header.size() < header_size) {
        auto k = std::min(n, header_size - c.header.size());
        c.header.append(c.inbox, pos, k);
        pos += k;
        if (c.header.size() < header_size)
          break;
      }
      ok = frame_header(c);
      if (!ok || c.held)
        break;
    }
    c.inbox.erase(0, pos);
    return ok;
  }

  // Checks the complete frame header in `c.header` and relays it (or holds
  // it until admission); false = disconnect.
  bool frame_header(connection& c) {
    auto op = static_cast<uint8_t>(c.header[0]);
    uint32_t len_be;
    std::memcpy(&len_be, c.header.data() + 4, 4);
    auto len = ntohl(len_be);
    if (op > last_operation || len > opts.max_payload) {
      c.why = op > last_operation
                ? "sent a malformed frame (unknown operation "
                    + std::to_string(op) + ")"
                : "sent a frame announcing " + std::to_string(len)
                    + " bytes (limit " + std::to_string(opts.max_payload) + ")";
      c.kind = guard_refusal::bad_frame;
      return false;
    }
    if (!c.handshaken) {
      if (op != client_handshake) {
        c.why = "did not start with a CAF handshake";
        c.kind = guard_refusal::bad_frame;
        return false;
      }
      c.handshaken = true;
      c.in_first_frame = len > 0;
      if (!opts.await_admission)
        unpend(c);
    }
    // CAF reserves the announced size at once: before admission only small
    // frames go through; a larger one (a member's big submission, sent
    // before the guard heard of its hello) waits for admit().
    c.held = opts.await_admission && !c.admitted && len > opts.pending_payload;
    if (c.held)
      return true;
    c.to_upstream += c.header;
    c.header.clear();
    c.payload_left = len;
    return true;
  }

  // Checks the client's bytes TLS record by TLS record; false = disconnect.
  // "Handshaken" here means the first application data record arrived: the
  // client got through the TLS handshake far enough to encrypt.
  bool filter_tls(connection& c, const char* data, size_t n) {
    while (n > 0) {
      if (c.payload_left > 0) {
        auto k = static_cast<size_t>(
          std::min<uint64_t>(c.payload_left, static_cast<uint64_t>(n)));
        c.to_upstream.append(data, k);
        c.payload_left -= k;
        data += k;
        n -= k;
        continue;
      }
      auto k = std::min(n, tls_header_size - c.header.size());
      c.header.append(data, k);
      data += k;
      n -= k;
      if (c.header.size() < tls_header_size)
        return true;
      auto type = static_cast<uint8_t>(c.header[0]);
      auto major = static_cast<uint8_t>(c.header[1]);
      auto len = (static_cast<uint32_t>(static_cast<uint8_t>(c.header[3])) << 8)
                 | static_cast<uint8_t>(c.header[4]);
      if (type < tls_change_cipher_spec || type > tls_application_data
          || major != 3 || len > tls_max_record) {
        c.why = c.seen_record ? "sent a malformed TLS record"
                              : "did not speak TLS (a node or client "
                                "without --tls-cert?)";
        c.kind = guard_refusal::bad_frame;
        return false;
      }
      if (!c.seen_record && type != tls_handshake) {
        c.why = "did not start with a TLS handshake";
        c.kind = guard_refusal::bad_frame;
        return false;
      }
      c.seen_record = true;
      if (type == tls_application_data && !c.handshaken) {
        c.handshaken = true;
        if (!opts.await_admission)
          unpend(c);
      }
      c.to_upstream += c.header;
      c.header.clear();
      c.payload_left = len;
    }
    return true;
  }

  // Reads the wake pipe: applies the admissions queued by admit(); true =
  // stop.
  bool woken() {
    char buf[256];
    bool stop = false;
    for (;;) {
      auto n = ::read(wake[0], buf, sizeof(buf));
      if (n <= 0)
        break;
      for (ssize_t i = 0; i < n; ++i)
        stop = stop || buf[i] == 's';
    }
    std::vector<uint16_t> ports;
    {
      std::lock_guard<std::mutex> g{peers_mtx};
      ports.swap(admissions);
    }
    for (auto port : ports)
      for (auto& c : conns)
        if (c.relay_port == port && c.handshaken && !c.dead && !c.admitted) {
          c.admitted = true;
          unpend(c);
          if (c.held) {
            c.held = false;
            if (!pump(c))
              c.dead = true;
          }
        }
    return stop;
  }

  void run() {
    std::vector<pollfd> fds;
    std::vector<connection*> owners;
    char buf[65536];
    for (;;) {
      fds.clear();
      owners.clear();
      fds.push_back({wake[0], POLLIN, 0});
      fds.push_back({listener, POLLIN, 0});
      for (auto& c : conns) {
        // A held frame waits for admission unread.
        short ce = !c.held && c.to_upstream.size() < buffer_limit ? POLLIN : 0;
        if (!c.to_client.empty())
          ce |= POLLOUT;
        short ue = c.to_client.size() < buffer_limit ? POLLIN : 0;
        if (!c.to_upstream.empty())
          ue |= POLLOUT;
        fds.push_back({c.client, ce, 0});
        // poll() skips a negative descriptor: one still waiting for CAF.
        fds.push_back({c.upstream, c.upstream >= 0 ? ue : short{0}, 0});
        owners.push_back(&c);
      }
      ::poll(fds.data(), fds.size(), 500);
      if ((fds[0].revents & POLLIN) && woken())
        return;
      auto now = clock_type::now();
      for (size_t i = 0; i < owners.size(); ++i) {
        auto& c = *owners[i];
        // Closed to make room: keeps the reason it was given.
        if (c.dead)
          continue;
        auto& cf = fds[2 + 2 * i];
        auto& uf = fds[3 + 2 * i];
        if (cf.revents & (POLLIN | POLLHUP | POLLERR)) {
          auto n = ::recv(c.client, buf, sizeof(buf), 0);
          if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            c.dead = true;
            if (!through(c))
              c.why = early_close(c, true);
          } else if (n > 0 && !filter(c, buf, static_cast<size_t>(n))) {
            c.dead = true;
          }
        }
        if (uf.revents & (POLLIN | POLLHUP | POLLERR)) {
          auto n = ::recv(c.upstream, buf, sizeof(buf), 0);
          if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            c.dead = true;
            if (!through(c) && c.why.empty())
              c.why = early_close(c, false);
          } else if (n > 0) {
            if (c.handshaken)
              c.answered += static_cast<uint64_t>(n);
            c.to_client.append(buf, static_cast<size_t>(n));
          }
        }
        if (!c.dead && c.upstream >= 0 && !drain(c.upstream, c.to_upstream))
          c.dead = true;
        if (!c.dead && !drain(c.client, c.to_client))
          c.dead = true;
        bool waiting = opts.await_admission ? !c.admitted
                                            : !c.handshaken || c.in_first_frame;
        if (!c.dead && waiting
            && std::chrono::duration<double>(now - c.accepted).count()
                 > opts.handshake_timeout) {
          c.dead = true;
          auto secs = seconds_text(opts.handshake_timeout);
          c.why = !c.handshaken || c.in_first_frame
                    ? (opts.tls ? "no TLS handshake within " + secs + " s"
                                : "no handshake within " + secs + " s")
                    : "no join or hello with the token within " + secs
                        + " s of connecting";
          c.kind = guard_refusal::handshake_timeout;
        }
      }
      roll(now);
      for (auto i = conns.begin(); i != conns.end();) {
        if (i->dead) {
          // Hand over what the middleman already said (e.g. an error).
          drain(i->client, i->to_client);
          if (!i->why.empty())
            refused(i->peer, i->why, i->kind);
          close_conn(*i);
          i = conns.erase(i);
        } else {
          ++i;
        }
      }
      // The whole accept queue at once: a member's connection queued behind
      // a flood, in a full queue, has its SYN dropped by the kernel and
      // retried only after 1 s, then 3 s.
      if (fds[1].revents & POLLIN)
        for (int k = 0; k < 4096; ++k) {
          auto before = conns.size();
          accept_one();
          if (conns.size() == before)
            break;
        }
      connect_waiting();
    }
  }
};

basp_guard::basp_guard(basp_guard_options opts) : impl_(new impl) {
  auto& d = *impl_;
  d.opts = std::move(opts);
  d.limiter = log_limiter{d.opts.refusals_shown, 10.0, "connections refused"};
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
  addrinfo* res = nullptr;
  auto port_str = std::to_string(d.opts.port);
  if (::getaddrinfo(d.opts.host.c_str(), port_str.c_str(), &hints, &res) != 0
      || !res)
    throw std::runtime_error{"cannot resolve '" + d.opts.host + "'"};
  d.listener = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(d.listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (d.listener < 0
      || ::bind(d.listener, res->ai_addr, res->ai_addrlen) != 0
      // A deep queue for the same reason (see run()).
      || ::listen(d.listener, SOMAXCONN) != 0) {
    auto err = std::string{std::strerror(errno)};
    ::freeaddrinfo(res);
    if (d.listener >= 0)
      ::close(d.listener);
    throw std::runtime_error{"cannot listen on " + d.opts.host + ":" + port_str
                             + ": " + err};
  }
  ::freeaddrinfo(res);
  set_nonblocking(d.listener);
  sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  ::getsockname(d.listener, reinterpret_cast<sockaddr*>(&ss), &len);
  d.bound = ss.ss_family == AF_INET6
              ? ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port)
              : ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  if (::pipe2(d.wake, O_CLOEXEC | O_NONBLOCK) != 0) {
    ::close(d.listener);
    throw std::runtime_error{"pipe failed"};
  }
  d.thread = std::thread{[&d] { d.run(); }};
}

basp_guard::~basp_guard() {
  auto& d = *impl_;
  char x = 's';
  // A full pipe (admissions not read yet) already wakes the thread; the
  // stop byte is retried until it fits.
  while (::write(d.wake[1], &x, 1) != 1 && errno == EAGAIN)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  d.thread.join();
  for (auto& c : d.conns)
    d.close_conn(c);
  ::close(d.listener);
  ::close(d.wake[0]);
  ::close(d.wake[1]);
}

uint16_t basp_guard::port() const {
  return impl_->bound;
}

void basp_guard::admit(uint16_t relay_port) {
  auto& d = *impl_;
  {
    std::lock_guard<std::mutex> g{d.peers_mtx};
    d.admissions.push_back(relay_port);
  }
  char x = 'a';
  // A full pipe means the thread is woken already.
  [[maybe_unused]] auto r = ::write(d.wake[1], &x, 1);
}

std::string basp_guard::peer_of(uint16_t relay_port) const {
  std::lock_guard<std::mutex> g{impl_->peers_mtx};
  auto i = impl_->peers.find(relay_port);
  return i == impl_->peers.end() ? std::string{} : i->second;
}

} // namespace alb
