#!/usr/bin/env python3
"""Liveness of a cluster on loopback: heartbeats, --node-timeout, the
coordinator's own test timeouts and client sessions that expire.

A coordinator (--node-timeout 2, journal in the test's directory, metrics on
an ephemeral port) and two nodes run tests that wait for a gate file. With
tests running (and more queued) on node n1, n1 is SIGSTOPped: the
coordinator must log `node 'n1' lost: no heartbeat for 2 s`, requeue n1's
tests and finish them on n2 within --node-timeout + 5 s. SIGCONT then: n1 is
told it was dropped, kills what it ran, joins again and runs new tests. No
test ends twice: one outcome per test in the client's file, one ended
journal row per test, alb_tests_completed_total equal to the number of
tests (also after n1's late reports arrived).

Then a test whose command stops its own node (`kill -STOP`): the node's own
timeout cannot fire and it reports nothing, while --node-timeout (60 s) is
far off; the coordinator gives up on the attempt --timeout-grace past the
test's timeout and it passes on its retry on the other node. And a client
that vanishes without closing (SIGSTOP of `alb submit`): its session
expires after --client-timeout, its test still finishes and is journaled,
the same submission again is answered from the journal (no second run).

Only processes the test started are signalled (by PID); bounded (about
30 s).

Usage: liveness_it.py PATH/TO/alb
"""

import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import time
import urllib.request

from it_support import ALB, TMP, check, finish, path, read, start, wait_for, write
from it_support import gated, runs_under, started, toml_tests

NODE_TIMEOUT = 2


def metric(url, name, labels=""):
    """Sum of the series of NAME whose labels contain LABELS (None when the
    scrape fails)."""
    try:
        text = urllib.request.urlopen(url, timeout=5).read().decode()
    except OSError:
        return None
    total = 0.0
    for line in text.splitlines():
        m = re.match(r"([a-z_]+)(\{[^}]*\})? (\S+)$", line)
        if m and m.group(1) == name and labels in (m.group(2) or ""):
            total += float(m.group(3))
    return total






def coordinator(token, name, extra):
    """Starts a coordinator; returns (process, port, metrics URL)."""
    p = start(["coordinator", "--port", "0", "--token-file", token,
               "--metrics-port", "0"] + list(extra), name)
    found = {}

    def bound():
        text = read(name, "out")
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", text)
        if m:
            found["port"] = int(m.group(1))
        m = re.search(r"metrics: (http://\S+)", text)
        if m:
            found["url"] = m.group(1)
        return "port" in found and "url" in found
    wait_for(bound, 15, "the port and metrics of " + name)
    return p, found.get("port"), found.get("url")


def test_stopped_node(token):
    db = path("alb.db")
    coord, port, url = coordinator(token, "coordinator",
                                   ["--db-path", db, "--node-timeout",
                                    str(NODE_TIMEOUT)])
    if not port:
        return
    addr = "127.0.0.1:%d" % port
    nodes = {}
    for n in ("n1", "n2"):
        nodes[n] = start(["node", "--coordinator", addr,
                          "--cores", "2", "--slots", "2", "--memory", "8",
                          "--token-file", token, "--name", n,
                          "--reconnect-timeout", "30"], n)
    if not wait_for(lambda: read("coordinator").count("registered in slot") >= 2,
                    15, "both nodes"):
        return

    # -- 1. SIGSTOP n1 with tests running and queued on it ---------------------
    ids = ["g-%d" % i for i in range(8)]
    f = write("gated.toml", toml_tests([gated(t) for t in ids]), 0o644)
    out = path("gated.json")
    sub = subprocess.Popen([ALB, "submit", "--coordinator", addr,
                            "--token-file", token, "--output", out, f],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, cwd=TMP)
    # Two slots per node: four run, the rest wait in the nodes' local
    # queues (prefetch) or centrally.
    if not wait_for(lambda: len(started()) >= 4, 15, "four tests running"):
        sub.kill()
        return
    on_n1 = {t for t, pid in started() if runs_under(pid, nodes["n1"].pid)}
    check(len(on_n1) == 2, "n1 runs two tests before the stop (%s)" % sorted(on_n1))
    lost_before = metric(url, "alb_node_heartbeat_timeouts_total")
    t_stop = time.time()
    os.kill(nodes["n1"].pid, signal.SIGSTOP)
    line = "node 'n1' lost: no heartbeat for %d s" % NODE_TIMEOUT
    wait_for(lambda: line in read("coordinator"), NODE_TIMEOUT + 5,
             "the coordinator to declare n1 lost")
    t_lost = time.time() - t_stop
    check(line in read("coordinator"),
          "coordinator logs \"%s\" (after %.1f s)" % (line, t_lost))
    check(t_lost >= NODE_TIMEOUT - 0.5,
          "n1 is not declared lost before --node-timeout (%.1f s)" % t_lost)
    # Open the gate: every test still to run finishes at once.
    write("gate", "")
    try:
        sub.communicate(timeout=NODE_TIMEOUT + 5)
    except subprocess.TimeoutExpired:
        pass
    t_done = time.time() - t_stop
    check(sub.returncode == 0,
          "submit: every test completed (exit %s)" % sub.returncode)
    check(t_done < NODE_TIMEOUT + 5,
          "n1's tests finished elsewhere %.1f s after the stop (< %d s)"
          % (t_done, NODE_TIMEOUT + 5))
    res = {}
    if os.path.exists(out):
        with open(out) as fh:
            rows = json.load(fh)["results"]
        check(len(rows) == len(ids), "one outcome per test (%d rows)" % len(rows))
        res = {r["test_id"]: r for r in rows}
    check(all(res.get(t, {}).get("status") == "completed" for t in ids),
          "all %d tests completed" % len(ids))
    moved = [t for t in on_n1 if res.get(t, {}).get("worker_id", "").startswith("n2/")]
    check(len(moved) == len(on_n1) and on_n1,
          "the tests running on n1 finished on n2 (%s)" % sorted(moved))
    check(all(not r.get("worker_id", "").startswith("n1/") for r in res.values()),
          "no outcome comes from the stopped n1")
    check(metric(url, "alb_node_heartbeat_timeouts_total") == (lost_before or 0) + 1,
          "alb_node_heartbeat_timeouts_total counted n1 once")
    check((metric(url, "alb_workers_left_total", 'reason="lost"') or 0) >= 1,
          "n1's worker counted as lost")

    # -- 2. SIGCONT: n1 learns it was dropped and joins again ------------------
    os.kill(nodes["n1"].pid, signal.SIGCONT)
    wait_for(lambda: "dropped by the coordinator" in read("n1"), 15,
             "n1 to learn it was dropped")
    check("dropped by the coordinator" in read("n1"),
          "n1 logs that it was dropped and kills what it ran")
    wait_for(lambda: "node 'n1' rejoined" in read("coordinator"), 15,
             "n1 to join again")
    check("node 'n1' rejoined" in read("coordinator"), "n1 joined again")
    # Its commands from before the stop were killed or had ended: none is
    # left running under it.
    wait_for(lambda: not any(runs_under(pid, nodes["n1"].pid)
                             for _, pid in started()), 10,
             "n1's old commands to end")
    # n1 works again: a new batch runs there too (it is the idle one).
    ids2 = ["h-%d" % i for i in range(4)]
    f2 = write("after.toml", toml_tests([gated(t) for t in ids2]), 0o644)
    out2 = path("after.json")
    r = subprocess.run([ALB, "submit", "--coordinator", addr, "--token-file",
                        token, "--output", out2, f2], capture_output=True,
                       text=True, timeout=60, cwd=TMP)
    check(r.returncode == 0, "after the rejoin: submit exits 0 (%s)"
          % r.stderr.strip()[-300:])
    rows2 = []
    if os.path.exists(out2):
        with open(out2) as fh:
            rows2 = json.load(fh)["results"]
    check(any(x.get("worker_id", "").startswith("n1/") for x in rows2),
          "after the rejoin n1 runs tests again")

    # -- 3. no test ended twice ------------------------------------------------
    total = len(ids) + len(ids2)
    check(metric(url, "alb_tests_completed_total") == total,
          "alb_tests_completed_total is %d (got %s)"
          % (total, metric(url, "alb_tests_completed_total")))
    con = sqlite3.connect(db)
    try:
        # A record is ended once and then kept (or retired once its client
        # collected it and left): one per test either way.
        rows = con.execute("SELECT test_id, COUNT(*) FROM journal_tests "
                           "WHERE status IS NOT NULL GROUP BY test_id").fetchall()
    finally:
        con.close()
    counts = dict(rows)
    check(sorted(counts) == sorted(ids + ids2)
          and all(c == 1 for c in counts.values()),
          "journal: exactly one ended record per test (%d ids)" % len(counts))
    check(coord.poll() is None, "coordinator still serving")


def test_backstop(token):
    """A test that stops its own node (kill -STOP): the node's own timeout
    can never fire and it reports nothing, but its heartbeats are not missed
    for long (--node-timeout 60): the coordinator gives up on the attempt
    timeout + --timeout-grace after its start and retries it elsewhere."""
    coord, port, url = coordinator(token, "bs-coordinator",
                                   ["--no-db", "--node-timeout", "60",
                                    "--timeout-grace", "1"])
    if not port:
        return
    addr = "127.0.0.1:%d" % port
    nodes = {}
    for n in ("b1", "b2"):
        # The node's commands inherit its environment: they know their node.
        os.environ["ALB_IT_NODE"] = n
        try:
            nodes[n] = start(["node", "--coordinator", addr,
                              "--cores", "1", "--slots", "1", "--memory", "8",
                              "--token-file", token, "--name", n,
                              "--reconnect-timeout", "30"], n)
        finally:
            del os.environ["ALB_IT_NODE"]
        write("pid-" + n, str(nodes[n].pid), 0o644)
    if not wait_for(lambda: read("bs-coordinator").count("registered in slot") >= 2,
                    15, "both nodes"):
        return
    # The first attempt stops the node it runs on (mkdir is atomic: only
    # one attempt does); a retry just passes.
    t = {"test_id": "stops-its-node", "timeout": 1.0, "retries": 1,
         "expected_duration": 0.5,
         "command": ["sh", "-c", 'if mkdir stopped-once 2>/dev/null; then '
                     # A moment first, so the start notice is out before the
                     # node stops (else only --node-timeout finds it); then
                     # it ends only once every thread of the node stopped,
                     # so the node cannot report it in between.
                     'sleep 0.3; p=$(cat pid-$ALB_IT_NODE); kill -STOP $p; '
                     'for t in /proc/$p/task/*/stat; do '
                     'until [ "$(sed "s/.*) //" $t | cut -c1)" = T ]; do :; done; '
                     'done; fi; echo ran-on-$ALB_IT_NODE']}
    f = write("stops.toml", toml_tests([t]), 0o644)
    out = path("stops.json")
    t0 = time.time()
    r = subprocess.run([ALB, "submit", "--coordinator", addr, "--token-file",
                        token, "--output", out, f], capture_output=True,
                       text=True, timeout=60, cwd=TMP)
    took = time.time() - t0
    stopped = [n for n in nodes if os.path.exists("/proc/%d" % nodes[n].pid)
               and open("/proc/%d/stat" % nodes[n].pid).read().split(") ")[1][0] == "T"]
    check(len(stopped) == 1, "the test stopped the node it ran on (%s)" % stopped)
    check(r.returncode == 0, "the test completed on its retry (exit %d: %s)"
          % (r.returncode, r.stderr.strip()[-300:]))
    rows = []
    if os.path.exists(out):
        with open(out) as fh:
            rows = json.load(fh)["results"]
    x = rows[0] if rows else {}
    other = [n for n in nodes if n not in stopped]
    check(x.get("attempts") == 2 and other
          and x.get("worker_id", "").startswith(other[0] + "/"),
          "second attempt ran on the other node (%s, attempts %s)"
          % (x.get("worker_id"), x.get("attempts")))
    check(took < 15, "given up and retried well before --node-timeout (%.1f s)" % took)
    check("test 'stops-its-node' overdue: no report from worker" in read("bs-coordinator"),
          "the coordinator logs the overdue attempt")
    # Woken, the stopped node reports its first attempt: stale, it counts
    # for nothing.
    for n in stopped:
        os.kill(nodes[n].pid, signal.SIGCONT)
    check(metric(url, "alb_tests_completed_total") == 1,
          "alb_tests_completed_total is 1")


def test_client_expiry(token):
    """A client that vanishes without closing (SIGSTOP of `alb submit`):
    its session expires after --client-timeout; its test still finishes and
    is journaled, and the same submission again gets that outcome from the
    journal instead of a second run."""
    db = path("ce.db")
    coord, port, url = coordinator(token, "ce-coordinator",
                                   ["--db-path", db, "--client-timeout", "2"])
    if not port:
        return
    addr = "127.0.0.1:%d" % port
    start(["node", "--coordinator", addr, "--cores", "1",
           "--slots", "1", "--memory", "8", "--token-file", token, "--name",
           "c1", "--reconnect-timeout", "30"], "c1")
    if not wait_for(lambda: "registered in slot" in read("ce-coordinator"), 15,
                    "the node"):
        return
    t = {"test_id": "outlives-its-client", "expected_duration": 1.0,
         "command": ["sh", "-c", 'touch started/ce.$$; '
                     'while [ ! -e ce-gate ]; do sleep 0.05; done; echo kept']}
    f = write("ce.toml", toml_tests([t]), 0o644)
    sub = subprocess.Popen([ALB, "submit", "--coordinator", addr, "--token-file",
                            token, "--output", path("ce.json"), f],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, cwd=TMP)
    if not wait_for(lambda: any(tid == "ce" for tid, _ in started()), 15,
                    "the test to start"):
        sub.kill()
        return
    os.kill(sub.pid, signal.SIGSTOP)
    line = "expired: no heartbeat for 2 s"
    wait_for(lambda: line in read("ce-coordinator"), 10,
             "the client's session to expire")
    check(line in read("ce-coordinator"),
          "coordinator logs that the stopped client's session expired")
    write("ce-gate", "")

    def journaled():
        con = sqlite3.connect(db)
        try:
            row = con.execute("SELECT status, output_tail FROM journal_tests "
                              "WHERE test_id = 'outlives-its-client'").fetchone()
        finally:
            con.close()
        return row if row and row[0] else None
    wait_for(lambda: journaled() is not None, 15, "the test's outcome in the journal")
    row = journaled()
    check(row is not None and row[0] == "completed" and "kept" in (row[1] or ""),
          "the test still finished and was journaled (%s)" % (row,))
    os.kill(sub.pid, signal.SIGCONT)
    try:
        sub.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        sub.kill()
        sub.communicate()
    check(sub.returncode not in (0, None),
          "the woken client ends instead of waiting forever (exit %s)" % sub.returncode)
    runs = sum(1 for tid, _ in started() if tid == "ce")
    r = subprocess.run([ALB, "submit", "--coordinator", addr, "--token-file",
                        token, "--output", path("ce2.json"), f],
                       capture_output=True, text=True, timeout=60, cwd=TMP)
    check(r.returncode == 0, "the same submission again exits 0 (%s)"
          % r.stderr.strip()[-300:])
    check("1 answered from the journal" in read("ce-coordinator"),
          "answered from the journal")
    check(sum(1 for tid, _ in started() if tid == "ce") == runs,
          "the test did not run a second time")


def main():
    token = write("token", "%032x\n" % random.getrandbits(128))
    os.mkdir(path("started"))
    test_stopped_node(token)
    test_backstop(token)
    test_client_expiry(token)


finish(main, "liveness_it: PASSED")
