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
  uint16_t relay_port = 0;
  clock_type::time_point accepted;
  bool handshaken = false;
  bool seen_record = false;
  /// TLS: bytes the coordinator sent after the client's first encrypted
  /// record (see `through`).
  uint64_t answered = 0;
  bool dead = false;
  /// Why the guard ends it ("" = an ordinary end, not logged).
  std::string why;
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

} // namespace

struct basp_guard::impl {
  basp_guard_options opts;
  int listener = -1;
  int wake[2] = {-1, -1};
  uint16_t bound = 0;
  std::thread thread;
  std::list<connection> conns;
  mutable std::mutex peers_mtx;
  std::map<uint16_t, std::string> peers;
  /// Refusal lines: each host and reason once per 10 s, at most
  /// `refusals_shown` lines; the rest counted in one summary line.
  log_limiter limiter{10, 10.0, "connections refused"};
  clock_type::time_point epoch = clock_type::now();

  double seconds_since_start(clock_type::time_point now) const {
    return std::chrono::duration<double>(now - epoch).count();
  }

  void roll(clock_type::time_point now) {
    limiter.roll(seconds_since_start(now), opts.on_refused);
  }

  void refused(const std::string& peer, const std::string& why) {
    if (!opts.on_refused)
      return;
    auto host = peer.substr(0, peer.rfind(':'));
    if (limiter.admit(host + '\n' + why, seconds_since_start(clock_type::now()),
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

  void close_conn(connection& c) {
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
    if (conns.size() >= opts.max_connections) {
      ::close(fd);
      refused(addr_string(ss), "more than "
                                 + std::to_string(opts.max_connections)
                                 + " connections at once");
      return;
    }
    int up = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(opts.upstream_port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (up < 0
        || ::connect(up, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0) {
      if (up >= 0)
        ::close(up);
      ::close(fd);
      return;
    }
    set_nonblocking(up);
    int one = 1;
    ::setsockopt(up, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    sockaddr_in local{};
    socklen_t llen = sizeof(local);
    ::getsockname(up, reinterpret_cast<sockaddr*>(&local), &llen);
    connection c;
    c.client = fd;
    c.upstream = up;
    c.peer = addr_string(ss);
    c.relay_port = ntohs(local.sin_port);
    c.accepted = clock_type::now();
    {
      std::lock_guard<std::mutex> g{peers_mtx};
      peers[c.relay_port] = c.peer;
    }
    conns.push_back(std::move(c));
  }

  // Checks the client's bytes frame by frame; false = disconnect.
  bool filter(connection& c, const char* data, size_t n) {
    if (opts.tls)
      return filter_tls(c, data, n);
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
      auto k = std::min(n, header_size - c.header.size());
      c.header.append(data, k);
      data += k;
      n -= k;
      if (c.header.size() < header_size)
        return true;
      auto op = static_cast<uint8_t>(c.header[0]);
      uint32_t len_be;
      std::memcpy(&len_be, c.header.data() + 4, 4);
      auto len = ntohl(len_be);
      if (op > last_operation || len > opts.max_payload) {
        c.why = op > last_operation
                  ? "sent a malformed frame (unknown operation "
                      + std::to_string(op) + ")"
                  : "sent a frame announcing " + std::to_string(len)
                      + " bytes (limit " + std::to_string(opts.max_payload)
                      + ")";
        return false;
      }
      if (!c.handshaken) {
        if (op != client_handshake) {
          c.why = "did not start with a CAF handshake";
          return false;
        }
        c.handshaken = true;
      }
      c.to_upstream += c.header;
      c.header.clear();
      c.payload_left = len;
    }
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
        return false;
      }
      if (!c.seen_record && type != tls_handshake) {
        c.why = "did not start with a TLS handshake";
        return false;
      }
      c.seen_record = true;
      if (type == tls_application_data)
        c.handshaken = true;
      c.to_upstream += c.header;
      c.header.clear();
      c.payload_left = len;
    }
    return true;
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
        short ce = c.to_upstream.size() < buffer_limit ? POLLIN : 0;
        if (!c.to_client.empty())
          ce |= POLLOUT;
        short ue = c.to_client.size() < buffer_limit ? POLLIN : 0;
        if (!c.to_upstream.empty())
          ue |= POLLOUT;
        fds.push_back({c.client, ce, 0});
        fds.push_back({c.upstream, ue, 0});
        owners.push_back(&c);
      }
      ::poll(fds.data(), fds.size(), 500);
      if (fds[0].revents & POLLIN)
        return;
      auto now = clock_type::now();
      for (size_t i = 0; i < owners.size(); ++i) {
        auto& c = *owners[i];
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
        if (!c.dead && !drain(c.upstream, c.to_upstream))
          c.dead = true;
        if (!c.dead && !drain(c.client, c.to_client))
          c.dead = true;
        if (!c.dead && !c.handshaken
            && std::chrono::duration<double>(now - c.accepted).count()
                 > opts.handshake_timeout) {
          c.dead = true;
          char secs[32];
          std::snprintf(secs, sizeof(secs), "%g", opts.handshake_timeout);
          c.why = std::string{"no handshake within "} + secs + " s";
        }
      }
      roll(now);
      for (auto i = conns.begin(); i != conns.end();) {
        if (i->dead) {
          // Hand over what the middleman already said (e.g. an error).
          drain(i->client, i->to_client);
          if (!i->why.empty())
            refused(i->peer, i->why);
          close_conn(*i);
          i = conns.erase(i);
        } else {
          ++i;
        }
      }
      if (fds[1].revents & POLLIN)
        for (int k = 0; k < 64; ++k) {
          auto before = conns.size();
          accept_one();
          if (conns.size() == before)
            break;
        }
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
  if (d.listener < 0 || ::bind(d.listener, res->ai_addr, res->ai_addrlen) != 0
      || ::listen(d.listener, 256) != 0) {
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
  if (::pipe2(d.wake, O_CLOEXEC) != 0) {
    ::close(d.listener);
    throw std::runtime_error{"pipe failed"};
  }
  d.thread = std::thread{[&d] { d.run(); }};
}

basp_guard::~basp_guard() {
  auto& d = *impl_;
  char x = 1;
  [[maybe_unused]] auto r = ::write(d.wake[1], &x, 1);
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

std::string basp_guard::peer_of(uint16_t relay_port) const {
  std::lock_guard<std::mutex> g{impl_->peers_mtx};
  auto i = impl_->peers.find(relay_port);
  return i == impl_->peers.end() ? std::string{} : i->second;
}

} // namespace alb
