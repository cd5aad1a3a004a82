#!/usr/bin/env python3
"""Integration test of cancelling (README "Day-to-day operation").

A coordinator (journal, /metrics) and two nodes of four workers each on
loopback. `alb submit` sends 200 tests: 5 long ones that run (each writes
its shell's pid and a child's pid), 50 that stay queued behind a
concurrency key one of the running tests holds, and 145 short ones. A
second client with its own key ("mallory") tries to cancel and to read the
run: refused, nothing changes. The submitter's user (same client key, other
process) cancels the 50 queued and the 5 running tests: all 55 end
`cancelled`, the processes of the running ones and their children are gone,
none of the queued ones ever started, the other 145 complete, and every
test ends exactly once -- counted from the submitter's outcome file, from
the journal and from /metrics. Then: `alb results` (list and one run),
`alb submit --detach` + `alb cancel --all-mine`, Ctrl-C on `alb submit`
(cancels, waits for the confirmation, exit 130) and `alb submit
--rerun-failed`. About 30 s.

Usage: cancel_it.py PATH/TO/alb
"""

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.request

from it_support import ALB, PROCS, TMP, finish, check, path, read, start, wait_for, write
from it_support import toml_tests, alive, group_members, pid_of, long_cmd
from it_support import key_gated_tests, long_procs


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def metric_sum(text, name):
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


class Cluster:
    def __init__(self):
        self.token = write("token", "cancel-it-token-0123456789abcdef\n")
        self.mport = free_port()
        self.db = path("alb.db")
        start(["coordinator", "--port", "0", "--db-path", self.db,
               "--token-file", self.token, "--metrics-port", str(self.mport)],
              "coordinator")
        self.port = None

    def bound(self):
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)",
                      read("coordinator", "out"))
        if m:
            self.port = int(m.group(1))
        return self.port is not None

    def addr(self):
        return "127.0.0.1:%d" % self.port

    def client(self, cmd, key, *args):
        return [ALB, cmd, "--coordinator", self.addr(), "--token-file",
                self.token, "--client-key", path(key)] + list(args)

    def run(self, cmd, key, *args, timeout=60):
        return subprocess.run(self.client(cmd, key, *args),
                              capture_output=True, text=True, cwd=TMP,
                              timeout=timeout)


def cancel_200(c):
    quick = ["quick-%d" % i for i in range(145)]
    suite, long_ids, gated = key_gated_tests()
    for t in quick:
        suite.append({"test_id": t, "priority": 3,
                      "command": ["sh", "-c", "sleep 0.05; echo %s" % t]})
    check(len(suite) == 200, "200 tests in the suite")
    f = write("suite.toml", toml_tests(suite), 0o644)
    out = path("suite.json")
    sub = subprocess.Popen(c.client("submit", "alice.key", "--output", out, f),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, cwd=TMP)
    PROCS.append(sub)
    if not wait_for(lambda: all(pid_of(t) for t in long_ids), 30,
                    "the 5 long tests running"):
        return
    procs = long_procs(long_ids)
    check(all(alive(p) and alive(ch) for p, _, ch in procs.values()),
          "the long tests' shells and children are alive before the cancel")

    # -- mallory: a client with the token but another key ----------------
    r = c.run("cancel", "mallory.key", "--json", "run-0", "gated-0",
              "quick-144")
    doc = json.loads(r.stdout or "{}")
    check(r.returncode == 1 and doc.get("cancelled") == []
          and set(doc.get("refused", [])) <= {"run-0", "gated-0", "quick-144"}
          and {"run-0", "gated-0"} <= set(doc.get("refused", [])),
          "another client's cancel is refused (exit %d: %s)"
          % (r.returncode, r.stdout.strip()[-300:] + r.stderr.strip()[-300:]))
    r = c.run("cancel", "mallory.key", "--all-mine", "--json")
    check(r.returncode == 0 and json.loads(r.stdout or "{}").get("cancelled") == [],
          "another client's --all-mine cancels nothing")
    check(all(alive(p) for p, _, _ in procs.values()),
          "the long tests still run after the refused cancels")
    check("refused cancel of test 'run-0' from 127.0.0.1" in read("coordinator")
          and "not submitted by this client" in read("coordinator"),
          "the refusal is logged with the peer's address")

    # -- the submitter's user cancels 50 queued and 5 running ---------------
    r = c.run("cancel", "alice.key", "--json", *(gated + long_ids))
    doc = json.loads(r.stdout or "{}")
    check(r.returncode == 0 and sorted(doc.get("cancelled", []))
          == sorted(gated + long_ids) and not doc.get("refused")
          and not doc.get("unknown"),
          "alb cancel of 50 queued and 5 running: all 55 cancelled (exit %d: %s)"
          % (r.returncode, r.stderr.strip()[-300:]))
    try:
        sout, serr = sub.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        check(False, "the submitter finished after the cancel")
        return
    check(sub.returncode == 1, "the submitter exits 1 (not all passed; got %d: %s)"
          % (sub.returncode, serr.strip()[-300:]))

    def gone():
        return all(not alive(p) and not alive(ch) and not group_members(g)
                   for p, g, ch in procs.values())
    wait_for(gone, 10, "the cancelled tests' processes to be gone")
    check(gone(), "no process of the 5 cancelled running tests is left "
          "(shells, children, process groups)")
    check(not any(os.path.exists(path("pids/" + t)) for t in gated),
          "none of the 50 cancelled queued tests ever started")

    # -- every test ends exactly once: three independent counts --------------
    with open(out) as fh:
        res = json.load(fh)["results"]
    ids = [x["test_id"] for x in res]
    check(len(ids) == 200 and len(set(ids)) == 200,
          "outcome file: 200 outcomes, each test once (%d, %d distinct)"
          % (len(ids), len(set(ids))))
    by = {x["test_id"]: x["status"] for x in res}
    check(all(by.get(t) == "cancelled" for t in gated + long_ids),
          "outcome file: the 55 are cancelled")
    check(all(by.get(t) == "completed" for t in quick),
          "outcome file: the other 145 completed")
    m = re.search(r"as run (\S+)", serr)
    run = m.group(1) if m else ""
    check(bool(run), "the submitter names its run")
    con = sqlite3.connect(c.db)
    rows = con.execute("SELECT test_id, status, state FROM journal_tests "
                       "WHERE run_id = ?", (run,)).fetchall()
    con.close()
    jid = [x[0] for x in rows]
    check(len(jid) == 200 and len(set(jid)) == 200
          and all(x[2] != "open" for x in rows),
          "journal: 200 rows of the run, each test once, none open")
    js = {x[0]: x[1] for x in rows}
    check(sum(1 for t in gated + long_ids if js.get(t) == "cancelled") == 55
          and sum(1 for t in quick if js.get(t) == "completed") == 145,
          "journal: 55 cancelled, 145 completed")
    scrape = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % c.mport,
                                    timeout=10).read().decode()
    check(metric_sum(scrape, "alb_tests_cancelled_total") == 55
          and metric_sum(scrape, "alb_tests_completed_total") == 145,
          "metrics: alb_tests_cancelled_total 55, completed 145 (%g, %g)"
          % (metric_sum(scrape, "alb_tests_cancelled_total"),
             metric_sum(scrape, "alb_tests_completed_total")))

    # -- alb results ------------------------------------------------------------
    r = c.run("results", "alice.key", "--json")
    runs = {x["run_id"]: x for x in json.loads(r.stdout or "{}").get("runs", [])}
    x = runs.get(run, {})
    check(r.returncode == 0 and x.get("tests") == 200
          and x.get("completed") == 145 and x.get("cancelled") == 55
          and x.get("open") == 0 and x.get("label") == f,
          "alb results lists the run with its counts (%s)" % x)
    r = c.run("results", "alice.key", run, "--json")
    doc = json.loads(r.stdout or "{}")
    st = {y["test_id"]: y["status"] for y in doc.get("results", [])}
    check(r.returncode == 0 and len(st) == 200 and st.get("run-3") == "cancelled"
          and st.get("quick-7") == "completed",
          "alb results RUN shows the run's 200 outcomes")
    r = c.run("results", "alice.key", run)
    check(r.returncode == 0 and "run-3" in r.stdout and "cancelled" in r.stdout,
          "alb results RUN prints a table")
    r = c.run("results", "mallory.key", run)
    check(r.returncode == 2 and "another client's" in r.stderr,
          "another client's alb results RUN is refused (exit %d: %s)"
          % (r.returncode, r.stderr.strip()))
    r = c.run("results", "mallory.key", "--json")
    check(r.returncode == 0 and json.loads(r.stdout or "{}").get("runs") == [],
          "another client lists none of alice's runs")


def detach_and_all_mine(c):
    ids = ["d-%d" % i for i in range(3)]
    f = write("detach.toml", toml_tests(
        [{"test_id": t, "command": long_cmd(t)} for t in ids]), 0o644)
    t0 = time.time()
    r = c.run("submit", "alice.key", "--detach", f, timeout=30)
    run = r.stdout.strip()
    check(r.returncode == 0 and re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{4}", run)
          and time.time() - t0 < 10,
          "alb submit --detach prints the run id and exits 0 (%r, exit %d)"
          % (run, r.returncode))
    if not wait_for(lambda: all(pid_of(t) for t in ids), 20,
                    "the detached tests running"):
        return
    pids = [pid_of(t) for t in ids]
    r = c.run("results", "alice.key", run, "--json")
    st = [y["status"] for y in json.loads(r.stdout or "{}").get("results", [])]
    check(st == ["open"] * 3, "detached: the run's tests are open (%s)" % st)
    r = c.run("cancel", "alice.key", "--all-mine", "--json")
    doc = json.loads(r.stdout or "{}")
    check(r.returncode == 0 and sorted(doc.get("cancelled", [])) == ids,
          "alb cancel --all-mine cancels the detached run's 3 tests (%s)" % doc)
    wait_for(lambda: not any(alive(p) for p in pids), 10,
             "the detached tests' processes to end")

    def ended():
        r = c.run("results", "alice.key", run, "--json")
        st = [y["status"] for y in json.loads(r.stdout or "{}").get("results", [])]
        return st == ["cancelled"] * 3
    check(wait_for(ended, 10, "the detached run journaled as cancelled"),
          "detached: the journal holds the 3 as cancelled")


def ctrl_c(c):
    ids = ["c-0", "c-1"]
    f = write("ctrlc.toml", toml_tests(
        [{"test_id": t, "command": long_cmd(t)} for t in ids]), 0o644)
    out = path("ctrlc.json")
    sub = subprocess.Popen(c.client("submit", "alice.key", "--output", out, f),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, cwd=TMP)
    PROCS.append(sub)
    if not wait_for(lambda: all(pid_of(t) for t in ids), 20,
                    "the Ctrl-C suite running"):
        return
    pids = [pid_of(t) for t in ids]
    sub.send_signal(signal.SIGINT)
    try:
        sout, serr = sub.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        check(False, "alb submit ends after Ctrl-C")
        return
    check(sub.returncode == 130, "Ctrl-C: alb submit exits 130 (got %d: %s)"
          % (sub.returncode, serr.strip()[-300:]))
    check("2 tests cancelled" in serr, "Ctrl-C: it says it cancelled both")
    with open(out) as fh:
        st = {x["test_id"]: x["status"] for x in json.load(fh)["results"]}
    check(st == {t: "cancelled" for t in ids},
          "Ctrl-C: the confirmed outcomes are cancelled (%s)" % st)
    wait_for(lambda: not any(alive(p) for p in pids), 10,
             "the interrupted tests' processes to end")


def rerun_failed(c):
    flag = path("flag")
    f = write("rerun.toml", toml_tests([
        {"test_id": "r-pass", "command": ["true"]},
        {"test_id": "r-fail", "command": ["test", "-f", flag]},
        {"test_id": "r-slow", "command": ["sleep", "5"], "timeout": 0.5},
    ]), 0o644)
    r = c.run("submit", "alice.key", f)
    check(r.returncode == 1, "rerun: the first run fails (exit %d)" % r.returncode)
    write("flag", "")
    out = path("rerun.json")
    r = c.run("submit", "alice.key", "--rerun-failed", "--output", out, f)
    with open(out) as fh:
        st = {x["test_id"]: x for x in json.load(fh)["results"]}
    check(r.returncode == 1 and sorted(st) == ["r-fail", "r-slow"]
          and st["r-fail"]["status"] == "completed"
          and st["r-slow"]["timed_out"],
          "--rerun-failed resubmits only the failed and timed-out tests "
          "(exit %d: %s)" % (r.returncode, sorted(st)))
    check("rerunning 2 failed or timed-out tests of run" in r.stderr,
          "--rerun-failed names the run it reruns")


def main():
    os.makedirs(path("pids"))
    c = Cluster()
    if not wait_for(c.bound, 15, "the coordinator's port"):
        return
    for n in ("n1", "n2"):
        start(["node", "--coordinator", c.addr(), "--slots", "4", "--cores",
               "4", "--memory", "8", "--token-file", c.token, "--name", n,
               "--reconnect-timeout", "0"], n)
    if not wait_for(lambda: read("coordinator").count("registered in slot") >= 2,
                    20, "both nodes' workers"):
        return
    cancel_200(c)
    detach_and_all_mine(c)
    ctrl_c(c)
    rerun_failed(c)


finish(main, "all cancel checks passed", ["coordinator", "n1", "n2"])
