#include "metrics/server.hpp"

#include "metrics/registry.hpp"
#include "metrics/status_page.hpp"

#include <prometheus/exposer.h>

#include <CivetServer.h>
#include <civetweb.h>

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <map>
#include <mutex>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

namespace alb::metrics {

namespace {

bool is_ipv6(const std::string& address) {
  in6_addr addr6{};
  return inet_pton(AF_INET6, address.c_str(), &addr6) == 1;
}

/// Returns the errno of binding `address`:`port` the way civetweb does
/// (SO_REUSEADDR), or 0 if it binds. Used only to explain a failure.
int probe_bind(const std::string& address, std::uint16_t port) {
  const bool v6 = is_ipv6(address);
  int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return errno;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  int rc = 0;
  if (v6) {
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons(port);
    inet_pton(AF_INET6, address.c_str(), &sa.sin6_addr);
    rc = bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  } else {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    if (inet_pton(AF_INET, address.c_str(), &sa.sin_addr) != 1) {
      close(fd);
      return EINVAL;
    }
    rc = bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  }
  int err = rc == 0 ? 0 : errno;
  close(fd);
  return err;
}

// -- the status page ----------------------------------------------------------

// civetweb calls one plain function for every request before any handler
// (`begin_request`), with no pointer of ours: the servers of this process
// are found by the port the request came in on.
struct page_routes {
  std::mutex mtx;
  std::map<int, std::shared_ptr<const status_source>> by_port;
};

page_routes& routes() {
  static page_routes r;
  return r;
}

void send(mg_connection* conn, int code, const char* reason, const char* type,
          const std::string& body, const char* extra = "") {
  // The page's data are test names and output tails that submitters chose:
  // no inline script may run, and nothing is fetched from elsewhere.
  mg_printf(conn,
            "HTTP/1.1 %d %s\r\n"
            "Content-Type: %s\r\n"
            "Content-Length: %zu\r\n"
            "Cache-Control: no-store\r\n"
            "X-Content-Type-Options: nosniff\r\n"
            "Content-Security-Policy: default-src 'none'; script-src 'self'; "
            "style-src 'unsafe-inline'; connect-src 'self'; img-src 'self'\r\n"
            "%s"
            "Connection: close\r\n\r\n",
            code, reason, type, body.size(), extra);
  mg_write(conn, body.data(), body.size());
}

// Returns nonzero when the request was answered here; 0 lets the exposer's
// own handler answer /metrics.
int begin_request(mg_connection* conn) {
  auto* ri = mg_get_request_info(conn);
  std::string uri = ri && ri->local_uri ? ri->local_uri : "";
  if (uri == "/metrics")
    return 0;
  std::shared_ptr<const status_source> src;
  {
    auto& r = routes();
    std::lock_guard<std::mutex> g{r.mtx};
    auto i = r.by_port.find(ri ? ri->server_port : -1);
    if (i != r.by_port.end())
      src = i->second;
  }
  std::string method = ri && ri->request_method ? ri->request_method : "";
  bool page = uri == "/" || uri == "/index.html" || uri == "/status.js"
              || uri == "/api/status";
  if (!src || !*src || !page) {
    send(conn, 404, "Not Found", "text/plain; charset=utf-8",
         "not found: " + uri + " (this server has /metrics"
           + std::string{src && *src ? ", / and /api/status" : ""} + ")\n");
    return 404;
  }
  if (method != "GET" && method != "HEAD") {
    send(conn, 405, "Method Not Allowed", "text/plain; charset=utf-8",
         "only GET is served here\n", "Allow: GET, HEAD\r\n");
    return 405;
  }
  if (uri == "/status.js") {
    send(conn, 200, "OK", "text/javascript; charset=utf-8", status_page_js());
    return 200;
  }
  if (uri != "/api/status") {
    send(conn, 200, "OK", "text/html; charset=utf-8", status_page_html());
    return 200;
  }
  try {
    send(conn, 200, "OK", "application/json", (*src)());
    return 200;
  } catch (const std::exception& e) {
    send(conn, 503, "Service Unavailable", "text/plain; charset=utf-8",
         std::string{"status unavailable: "} + e.what() + "\n");
    return 503;
  }
}

} // namespace

bool is_loopback(const std::string& address) {
  if (address == "localhost")
    return true;
  in_addr addr4{};
  if (inet_pton(AF_INET, address.c_str(), &addr4) == 1)
    return (ntohl(addr4.s_addr) >> 24) == 127;
  in6_addr addr6{};
  if (inet_pton(AF_INET6, address.c_str(), &addr6) == 1)
    return IN6_IS_ADDR_LOOPBACK(&addr6);
  return false;
}

struct server::impl {
  std::string address;
  std::uint16_t port = 0;
  std::unique_ptr<prometheus::Exposer> exposer;
  bool routed = false;
};

server::server(registry& reg, std::string bind_address, std::uint16_t port,
               bool allow_remote)
  : server(reg.collectable(), std::move(bind_address), port, allow_remote) {
  // nop
}

server::server(std::shared_ptr<prometheus::Collectable> what,
               std::string bind_address, std::uint16_t port, bool allow_remote)
  : impl_(std::make_unique<impl>()) {
  // civetweb takes numeric addresses only.
  if (bind_address == "localhost")
    bind_address = "127.0.0.1";
  const bool v6 = is_ipv6(bind_address);
  in_addr addr4{};
  if (!v6 && inet_pton(AF_INET, bind_address.c_str(), &addr4) != 1)
    throw server_error("metrics bind address '" + bind_address
                       + "' is not a numeric IPv4/IPv6 address or localhost");
  if (!is_loopback(bind_address)) {
    if (!allow_remote)
      throw server_error("metrics bind address " + bind_address
                         + " is not loopback; pass --metrics-allow-remote "
                           "(allow_remote) to serve /metrics to other hosts");
  }
  const std::string listen = (v6 ? "[" + bind_address + "]" : bind_address)
                             + ":" + std::to_string(port);
  try {
    // civetweb gives each connection a thread of its pool until the request
    // is read: with the default 2 threads and no read deadline, two clients
    // that send half a request (or nothing) stall every scrape. Enough
    // threads for a few slow clients, and a deadline that drops the rest.
    // civetweb copies the callbacks when it starts.
    CivetCallbacks callbacks{};
    callbacks.begin_request = begin_request;
    impl_->exposer = std::make_unique<prometheus::Exposer>(
      std::vector<std::string>{"listening_ports", listen, "num_threads",
                               std::to_string(server_threads),
                               "request_timeout_ms",
                               std::to_string(request_timeout_ms)},
      &callbacks);
  } catch (const std::exception&) {
    // civetweb only says it failed; find out why to name the cause.
    int err = probe_bind(bind_address, port);
    if (err == EADDRINUSE)
      throw server_error("metrics port " + std::to_string(port) + " on "
                         + bind_address + " is in use");
    throw server_error("cannot serve metrics on port " + std::to_string(port)
                       + " on " + bind_address + ": "
                       + (err != 0 ? std::strerror(err) : "bind failed"));
  }
  auto ports = impl_->exposer->GetListeningPorts();
  impl_->port = ports.empty() ? port : static_cast<std::uint16_t>(ports[0]);
  if (!is_loopback(bind_address))
    std::clog << "alb: metrics: /metrics listens on non-local address "
              << bind_address << " port " << impl_->port
              << "; it is reachable from other hosts\n";
  impl_->address = std::move(bind_address);
  impl_->exposer->RegisterCollectable(what);
}

server::~server() {
  set_status_source(nullptr);
}

void server::set_status_source(status_source source) {
  auto& r = routes();
  std::lock_guard<std::mutex> g{r.mtx};
  if (source) {
    r.by_port[impl_->port]
      = std::make_shared<const status_source>(std::move(source));
    impl_->routed = true;
  } else if (impl_->routed) {
    r.by_port.erase(impl_->port);
    impl_->routed = false;
  }
}

std::string server::page_url() const {
  auto u = url();
  return u.substr(0, u.size() - std::string{"metrics"}.size());
}

std::uint16_t server::port() const {
  return impl_->port;
}

const std::string& server::bind_address() const {
  return impl_->address;
}

std::string server::url() const {
  const bool v6 = is_ipv6(impl_->address);
  return "http://" + (v6 ? "[" + impl_->address + "]" : impl_->address) + ":"
         + std::to_string(impl_->port) + "/metrics";
}

} // namespace alb::metrics
