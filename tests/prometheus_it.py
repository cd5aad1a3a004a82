#!/usr/bin/env python3
"""Integration test: every Grafana panel query returns data from a real run.

Starts Prometheus (Debian's `prometheus` package) on 127.0.0.1 with a scrape
config derived from configs/prometheus.yml (scrape interval 100 ms), runs a
bursty `alb stress --dynamic` with --metrics-port, and then, for every target
of every panel of every dashboard in grafana/dashboards (template variables
substituted as Grafana would), asks Prometheus for the series over the run. A
query that returns nothing fails the test naming the dashboard and panel.
Then compares panel values with the run's own result file: the queue depth
peak (within 10%), tests completed, failed, cancelled and requeued, workers at
the end and joined minus left; and checks every gauge is at rest during the
linger after the run (nothing in flight, no busy worker, empty queue, loads
0), that configs/alb-alerts.yml loads with every rule healthy and that
AlbWorkersLost fired for the workers the churn killed. Also checks `promtool check metrics` on a mid-run scrape of /metrics and
`promtool check config` on configs/prometheus.yml.

Usage: prometheus_it.py [PATH_TO_ALB]   (or env ALB; default build/bin/alb)
Exit status: 0 pass, 1 fail, 2 bad usage or missing tools.
Only loopback traffic; every wait is bounded; Prometheus and alb are stopped
and the temporary directory removed on any exit.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A bursty run with churn whose backlog outgrows the workers (most of it parked:
# tests no worker can hold now): about 40 s of wall time. In real time, since
# the queue's peak right after a burst lasts only a few hundred milliseconds
# and faster runs shorten it below the scrape interval.
WORKERS = 12
TESTS = 1500
DURATION = 6
TIME_SCALE = 1
LINGER = 8
SCRAPE = "100ms"
# Hard limit for the whole test, far above the expected ~50 s.
TOTAL_TIMEOUT = 300

# No proxies: every request goes to 127.0.0.1.
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class TestFailure(Exception):
    pass


def log(msg):
    print("prometheus_it: " + msg, flush=True)


def usage_error(msg):
    print("prometheus_it: error: " + msg, file=sys.stderr, flush=True)
    sys.exit(2)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=5):
    with HTTP.open(url, timeout=timeout) as resp:
        return resp.read().decode()


def api(prom, path, params, timeout=10):
    url = "http://127.0.0.1:%d%s?%s" % (prom, path, urllib.parse.urlencode(params, doseq=True))
    try:
        body = http_get(url, timeout)
    except urllib.error.HTTPError as e:
        body = e.read().decode()
    reply = json.loads(body)
    if reply.get("status") != "success":
        raise TestFailure("Prometheus rejected %s %s: %s" % (path, params, reply.get("error", body)))
    return reply["data"]


def wait_for(what, predicate, timeout, interval=0.5, procs=()):
    deadline = time.time() + timeout
    while time.time() < deadline:
        for name, p in procs:
            if p.poll() is not None:
                raise TestFailure("%s exited (status %d) while waiting for %s" % (name, p.returncode, what))
        try:
            if predicate():
                return
        except (OSError, urllib.error.URLError, ValueError, TestFailure):
            pass
        time.sleep(interval)
    raise TestFailure("timed out after %ds waiting for %s" % (timeout, what))


def stop(name, p):
    if p is None or p.poll() is not None:
        return
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        log("%s ignored SIGTERM; killing it" % name)
        p.kill()
        p.wait(timeout=10)


def dashboards():
    folder = os.path.join(ROOT, "grafana", "dashboards")
    for name in sorted(os.listdir(folder)):
        if name.endswith(".json"):
            with open(os.path.join(folder, name)) as f:
                yield name, json.load(f)


def panels(items):
    for p in items:
        yield p
        yield from panels(p.get("panels", []))


def substitute(expr, values):
    """Replaces Grafana template variables in `expr` the way Grafana would."""
    for var, val in values.items():
        expr = expr.replace("${%s}" % var, val)
        expr = expr.replace("[[%s]]" % var, val)
        # $var not followed by another identifier character ($job vs $jobs).
        expr = re.sub(r"\$%s(?![A-Za-z0-9_])" % re.escape(var), lambda _: val, expr)
    return expr


def main():
    alb = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("ALB", os.path.join(ROOT, "build", "bin", "alb"))
    alb = os.path.abspath(alb)
    if not (os.path.isfile(alb) and os.access(alb, os.X_OK)):
        usage_error("alb binary %s not found or not executable (pass its path as $1 or ALB)" % alb)
    for tool in ("prometheus", "promtool"):
        if shutil.which(tool) is None:
            usage_error("%s not on PATH (apt-get install --no-install-recommends prometheus)" % tool)

    shipped = os.path.join(ROOT, "configs", "prometheus.yml")
    check = subprocess.run(["promtool", "check", "config", shipped], capture_output=True, text=True, timeout=30)
    if check.returncode != 0:
        raise TestFailure("promtool check config %s failed:\n%s%s" % (shipped, check.stdout, check.stderr))
    log("promtool check config configs/prometheus.yml: clean")

    tmp = tempfile.mkdtemp(prefix="alb-prom-it-")
    prom_proc = alb_proc = None
    try:
        mport = free_port()
        pport = free_port()
        # The shipped config, pointed at this run's port and scraping every 1 s.
        with open(shipped) as f:
            cfg = f.read()
        if "127.0.0.1:9464" not in cfg:
            raise TestFailure("configs/prometheus.yml no longer targets 127.0.0.1:9464")
        cfg = cfg.replace("127.0.0.1:9464", "127.0.0.1:%d" % mport)
        # The rules file sits beside the shipped config, not the copy.
        if "alb-alerts.yml" not in cfg:
            raise TestFailure("configs/prometheus.yml no longer loads alb-alerts.yml")
        cfg = cfg.replace("- alb-alerts.yml", "- " + os.path.join(ROOT, "configs", "alb-alerts.yml"))
        cfg = re.sub(r"(scrape_interval|evaluation_interval|scrape_timeout):\s*\S+", r"\1: " + SCRAPE, cfg)
        cfg_path = os.path.join(tmp, "prometheus.yml")
        with open(cfg_path, "w") as f:
            f.write(cfg)
        job = re.search(r"job_name:\s*(\S+)", cfg).group(1).strip("'\"")
        instance = "127.0.0.1:%d" % mport

        prom_log = open(os.path.join(tmp, "prometheus.log"), "w")
        prom_proc = subprocess.Popen(
            ["prometheus", "--config.file=" + cfg_path, "--storage.tsdb.path=" + os.path.join(tmp, "data"),
             "--web.listen-address=127.0.0.1:%d" % pport, "--log.level=warn"],
            stdout=prom_log, stderr=subprocess.STDOUT, cwd=tmp)
        procs = [("prometheus", prom_proc)]
        wait_for("Prometheus to be ready",
                 lambda: "Ready" in http_get("http://127.0.0.1:%d/-/ready" % pport), 60, procs=procs)
        log("Prometheus ready on 127.0.0.1:%d" % pport)

        # Prometheus hands new targets to its scrapers only every few seconds:
        # start alb once its target is scraped (still down), so the first
        # samples of the run, and the counters' first increases, are stored.
        def target_known():
            q = 'up{job="%s",instance="%s"}' % (job, instance)
            return len(api(pport, "/api/v1/query", {"query": q})["result"]) > 0
        wait_for("Prometheus to scrape the (not yet running) alb target", target_known, 30, 0.2, procs)

        alb_log_path = os.path.join(tmp, "alb.log")
        alb_log = open(alb_log_path, "w")
        result_path = os.path.join(tmp, "stress.json")
        cmd = [alb, "stress", "--workers", str(WORKERS), "--tests", str(TESTS), "--duration", str(DURATION),
               "--burst", "--dynamic", "--time-scale", str(TIME_SCALE),
               "--metrics-bind", "127.0.0.1", "--metrics-port", str(mport), "--metrics-linger", str(LINGER),
               "--output", result_path]
        log("running " + " ".join(cmd))
        alb_proc = subprocess.Popen(cmd, stdout=alb_log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=tmp)
        procs.append(("alb stress", alb_proc))
        metrics_url = "http://%s/metrics" % instance
        wait_for("alb to serve %s" % metrics_url, lambda: "alb_" in http_get(metrics_url), 30, 0.2, procs)

        def target_up():
            res = api(pport, "/api/v1/query", {"query": 'up{job="%s",instance="%s"} == 1' % (job, instance)})["result"]
            return len(res) > 0
        wait_for("Prometheus to scrape alb", target_up, 30, 0.5, procs)
        t_first = time.time()
        log("Prometheus scrapes alb on %s" % instance)

        # Mid-run scrape: the exposition must pass promtool's linter.
        time.sleep(min(8, DURATION / 2))
        if alb_proc.poll() is not None:
            raise TestFailure("alb stress exited (status %d) before the mid-run scrape" % alb_proc.returncode)
        scrape = http_get(metrics_url)
        with open(os.path.join(tmp, "scrape.txt"), "w") as f:
            f.write(scrape)
        lint = subprocess.run(["promtool", "check", "metrics"], input=scrape, capture_output=True, text=True,
                              timeout=30)
        if lint.returncode != 0 or lint.stdout.strip() or lint.stderr.strip():
            raise TestFailure("promtool check metrics on the mid-run scrape:\n%s%s" % (lint.stdout, lint.stderr))
        log("promtool check metrics on a mid-run scrape (%d lines): clean" % scrape.count("\n"))

        # The run, plus its linger, plus generous slack for a loaded machine.
        try:
            rc = alb_proc.wait(timeout=DURATION + LINGER + 90)
        except subprocess.TimeoutExpired:
            raise TestFailure("alb stress did not exit within %ds" % (DURATION + LINGER + 90))
        t_end = time.time()
        if rc != 0:
            raise TestFailure("alb stress exited with status %d" % rc)
        log("alb stress finished after %.0fs" % (t_end - t_first))

        # Ensure the last lingering samples are ingested before querying.
        time.sleep(2)
        values = {"datasource": "", "__rate_interval": "1m", "__interval": "5s", "__range": "1m",
                  "job": job, "instance": instance}
        start, end = t_first, t_end

        def query_range(expr, step="1"):
            return api(pport, "/api/v1/query_range",
                       {"query": expr, "start": "%.3f" % start, "end": "%.3f" % end, "step": step})["result"]

        failures = []
        checked = 0
        for fname, dash in dashboards():
            title = dash.get("title", fname)
            for var in dash.get("templating", {}).get("list", []):
                q = var.get("query")
                q = q.get("query") if isinstance(q, dict) else q
                m = re.fullmatch(r"\s*label_values\((.+),\s*(\w+)\)\s*", q or "")
                if var.get("type") != "query" or not m:
                    continue
                match = substitute(m.group(1), values)
                got = api(pport, "/api/v1/label/%s/values" % m.group(2),
                          {"match[]": match, "start": "%.3f" % start, "end": "%.3f" % end})
                checked += 1
                if not got:
                    failures.append("%s: variable %s (%s) has no values" % (title, var.get("name"), q))
            for panel in panels(dash.get("panels", [])):
                for t in panel.get("targets", []):
                    expr = substitute(t.get("expr", ""), values)
                    where = "%s: panel '%s' (id %s) target %s" % (title, panel.get("title"), panel.get("id"),
                                                                  t.get("refId"))
                    checked += 1
                    if not expr.strip():
                        failures.append(where + ": empty query")
                        continue
                    if "$" in expr:
                        failures.append(where + ": unsubstituted variable in " + expr)
                        continue
                    try:
                        res = query_range(expr)
                    except TestFailure as e:
                        failures.append("%s: %s" % (where, e))
                        continue
                    if not res:
                        failures.append("%s: no series for %s" % (where, expr))

        # The values must describe this run, not just exist.
        sel = '{job="%s",instance="%s"}' % (job, instance)

        def last_max(expr, step="1"):
            res = query_range(expr, step)
            if not res:
                return None
            return max(float(v[1]) for s in res for v in s["values"])

        # Hooks the actor layer must drive, not only register.
        load = last_max("max(alb_worker_load_ratio%s)" % sel)
        if not load:
            failures.append("alb_worker_load_ratio stayed %s: on_worker_load is never reported" % load)
        decisions = last_max("sum(alb_scheduling_decision_seconds_count%s)" % sel)
        if not decisions:
            failures.append("alb_scheduling_decision_seconds_count stayed %s: observe_decision is never called"
                            % decisions)
        per_worker = last_max("sum(alb_worker_completions_total%s)" % sel)
        if not per_worker:
            failures.append("alb_worker_completions_total stayed %s: on_completed gets no worker index" % per_worker)

        # The panels against the run's own result file: the numbers a person
        # reads off the dashboards must be the run's.
        with open(result_path) as f:
            result = json.load(f)
        metrics = result["metrics"]
        file_peak = max(v for _, v in result["time_series"]["queue_depth"])
        linger_at = "%.3f" % (end - 1)

        def panel_expr(title, dash_uid, ref="A"):
            for _, dash in dashboards():
                if dash.get("uid") != dash_uid:
                    continue
                for panel in panels(dash.get("panels", [])):
                    if panel.get("title") == title:
                        for t in panel.get("targets", []):
                            if t.get("refId") == ref:
                                return substitute(t["expr"], values)
            raise TestFailure("no panel '%s' target %s in dashboard %s" % (title, ref, dash_uid))

        def at_end(expr):
            res = api(pport, "/api/v1/query", {"query": expr, "time": linger_at})["result"]
            return float(res[0]["value"][1]) if res else None

        def compare(what, got, want, rel=0.0):
            ok = got is not None and abs(got - want) <= rel * abs(want)
            log("%s: dashboard %s, result file %s%s" % (what, got, want, "" if ok else "  <-- MISMATCH"))
            if not ok:
                failures.append("%s: the dashboard says %s, the result file %s" % (what, got, want))

        # The backlog: most of it parked (no worker can hold it now), which the
        # queue must count. Scrapes every 100 ms against a file sampled per
        # time bucket: within 10%.
        n_scrapes = at_end('count_over_time(up{job="%s",instance="%s"}[%ds])' % (job, instance, int(end - start)))
        log("%s scrapes over %.0f s" % (n_scrapes, end - start))
        if file_peak < 200:
            failures.append("the run built no backlog (result file queue_depth peak %s): the check proves nothing"
                            % file_peak)
        # Evaluated at the scrape interval, as a Grafana panel zoomed in is:
        # a 1 s step would skip most scrapes.
        step = "%g" % (float(SCRAPE[:-2]) / 1000)
        # Raw samples, one sum per scrape: what Prometheus stored.
        raw = api(pport, "/api/v1/query", {"query": "alb_queue_depth%s[%ds]" % (sel, int(end - start) + 5),
                                           "time": "%.3f" % end})["result"]
        per_scrape = {}
        for series in raw:
            for t, v in series["values"]:
                per_scrape[t] = per_scrape.get(t, 0) + float(v)
        log("raw scrape peak %s over %d scrapes" % (max(per_scrape.values(), default=None), len(per_scrape)))
        compare("queue depth peak (raw scrapes of alb_queue_depth, summed)", max(per_scrape.values(), default=None),
                file_peak, 0.10)
        compare("queue depth peak (Overview 'Queue depth by priority', summed)",
                last_max("sum(%s)" % panel_expr("Queue depth by priority", "alb-overview"), step), file_peak, 0.10)
        compare("queue depth peak (Overview 'Queued')", last_max(panel_expr("Queued", "alb-overview"), step),
                file_peak, 0.10)
        compare("tests completed", at_end("sum(alb_tests_completed_total%s)" % sel), metrics["completed_tests"])
        compare("tests requeued (Scheduling 'Requeued')", at_end(panel_expr("Requeued", "alb-scheduling")),
                metrics["requeued_tests"])
        compare("tests cancelled", at_end("sum(alb_tests_cancelled_total%s)" % sel), metrics["cancelled_tests"])
        compare("tests failed", at_end("sum(alb_tests_failed_total%s)" % sel), metrics["failed_tests"])
        compare("workers at the end (Cluster 'Workers')", at_end(panel_expr("Workers", "alb-cluster")),
                metrics["final_worker_count"])
        # The result file has no count of lost workers: joined (the initial
        # ones included) minus those that left cleanly or were lost is the
        # workers present at the end.
        lost = at_end(panel_expr("Workers lost", "alb-cluster"))
        if not lost:
            failures.append("Cluster 'Workers lost' says %s after a --dynamic run that kills workers" % lost)
        compare("workers joined - left - lost", at_end(
            "sum(alb_workers_joined_total%s) - sum(alb_workers_left_total%s)" % (sel, sel)),
            metrics["final_worker_count"])
        if not metrics["requeued_tests"]:
            failures.append("the run requeued no test: the requeue comparison proves nothing")

        # The shipped alerting rules are loaded and evaluate on real series:
        # the churn lost workers, so AlbWorkersLost fired during the run.
        groups = api(pport, "/api/v1/rules", {})["groups"]
        loaded = sorted(r["name"] for g in groups for r in g["rules"])
        log("alerting rules loaded: %s" % ", ".join(loaded))
        for name in ("AlbQueueGrowingWhileWorkersIdle", "AlbLowSuccessRate", "AlbWorkerOverloaded",
                     "AlbWorkersLost", "AlbTargetDown"):
            if name not in loaded:
                failures.append("alerting rule %s is not loaded from configs/alb-alerts.yml" % name)
        for g in groups:
            for r in g["rules"]:
                if r.get("health") not in ("ok", "unknown"):
                    failures.append("alerting rule %s: %s %s" % (r["name"], r.get("health"), r.get("lastError")))
        fired = last_max('max(ALERTS{alertname="AlbWorkersLost",instance="%s",alertstate="firing"})' % instance)
        if not fired:
            failures.append("AlbWorkersLost never fired although the run lost %s workers" % lost)

        # After the run (during the linger) every gauge is at rest.
        for expr, want in (("sum(alb_tests_in_flight%s)" % sel, 0),
                           ('sum(alb_workers%s) - sum(alb_workers{job="%s",instance="%s",state="idle"})'
                            % (sel, job, instance), 0),
                           ("sum(alb_queue_depth%s)" % sel, 0),
                           ("max(alb_worker_load_ratio%s)" % sel, 0),
                           ("max(alb_worker_active_tests%s)" % sel, 0),
                           ("sum(alb_worker_mean_load_ratio%s)" % sel, 0)):
            compare("after the run, " + expr, at_end(expr), want)
        # Every submitted test ends exactly once: completed, failed or cancelled.
        compare("submitted - completed - failed - cancelled at the end",
                at_end("sum(alb_tests_submitted_total%s) - sum(alb_tests_completed_total%s)"
                       " - sum(alb_tests_failed_total%s) - sum(alb_tests_cancelled_total%s)" % (sel, sel, sel, sel)),
                0)

        log("checked %d panel targets and variables" % checked)
        if failures:
            raise TestFailure("%d problem(s):\n  " % len(failures) + "\n  ".join(failures))
        log("PASS")
    except TestFailure:
        for name in ("alb.log", "prometheus.log"):
            path = os.path.join(tmp, name)
            if os.path.exists(path):
                with open(path) as f:
                    tail = f.read()[-3000:]
                print("---- last lines of %s ----\n%s" % (name, tail), file=sys.stderr)
        raise
    finally:
        stop("alb stress", alb_proc)
        stop("prometheus", prom_proc)
        shutil.rmtree(tmp, ignore_errors=True)


def on_signal(signum, _frame):
    raise TestFailure("interrupted by signal %d" % signum)


def on_alarm(_signum, _frame):
    raise TestFailure("the whole test exceeded %ds" % TOTAL_TIMEOUT)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(TOTAL_TIMEOUT)
    try:
        main()
    except TestFailure as e:
        print("prometheus_it: FAIL: %s" % e, file=sys.stderr, flush=True)
        sys.exit(1)
