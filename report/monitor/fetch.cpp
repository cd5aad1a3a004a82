#include "report/monitor/fetch.hpp"

#include "report/monitor/text.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <memory>
#include <stdexcept>

namespace alb::report {

using detail::interval_text;
using detail::lower;

metrics_url parse_metrics_url(std::string_view url) {
  auto bad = [&](const std::string& why) {
    return std::invalid_argument("URL '" + std::string{url} + "' " + why);
  };
  if (url.empty())
    throw std::invalid_argument("URL is empty");
  for (unsigned char c : url)
    if (c <= ' ' || c == 0x7f)
      throw bad("contains spaces or control characters");
  metrics_url result;
  result.text = std::string{url};
  auto rest = url;
  if (auto sep = rest.find("://"); sep != rest.npos) {
    auto scheme = lower(std::string{rest.substr(0, sep)});
    if (scheme != "http" && scheme != "https")
      throw bad("has scheme '" + scheme
                + "'; only http:// and https:// are supported");
    result.scheme = scheme;
    result.port = scheme == "https" ? 443 : 80;
    rest.remove_prefix(sep + 3);
  }
  auto slash = rest.find_first_of("/?#");
  auto authority = rest.substr(0, slash);
  auto path = slash == rest.npos ? std::string_view{} : rest.substr(slash);
  if (auto hash = path.find('#'); hash != path.npos)
    path = path.substr(0, hash);
  if (authority.find('@') != authority.npos)
    throw bad("has user information, which is not supported");
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == authority.npos)
      throw bad("has an unclosed '[' in the host");
    result.host = std::string{authority.substr(1, close - 1)};
    auto after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':')
        throw bad("has junk after the host");
      port_text = after.substr(1);
      if (port_text.empty())
        throw bad("has an empty port");
    }
  } else {
    auto colon = authority.find(':');
    if (colon != authority.npos
        && authority.find(':', colon + 1) != authority.npos)
      throw bad("has an IPv6 host without brackets");
    result.host = std::string{authority.substr(0, colon)};
    if (colon != authority.npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty())
        throw bad("has an empty port");
    }
  }
  if (result.host.empty())
    throw bad("has no host");
  if (!port_text.empty()) {
    unsigned long port = 0;
    auto [ptr, ec] = std::from_chars(port_text.data(),
                                     port_text.data() + port_text.size(), port);
    if (ec != std::errc{} || ptr != port_text.data() + port_text.size()
        || port < 1 || port > 65535)
      throw bad("has a bad port '" + std::string{port_text}
                + "' (expected 1-65535)");
    result.port = static_cast<uint16_t>(port);
  }
  result.path = path.empty() || path == "/" ? "/metrics" : std::string{path};
  if (result.path.front() == '?')
    result.path.insert(0, "/metrics");
  return result;
}

std::string metrics_url::full() const {
  auto h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return scheme + "://" + h + ":" + std::to_string(port) + path;
}

namespace {

// Far above any real scrape; stops a runaway target from eating memory.
constexpr std::size_t max_response = 64 << 20;

/// What the callbacks fill in during one transfer.
struct transfer {
  std::string body;
  std::string status_line;
  bool too_large = false;
};

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto& t = *static_cast<transfer*>(user);
  if (t.body.size() + size * n > max_response) {
    t.too_large = true;
    return 0; // makes curl stop with CURLE_WRITE_ERROR
  }
  t.body.append(data, size * n);
  return size * n;
}

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto& t = *static_cast<transfer*>(user);
  std::string_view line{data, size * n};
  // The status line of the (last) response, for "HTTP 404 Not Found".
  if (line.compare(0, 5, "HTTP/") == 0) {
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r'))
      line.remove_suffix(1);
    t.status_line = std::string{line};
  }
  return size * n;
}

// curl_global_init is not thread-safe: do it once, before the first handle.
void global_init() {
  static const bool done = [] {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return true;
  }();
  (void)done;
}

struct easy_deleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};

std::string curl_error_text(CURLcode rc, CURL* c, const metrics_url& url,
                            const char* message, double timeout) {
  long os_errno = 0;
  curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &os_errno);
  std::string what = *message ? message : curl_easy_strerror(rc);
  switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
      return "cannot resolve host '" + url.host + "'";
    case CURLE_COULDNT_CONNECT:
      if (os_errno != 0)
        return detail::errno_text(static_cast<int>(os_errno));
      return lower(what);
    case CURLE_OPERATION_TIMEDOUT:
      return "timed out after " + interval_text(timeout) + " s";
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
      return "TLS: " + lower(what);
    case CURLE_GOT_NOTHING:
      // A TLS server drops a plain-text request without a word.
      return url.scheme == "http" ? "empty response (is it an https:// server?)"
                                  : "empty response";
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return "not an HTTP response";
    default:
      return lower(what);
  }
}

} // namespace

fetch_result fetch_metrics(const metrics_url& url, const fetch_options& opts) {
  fetch_result result;
  global_init();
  std::unique_ptr<CURL, easy_deleter> handle{curl_easy_init()};
  if (!handle) {
    result.error = "cannot initialize libcurl";
    return result;
  }
  auto* c = handle.get();
  transfer t;
  char detail[CURL_ERROR_SIZE] = "";
  auto full = url.full();
  auto timeout_ms
    = static_cast<long>(std::max(opts.timeout_seconds, 0.001) * 1000);
  curl_easy_setopt(c, CURLOPT_URL, full.c_str());
  // Only what the URL says: no redirects to other schemes or hosts.
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  // No SIGALRM for DNS timeouts: the monitor owns its signals.
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "alb-monitor");
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, detail);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  // Prometheus servers may answer gzip; curl decodes what it offers.
  curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
  if (!opts.ca_file.empty())
    curl_easy_setopt(c, CURLOPT_CAINFO, opts.ca_file.c_str());
  auto rc = curl_easy_perform(c);
  if (t.too_large) {
    result.error = "response larger than 64 MiB";
    return result;
  }
  if (rc != CURLE_OK) {
    result.error = curl_error_text(rc, c, url, detail, opts.timeout_seconds);
    return result;
  }
  long code = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  if (code != 200) {
    auto sp = t.status_line.find(' ');
    result.error = "HTTP "
                   + (sp == std::string::npos ? std::to_string(code)
                                              : t.status_line.substr(sp + 1));
    return result;
  }
  result.body = std::move(t.body);
  result.ok = true;
  return result;
}

std::string unreachable_message(const std::string& url,
                                const std::string& error, double interval,
                                bool unicode) {
  return "cannot reach " + url + ": " + error + (unicode ? " \u2014" : " -")
         + " retrying every " + interval_text(interval) + " s";
}

} // namespace alb::report
