#include "runtime/liveness.hpp"

#include <algorithm>

namespace alb {

void node_watch::heard(uint64_t node, double now) {
  auto [i, fresh] = last_.try_emplace(node, now);
  if (!fresh && now > i->second)
    i->second = now;
}

void node_watch::forget(uint64_t node) {
  last_.erase(node);
}

std::vector<uint64_t> node_watch::lost(double now, double timeout) {
  // O(nodes) per check: a check runs a few times per timeout, and a
  // cluster has tens to thousands of nodes, not millions.
  std::vector<std::pair<double, uint64_t>> out;
  for (auto& [node, at] : last_)
    if (now - at > timeout)
      out.emplace_back(at, node);
  std::sort(out.begin(), out.end());
  std::vector<uint64_t> ids;
  ids.reserve(out.size());
  for (auto& [at, node] : out) {
    last_.erase(node);
    ids.push_back(node);
  }
  return ids;
}

double node_watch::last_heard(uint64_t node) const {
  auto i = last_.find(node);
  return i == last_.end() ? -1 : i->second;
}

void test_deadlines::arm(uint64_t test, double deadline) {
  auto [i, fresh] = by_test_.try_emplace(test, deadline);
  if (!fresh) {
    by_time_.erase({i->second, test});
    i->second = deadline;
  }
  by_time_.emplace(deadline, test);
}

void test_deadlines::disarm(uint64_t test) {
  auto i = by_test_.find(test);
  if (i == by_test_.end())
    return;
  by_time_.erase({i->second, test});
  by_test_.erase(i);
}

std::vector<uint64_t> test_deadlines::expired(double now) {
  std::vector<uint64_t> out;
  while (!by_time_.empty() && by_time_.begin()->first <= now) {
    auto test = by_time_.begin()->second;
    by_time_.erase(by_time_.begin());
    by_test_.erase(test);
    out.push_back(test);
  }
  return out;
}

double test_deadlines::deadline_of(uint64_t test) const {
  auto i = by_test_.find(test);
  return i == by_test_.end() ? -1 : i->second;
}

} // namespace alb
