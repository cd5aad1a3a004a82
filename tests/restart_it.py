#!/usr/bin/env python3
"""Integration test: restarts always work (issue 12, "Restarts always work").

A coordinator with a database (history and journal in one SQLite file) is
SIGKILLed 50 times at random points while it writes -- it resumes a suite
of 600 short tests from its journal, runs them on one node and records
their outcomes every 20 ms -- and started again on the same database each
time. Checked:

- every restart comes up (never "cannot read", never exit 2);
- afterwards the journal, read directly with sqlite3 (an independent
  count), holds exactly one row per test, every one ended, and passes
  SQLite's integrity check;
- a client that submits the suite again gets exactly one outcome per test,
  all passed (answered from the journal);
- a crashed database with a hot journal (a writer SIGKILLed in the middle
  of a large transaction that had already spilled into the file) restarts:
  SQLite rolls the transaction back and the coordinator resumes the open
  tests in it.

Loopback only; about 50 s.

Usage: restart_it.py PATH/TO/alb
"""

import json
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import time

import it_support
from it_support import ALB, PROCS, TMP, check, finish, path, read, start, wait_for

KILLS = 50
TESTS = 600
JOURNAL_MAGIC = bytes.fromhex("d9d505f920a163d7")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def hot(db):
    """Whether DB has a hot rollback journal (what a killed writer leaves)."""
    try:
        with open(db + "-journal", "rb") as f:
            return f.read(8) == JOURNAL_MAGIC
    except OSError:
        return False


def journal_rows(db):
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=10)
    try:
        rows = con.execute(
            "SELECT test_id, state FROM journal_tests").fetchall()
        ok = con.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        con.close()
    return rows, ok


def open_count(db):
    try:
        con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=10)
        try:
            return con.execute("SELECT count(*) FROM journal_tests "
                               "WHERE state = 'open'").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return -1


def start_coordinator(db, port, name, token):
    p = start(["coordinator", "--port", str(port), "--db-path", db,
               "--token-file", token], name)
    up = wait_for(lambda: "listening on" in read(name, "out")
                  or p.poll() is not None, 20, name + " listening")
    return p, up and p.poll() is None


def crash_in_transaction(db):
    """A child process opens DB, rewrites every test's row in one large
    transaction with a tiny page cache (so SQLite spills changed pages into
    the file, behind a synced rollback journal) and SIGKILLs itself before
    committing: the crashed database the next opener must roll back."""
    code = (
        "import os, signal, sqlite3, sys\n"
        "con = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "con.execute('PRAGMA cache_size = 2')\n"
        "con.execute('BEGIN IMMEDIATE')\n"
        "con.execute(\"UPDATE journal_tests SET state = 'open', "
        "output_tail = hex(randomblob(3000))\")\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n")
    subprocess.run(["python3", "-c", code, db], timeout=30)


def main():
    token = it_support.write("token", "restart-it-token-0123456789\n")
    db = path("alb.db")
    port = free_port()
    addr = "127.0.0.1:%d" % port
    suite = it_support.write("suite.toml", "".join(
        '[[tests]]\ntest_id = "t%03d"\ncommand = ["sh", "-c", '
        '"sleep 0.05; echo t%03d >> runs.txt; echo ok"]\n' % (i, i)
        for i in range(TESTS)))
    coord, up = start_coordinator(db, port, "coord-0", token)
    check(up, "the first coordinator starts")
    if not up:
        return
    start(["node", "--coordinator", addr, "--slots", "4", "--cores", "4",
           "--memory", "8", "--token-file", token, "--name", "member",
           "--reconnect-timeout", "120"], "node")
    client = start(["submit", "--coordinator", addr, "--token-file", token,
                    suite], "client-0")
    if not wait_for(lambda: "accepted %d tests" % TESTS in read("coord-0"), 20,
                    "the suite accepted"):
        return
    rng = random.Random(12)
    refused = 0
    hot_seen = 0
    t0 = time.time()
    for k in range(KILLS):
        name = "coord-%d" % k
        if k > 0:
            coord, up = start_coordinator(db, port, name, token)
            if not up:
                refused += 1
                print("restart %d refused:\n%s" % (k, read(name)[-500:]))
                continue
        # Killed while it writes: the node back (its tests running, their
        # outcomes recorded every 20 ms), then a random moment.
        wait_for(lambda: re.search(r"node 'member' (re)?joined", read(name))
                 or open_count(db) == 0, 10, name + ": the node back")
        time.sleep(rng.uniform(0.0, 0.25))
        coord.send_signal(signal.SIGKILL)
        coord.wait()
        hot_seen += 1 if hot(db) else 0
        if k == 0:
            client.wait(timeout=30)
    print("%d kills in %.1f s; %d left a hot journal; %d tests still open"
          % (KILLS, time.time() - t0, hot_seen, open_count(db)), flush=True)
    check(refused == 0, "every restart came up (%d refused)" % refused)
    coord, up = start_coordinator(db, port, "coord-final", token)
    check(up, "the final restart comes up")
    wait_for(lambda: open_count(db) == 0, 60, "every test ended")
    rows, integrity = journal_rows(db)
    per_test = {}
    for test_id, state in rows:
        per_test.setdefault(test_id, []).append(state)
    twice = [t for t, s in per_test.items() if len(s) != 1]
    check(integrity == "ok", "the database passes integrity_check (%s)"
          % integrity)
    check(len(per_test) == TESTS and not twice
          and all(s == ["ended"] for s in per_test.values()),
          "the journal holds exactly one ended row per test (%d tests, %d "
          "with more rows, states %s)"
          % (len(per_test), len(twice),
             sorted({x for s in per_test.values() for x in s})))
    out = path("out.json")
    sub = subprocess.run([ALB, "submit", "--coordinator", addr, "--token-file",
                          token, "--output", out, suite],
                         capture_output=True, text=True, cwd=TMP, timeout=120)
    check(sub.returncode == 0, "a client submitting the suite again exits 0 "
          "(%d: %s)" % (sub.returncode, sub.stderr.strip()[-300:]))
    results = json.load(open(out))["results"] if os.path.exists(out) else []
    ids = [r["test_id"] for r in results]
    check(len(ids) == TESTS and len(set(ids)) == TESTS
          and all(r["status"] == "completed" for r in results),
          "it got exactly one outcome per test, all completed (%d outcomes, "
          "%d distinct)" % (len(ids), len(set(ids))))
    runs = open(path("runs.txt")).read().split() if os.path.exists(
        path("runs.txt")) else []
    print("tests ran %d times in all (%d again after a kill lost their "
          "outcome)" % (len(runs), len(runs) - len(set(runs))), flush=True)
    coord.send_signal(signal.SIGTERM)
    check(coord.wait(timeout=20) == 0, "the coordinator stops cleanly")

    # A preserved crashed database with its hot journal restarts.
    crashed = path("crashed.db")
    shutil.copy(db, crashed)
    committed, _ = journal_rows(crashed)
    crash_in_transaction(crashed)
    check(hot(crashed), "the crashed copy has a hot journal")
    c2, up = start_coordinator(crashed, free_port(), "coord-crashed", token)
    check(up, "a coordinator starts on the crashed database")
    if up:
        c2.send_signal(signal.SIGTERM)
        c2.wait(timeout=20)
    check(not hot(crashed), "its hot journal was rolled back")
    rows, integrity = journal_rows(crashed)
    check(integrity == "ok" and len(rows) == TESTS
          and sorted(rows) == sorted(committed)
          and not any(s == "open" for _, s in rows),
          "the crashed database holds what was committed (%s, %d rows, "
          "states %s)" % (integrity, len(rows), sorted({s for _, s in rows})))
    check("resumed" not in read("coord-crashed"),
          "nothing of the rolled-back transaction was resumed")


finish(main, "all restart checks passed", ["coord-final", "coord-crashed", "node"])
