#include "actors/observed_executor.hpp"

namespace alb {

namespace {

class observed_executor final : public executor {
public:
  observed_executor(std::unique_ptr<executor> inner,
                    std::shared_ptr<run_observer> obs)
    : inner_(std::move(inner)), obs_(std::move(obs)) {
    // nop
  }

  bool start(executor_host& host, uint64_t seq, const work_item& item,
             work_report& done) override {
    auto started = host.now();
    obs_->run_started();
    if (inner_->start(host, seq, item, done)) {
      started_.emplace(seq, started);
      return true;
    }
    obs_->run_ended(how(done), host.now() - started);
    return false;
  }

  bool on_timer(executor_host& host, uint64_t seq, const work_item& item,
                work_report& done) override {
    return ended(host, seq, inner_->on_timer(host, seq, item, done), done);
  }

  bool on_deadline(executor_host& host, uint64_t seq, const work_item& item,
                   work_report& done) override {
    return ended(host, seq, inner_->on_deadline(host, seq, item, done), done);
  }

  bool on_exit(executor_host& host, uint64_t seq, const work_item& item,
               work_report& done) override {
    return ended(host, seq, inner_->on_exit(host, seq, item, done), done);
  }

  void stop(uint64_t seq) override {
    inner_->stop(seq);
    auto i = started_.find(seq);
    if (i == started_.end())
      return;
    // No host here: the time it ran is not known, only that it ended.
    started_.erase(i);
    obs_->run_ended(run_end::withdrawn, 0);
  }

  void fill_load(executor_host& host, worker_load& l) override {
    inner_->fill_load(host, l);
  }

  ~observed_executor() override {
    // Runs still going when the worker ends (the node leaves or loses its
    // coordinator) end with it.
    for (size_t i = 0; i < started_.size(); ++i)
      obs_->run_ended(run_end::withdrawn, 0);
  }

private:
  static run_end how(const work_report& r) {
    if (r.timed_out)
      return run_end::timed_out;
    return r.success ? run_end::passed : run_end::failed;
  }

  bool ended(executor_host& host, uint64_t seq, bool done,
             const work_report& r) {
    if (!done)
      return false;
    auto i = started_.find(seq);
    if (i != started_.end()) {
      obs_->run_ended(how(r), host.now() - i->second);
      started_.erase(i);
    }
    return true;
  }

  std::unique_ptr<executor> inner_;
  std::shared_ptr<run_observer> obs_;
  /// Start time of every run that is going.
  std::unordered_map<uint64_t, double> started_;
};

} // namespace

std::unique_ptr<executor> observe_runs(std::unique_ptr<executor> inner,
                                       std::shared_ptr<run_observer> obs) {
  if (!obs)
    return inner;
  return std::make_unique<observed_executor>(std::move(inner), std::move(obs));
}

} // namespace alb
