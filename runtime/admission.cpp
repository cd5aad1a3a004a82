#include "runtime/admission.hpp"

#include <unordered_set>

#include "runtime/cluster_state.hpp"

namespace alb {

const char* to_string(admission_verdict v) {
  switch (v) {
    case admission_verdict::run:
      return "run";
    case admission_verdict::attach:
      return "attach";
    case admission_verdict::answer:
      return "answer";
    case admission_verdict::twice:
      return "twice";
    case admission_verdict::conflict:
      return "conflict";
    case admission_verdict::invalid:
      return "invalid";
  }
  return "?";
}

client_id admission::add_client() {
  auto c = ++next_client_;
  clients_.try_emplace(c);
  return c;
}

bool admission::has_client(client_id c) const {
  return clients_.count(c) > 0;
}

std::vector<std::string> admission::remove_client(client_id c, bool clean,
                                                  const journal_view* j) {
  std::vector<std::string> ids;
  auto i = clients_.find(c);
  if (i == clients_.end())
    return ids;
  if (clean && j) {
    for (auto& [id, seq] : i->second.delivered) {
      // Only the record it received: a newer submission of the id is not
      // its to retire.
      auto r = j->find(id);
      if (r && r->ended && r->seq == seq)
        ids.push_back(id);
    }
  }
  clients_.erase(i);
  return ids;
}

admission_plan admission::admit(client_id c, const std::string& owner,
                                const std::vector<cluster_test>& tests,
                                bool rerun, const journal_view* j, double now) {
  admission_plan p;
  p.client_ = c;
  p.owner_ = owner;
  p.verdicts.reserve(tests.size());
  p.run.reserve(tests.size());
  p.run_refs_.reserve(tests.size());
  auto serial = ++submissions_;
  auto ci = c != 0 ? clients_.find(c) : clients_.end();
  // Ids answered from the journal in this submission: they get no open
  // entry, so a second mention is found here.
  std::unordered_set<std::string> answered;
  auto reject
    = [&](const std::string& id, admission_verdict v, std::string err) {
        cluster_outcome o;
        o.test_id = id;
        o.status = "failed";
        o.error = std::move(err);
        o.submitted_at = o.ended_at = now;
        p.answers.push_back(std::move(o));
        p.verdicts.push_back(v);
        ++p.rejected;
      };
  auto twice = [](const std::string& id) {
    return "test '" + id + "' appears more than once in this submission";
  };
  for (size_t k = 0; k < tests.size(); ++k) {
    auto& t = tests[k];
    auto& id = t.req.test_id;
    if (auto err = validate_requirements(t.req); !err.empty()) {
      reject(id, admission_verdict::invalid, std::move(err));
      continue;
    }
    auto digest = submission_journal::digest_of(t);
    // One lookup: a new id is entered here and stays unless the plan is
    // abandoned.
    auto [ref, is_new] = open_.try_emplace(id);
    auto& o = open_[ref];
    if (!is_new) {
      if (o.named_in == serial) {
        reject(id, admission_verdict::twice, twice(id));
      } else if (o.digest != digest) {
        reject(id, admission_verdict::conflict,
               "test '" + id
                 + "' is already submitted with a different command, "
                   "environment, working directory or requirements and has "
                   "not ended (wait for it or use another id)");
      } else {
        p.attach_refs_.push_back(ref);
        p.verdicts.push_back(admission_verdict::attach);
        ++p.attached;
      }
      o.named_in = serial;
      continue;
    }
    if (!answered.empty() && answered.count(id) > 0) {
      open_.erase(ref);
      reject(id, admission_verdict::twice, twice(id));
      continue;
    }
    if (j && !rerun) {
      auto r = j->find(id);
      bool seen = ci != clients_.end() && ci->second.delivered.count(id) > 0;
      if (r && r->ended && !seen
          && r->definition == submission_journal::definition_of(t)) {
        open_.erase(ref);
        answered.insert(id);
        p.answers.push_back(r->outcome);
        p.answered_seqs_.emplace_back(id, r->seq);
        p.verdicts.push_back(admission_verdict::answer);
        ++p.answered;
        continue;
      }
    }
    o.digest = digest;
    o.named_in = serial;
    o.owner = owner;
    p.run.push_back(k);
    p.run_refs_.push_back(ref);
    p.verdicts.push_back(admission_verdict::run);
  }
  return p;
}

void admission::accept(const admission_plan& p) {
  auto ci = p.client_ != 0 ? clients_.find(p.client_) : clients_.end();
  bool live = ci != clients_.end();
  for (auto ref : p.run_refs_) {
    auto& o = open_[ref];
    if (live) {
      o.waiters.push_back(p.client_);
      // It runs again for this client: the outcome it had of the id is no
      // longer the one to retire.
      ci->second.delivered.erase(open_.key(ref));
    }
  }
  for (auto ref : p.attach_refs_) {
    auto& o = open_[ref];
    if (o.owner != p.owner_)
      o.shared = true;
    if (live)
      o.waiters.push_back(p.client_);
  }
  if (live)
    for (auto& [id, seq] : p.answered_seqs_)
      ci->second.delivered[id] = seq;
}

void admission::abandon(const admission_plan& p) {
  for (auto ref : p.run_refs_)
    open_.erase(ref);
}

void admission::resume(const cluster_test& t, const std::string& owner) {
  auto& o = open_[open_.try_emplace(t.req.test_id).first];
  o.digest = submission_journal::digest_of(t);
  o.owner = owner;
}

bool admission::is_open(const std::string& test_id) const {
  return open_.find(test_id) != open_.npos;
}

std::optional<closed_test> admission::end(const std::string& test_id,
                                          std::optional<int64_t> journal_seq) {
  auto ref = open_.find(test_id);
  if (ref == open_.npos)
    return std::nullopt;
  auto& o = open_[ref];
  closed_test out;
  out.waiters = std::move(o.waiters);
  out.owner = std::move(o.owner);
  open_.erase(ref);
  if (journal_seq)
    for (auto c : out.waiters)
      if (auto ci = clients_.find(c); ci != clients_.end())
        ci->second.delivered[test_id] = *journal_seq;
  return out;
}

bool admission::waits(const std::string& test_id, client_id c) const {
  auto ref = open_.find(test_id);
  if (ref == open_.npos)
    return false;
  auto& ws = open_[ref].waiters;
  for (auto w : ws)
    if (w == c)
      return true;
  return false;
}

const std::string* admission::owner_of(const std::string& test_id) const {
  auto ref = open_.find(test_id);
  return ref == open_.npos ? nullptr : &open_[ref].owner;
}

cancel_plan admission::plan_cancel(const std::string& owner,
                                   const std::vector<std::string>& ids,
                                   bool all_mine, bool any) const {
  cancel_plan out;
  if (all_mine) {
    open_.for_each([&](const std::string& id, const open_test& o) {
      if (o.owner == owner && !o.shared)
        out.ask.push_back(id);
    });
    return out;
  }
  std::unordered_set<std::string> named;
  for (auto& id : ids) {
    if (!named.insert(id).second)
      continue;
    auto ref = open_.find(id);
    if (ref == open_.npos) {
      out.unknown.push_back(id);
      continue;
    }
    // A client cancels only what it submitted: another client's test (or
    // one it shares with another) is not its to stop. An operator may stop
    // any.
    auto& o = open_[ref];
    if (any)
      out.ask.push_back(id);
    else if (o.owner != owner)
      out.refused.emplace_back(id, "not submitted by this client");
    else if (o.shared)
      out.refused.emplace_back(id, "also submitted by another client");
    else
      out.ask.push_back(id);
  }
  return out;
}

} // namespace alb
