#!/usr/bin/env python3
"""The operations integration test of issue 14 (README "Day-to-day
operation"): one 2-node loopback cluster driven the way an operator does.

A coordinator (join token, operator token, journal) and two nodes of four
slots each, each with its own --log-dir. Alice's `alb submit --junit`
sends 200 tests: 5 long ones that run until cancelled (each writes its
shell's pid and a child's pid), 50 queued behind a concurrency key one of
them holds, one that needs 64 GB (no node has it), one that writes 1 MiB of
random bytes to stdout (and their sha256 to a file), one that prints a line
every 50 ms for `--follow`, two that fail, and 140 short ones. Then:
- `alb status --json` (operator token) shows both nodes, running tests with
  their node, waiting ones with reasons (busy, concurrency key) and the
  64 GB test as unplaceable within 2 s of its submission;
- `alb cancel` of the 50 queued and 5 running (alice's key): all end
  `cancelled`, no process of theirs is left (pids, children, process
  groups), none of the queued ones started; mallory (join token, her own
  key) may not cancel the unplaceable test, the operator token may;
- `alb logs` returns the 1 MiB output byte for byte (sha256 against what
  the test wrote), `--follow` prints a running test's output until it ends,
  `--stream stderr` the stderr; mallory is refused (exit 2), the operator
  may read it; an unknown id is exit 2; a pruned log (--log-keep) and a log
  on a node that is gone are exit 1 with their reason;
- the `--junit` file, read by junit2json (tests/junit_js), has 200
  testcases, the failures and skipped (cancelled) tests and the times of
  the run's own outcome file;
- a suite with depends_on is refused at load (exit 2): alb does not order
  tests, so there is no "waiting for dependency" reason.
Bounded (about 20 s) and event-driven: every wait is for a file, a line or
a process, polled with a deadline.

Usage: ops_it.py PATH/TO/alb TESTS_DIR
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time

from it_support import ALB, PROCS, TMP, finish, check, path, read, start, wait_for, write
from it_support import toml_tests, alive, group_members, pid_of
from it_support import key_gated_tests, long_procs

TESTS_DIR = sys.argv[2] if len(sys.argv) > 2 else os.path.dirname(
    os.path.abspath(__file__))

MIB = 1 << 20


MB_CMD = ("import hashlib, os, sys\n"
          "d = os.urandom(%d)\n"
          "sys.stdout.buffer.write(d)\n"
          "sys.stdout.flush()\n"
          "open(%r, 'w').write(hashlib.sha256(d).hexdigest())\n"
          % (MIB, path("mb.sha256")))

TICKS = 40


class Cluster:
    def __init__(self):
        self.token = write("token", "ops-it-join-token-0123456789abcdef\n")
        self.optoken = write("operator-token",
                             "ops-it-operator-token-9876543210fedcba\n")
        start(["coordinator", "--port", "0", "--db-path", path("alb.db"),
               "--token-file", self.token, "--operator-token-file",
               self.optoken], "coordinator")
        self.port = None

    def bound(self):
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)",
                      read("coordinator", "out"))
        if m:
            self.port = int(m.group(1))
        return self.port is not None

    def addr(self):
        return "127.0.0.1:%d" % self.port

    def client(self, cmd, who, *args):
        # alice and mallory hold the join token, each her own key; "ops"
        # holds the operator token.
        token = self.optoken if who == "ops" else self.token
        key = [] if cmd == "status" else ["--client-key", path(who + ".key")]
        return [ALB, cmd, "--coordinator", self.addr(), "--token-file",
                token] + key + list(args)

    def run(self, cmd, who, *args, timeout=60, binary=False):
        return subprocess.run(self.client(cmd, who, *args),
                              capture_output=True, text=not binary, cwd=TMP,
                              timeout=timeout)


def suite():
    quick = ["quick-%d" % i for i in range(140)]
    tests, long_ids, gated = key_gated_tests()
    tests.append({"test_id": "big", "priority": 1, "minimum_memory": 64,
                  "command": ["true"]})
    # On n1, which keeps every log (n2 keeps 5).
    tests.append({"test_id": "mb", "priority": 2, "tags": ["keeps-logs"],
                  "command": ["python3", "-c", MB_CMD]})
    # Also on n1: on n2 a follower started late under load found the
    # ticker's log already pruned (n2 keeps 5) and the check failed.
    tests.append({"test_id": "ticker", "priority": 2, "tags": ["keeps-logs"],
                  "command": [
                      "sh", "-c", "i=0; while [ $i -lt %d ]; do echo tick $i; "
                      "i=$((i+1)); sleep 0.05; done" % TICKS]})
    for i in range(2):
        # Last (priority 5): still among the 5 logs n2 keeps at the end.
        tests.append({"test_id": "fails-%d" % i, "priority": 5, "command": [
            "sh", "-c", "echo out-%d; echo boom-%d >&2; exit 3" % (i, i)]})
    for t in quick:
        tests.append({"test_id": t, "priority": 4,
                      "command": ["sh", "-c", "sleep 0.05; echo %s" % t]})
    return tests, long_ids, gated, quick


def main():
    os.makedirs(path("pids"))
    c = Cluster()
    if not wait_for(c.bound, 15, "the coordinator's port"):
        return
    # n2 keeps only the newest 5 logs: the early ones are pruned by the
    # end, which `alb logs` must say.
    for n, keep, tags in (("n1", "1000", ["--tags", "keeps-logs"]),
                          ("n2", "5", [])):
        start(["node", "--coordinator", c.addr(), "--slots", "4", "--cores",
               "4", "--memory", "8", "--token-file", c.token, "--name", n,
               "--log-dir", path("logs-" + n), "--log-keep", keep,
               "--reconnect-timeout", "0"] + tags, n)
    if not wait_for(lambda: read("coordinator").count("registered in slot") >= 2,
                    20, "both nodes' workers"):
        return

    tests, long_ids, gated, quick = suite()
    check(len(tests) == 200, "200 tests in the suite (%d)" % len(tests))
    f = write("suite.toml", toml_tests(tests), 0o644)
    out_json, out_xml = path("suite.json"), path("suite.xml")
    sub = subprocess.Popen(
        c.client("submit", "alice", "--output", out_json, "--junit", out_xml, f),
        stdout=subprocess.PIPE, stderr=open(path("submit.err"), "w"),
        text=True, cwd=TMP)
    PROCS.append(sub)
    if not wait_for(lambda: "200 tests submitted" in read("submit"), 20,
                    "the submission"):
        return
    # Follows the ticker (about 2 s of output) to its end.
    follow = subprocess.Popen(c.client("logs", "alice", "--follow", "ticker"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              cwd=TMP)
    PROCS.append(follow)

    # -- status: nodes, running, waiting with reasons, unplaceable at once --
    r = c.run("status", "ops", "--json")
    s = json.loads(r.stdout) if r.returncode == 0 else {}
    check(r.returncode == 0 and s.get("view") == "all",
          "alb status --json with the operator token lists every test (exit %d%s)"
          % (r.returncode, r.stderr.strip()[-300:]))
    check(sorted(n["name"] for n in s.get("nodes", [])) == ["n1", "n2"]
          and all(n.get("address") and n.get("slots") == 4
                  for n in s.get("nodes", [])),
          "status: both nodes with address and 4 slots")
    waiting = {w["test_id"]: w for w in s.get("waiting", [])}
    big = waiting.get("big", {})
    check(big.get("reason_kind") == "unplaceable"
          and big.get("reason") == "no node has memory >= 64 GB"
          and big.get("waited_seconds", 99) < 2.0,
          "status: 'big' is unplaceable within 2 s of submission (%s)" % big)
    kinds = {w["reason_kind"] for w in s.get("waiting", [])}
    check("busy" in kinds or "concurrency_key" in kinds,
          "status: other tests wait with reasons (%s)" % sorted(kinds))
    # The long tests hold their slots until cancelled.
    if not wait_for(lambda: all(pid_of(t) for t in long_ids), 30,
                    "the 5 long tests running"):
        return
    r = c.run("status", "ops", "--json")
    s = json.loads(r.stdout) if r.returncode == 0 else {}
    running = {x["test_id"]: x for x in s.get("running", [])}
    check(all(running.get(t, {}).get("node") in ("n1", "n2")
              and running[t].get("state") == "running" for t in long_ids),
          "status: the 5 long tests are running, each with its node")
    # Once the short tests have left free slots, the gated ones wait for
    # the key (before, they wait for a slot like the rest).
    seen = {}

    def gated_on_key():
        r = c.run("status", "ops", "--json")
        s = json.loads(r.stdout) if r.returncode == 0 else {}
        seen["waiting"] = {w["test_id"]: w for w in s.get("waiting", [])}
        return all(seen["waiting"].get(t, {}).get("reason_kind")
                   == "concurrency_key" for t in gated)
    wait_for(gated_on_key, 30, "the gated tests to wait for the key")
    g0 = seen.get("waiting", {}).get("gated-0", {})
    check(gated_on_key() and g0.get("reason")
          == "concurrency key 'gate' is held by a running test",
          "status: the 50 gated tests wait for the concurrency key (%s)" % g0)

    # -- cancel 50 queued and 5 running --------------------------------------
    procs = long_procs(long_ids)
    check(all(alive(p) and alive(ch) for p, _, ch in procs.values()),
          "the long tests' shells and children are alive before the cancel")
    r = c.run("cancel", "alice", "--json", *(gated + long_ids))
    doc = json.loads(r.stdout or "{}")
    check(r.returncode == 0 and sorted(doc.get("cancelled", []))
          == sorted(gated + long_ids),
          "alb cancel of 50 queued and 5 running: all 55 cancelled (exit %d)"
          % r.returncode)

    def gone():
        return all(not alive(p) and not alive(ch) and not group_members(g)
                   for p, g, ch in procs.values())
    wait_for(gone, 10, "the cancelled tests' processes to be gone")
    check(gone(), "no process of the 5 cancelled running tests is left "
          "(shells, children, process groups)")

    # -- operator cancel: mallory may not, the operator may -----------------
    r = c.run("cancel", "mallory", "--json", "big")
    doc = json.loads(r.stdout or "{}")
    check(r.returncode == 1 and doc.get("refused") == ["big"],
          "mallory's cancel of alice's 'big' is refused (exit %d: %s)"
          % (r.returncode, r.stdout.strip()))
    r = c.run("cancel", "ops", "--json", "big")
    doc = json.loads(r.stdout or "{}")
    check(r.returncode == 0 and doc.get("cancelled") == ["big"],
          "the operator token cancels alice's 'big' (exit %d: %s %s)"
          % (r.returncode, r.stdout.strip(), r.stderr.strip()))
    check("cancelled 1 tests on an operator's request" in read("coordinator"),
          "the coordinator logs the operator's cancel")

    # -- the run ends --------------------------------------------------------
    try:
        sub.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        check(False, "the submitter finished")
        return
    check(sub.returncode == 1, "alb submit exits 1 (2 failed, 56 cancelled; "
          "got %d)" % sub.returncode)
    check(not any(os.path.exists(path("pids/" + t)) for t in gated),
          "none of the 50 cancelled queued tests ever started")
    with open(out_json) as fh:
        res = {x["test_id"]: x for x in json.load(fh)["results"]}
    check(len(res) == 200, "outcome file: 200 outcomes (%d)" % len(res))
    check(all(res.get(t, {}).get("status") == "cancelled"
              for t in gated + long_ids + ["big"]),
          "outcome file: the 55 and 'big' are cancelled")

    # -- alb logs ------------------------------------------------------------
    try:
        fout, ferr = follow.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        check(False, "alb logs --follow ended with its test")
        fout, ferr = b"", b""
    want = "".join("tick %d\n" % i for i in range(TICKS)).encode()
    check(follow.returncode == 0 and fout == want,
          "alb logs --follow printed the ticker's %d lines as they came and "
          "ended with it (exit %s, %d bytes: %s)"
          % (TICKS, follow.returncode, len(fout), ferr.decode()[-300:]))
    t0 = time.time()
    r = c.run("logs", "alice", "mb", binary=True)
    dt = time.time() - t0
    with open(path("mb.sha256")) as fh:
        want_sha = fh.read().strip()
    got_sha = hashlib.sha256(r.stdout).hexdigest()
    check(r.returncode == 0 and len(r.stdout) == MIB and got_sha == want_sha,
          "alb logs returns the 1 MiB output byte for byte (%d bytes, sha256 "
          "%s, %s; %.2f s)" % (len(r.stdout), "equal" if got_sha == want_sha
                               else "DIFFERS", r.stderr.decode()[-200:], dt))
    r = c.run("logs", "alice", "--stream", "stderr", "fails-1")
    check(r.returncode == 0 and r.stdout == "boom-1\n",
          "alb logs --stream stderr prints the stderr (%r)" % r.stdout)
    r = c.run("logs", "mallory", "mb", binary=True)
    check(r.returncode == 2 and r.stdout == b""
          and b"another client's (test 'mb')" in r.stderr,
          "mallory's alb logs of alice's test is refused, exit 2 (%d: %s)"
          % (r.returncode, r.stderr.decode().strip()))
    # Written once the coordinator's middleman named the peer.
    check(wait_for(lambda: "refused log of test 'mb' from 127.0.0.1"
                   in read("coordinator"), 10, "the refusal's log line"),
          "the refusal is logged with the peer's address")
    r = c.run("logs", "ops", "mb", binary=True)
    check(r.returncode == 0 and hashlib.sha256(r.stdout).hexdigest() == want_sha,
          "the operator token reads any test's log")
    r = c.run("logs", "alice", "no-such-test")
    check(r.returncode == 2 and "no such test known to the coordinator "
          "(test 'no-such-test')" in r.stderr,
          "an unknown id: exit 2 (%d: %s)" % (r.returncode, r.stderr.strip()))
    # n2 kept only its newest 5 logs: the first test it finished is pruned,
    # the last one kept.
    printed = dict({t: t + "\n" for t in quick},
                   **{"fails-%d" % i: "out-%d\n" % i for i in range(2)})
    on_n2 = sorted((t for t, x in res.items()
                    if x.get("node") == "n2" and t in printed),
                   key=lambda t: res[t].get("ended_at") or "")
    check(len(on_n2) > 8, "n2 ran more tests than it keeps logs of (%d)"
          % len(on_n2))
    if on_n2:
        first, last = on_n2[0], on_n2[-1]
        r = c.run("logs", "alice", first)
        check(r.returncode == 1 and r.stdout == ""
              and "keeps no log of test '%s'" % first in r.stderr,
              "a pruned log: exit 1 with the reason (%d: %s)"
              % (r.returncode, r.stderr.strip()))
        r = c.run("logs", "alice", last)
        check(r.returncode == 0 and r.stdout == printed[last],
              "the last log n2 wrote is kept and printed (%r)" % r.stdout)
        n2 = [p for p in PROCS if getattr(p, "log_name", "") == "n2"][0]
        n2.terminate()
        n2.wait(timeout=20)
        wait_for(lambda: "node 'n2' at" in read("coordinator")
                 and " left (" in read("coordinator"), 10, "n2 to leave")
        r = c.run("logs", "alice", last)
        check(r.returncode == 1 and "node 'n2', which ran test" in r.stderr
              and "is not connected" in r.stderr,
              "a log on a node that is gone: exit 1 with the reason (%d: %s)"
              % (r.returncode, r.stderr.strip()))

    # -- no dependency reason: depends_on is refused, not ignored -----------
    f = write("deps.toml", '[[tests]]\ntest_id = "a"\ncommand = ["true"]\n'
              '[[tests]]\ntest_id = "b"\ncommand = ["true"]\n'
              'depends_on = ["a"]\n', 0o644)
    r = c.run("submit", "alice", f)
    check(r.returncode == 2 and "unknown key 'depends_on'" in r.stderr
          and "not supported" in r.stderr,
          "a suite with depends_on is refused at load, exit 2 (%d: %s)"
          % (r.returncode, r.stderr.strip()[-200:]))

    # -- JUnit, read by a real consumer, against the run's own records -------
    node = shutil.which("node")
    parse = os.path.join(TESTS_DIR, "junit_js", "parse.mjs")
    modules = os.path.join(TESTS_DIR, "junit_js", "node_modules", "junit2json")
    check(node is not None and os.path.isdir(modules),
          "junit: node and junit2json present (run 'npm ci' in tests/junit_js)")
    if node and os.path.isdir(modules):
        p = subprocess.run([node, parse, out_xml], capture_output=True, text=True)
        check(p.returncode == 0, "junit: junit2json reads it (%s)" % p.stderr[-300:])
        if p.returncode == 0:
            j = json.loads(p.stdout)
            failed = [t for t, x in res.items() if x["status"] == "failed"]
            cancelled = [t for t, x in res.items() if x["status"] == "cancelled"]
            check(j["tests"] == 200 and len(j["cases"]) == 200,
                  "junit: 200 testcases (%s, %d)" % (j["tests"], len(j["cases"])))
            check(j["failures"] == 2 and j["errors"] == 0
                  and sorted(failed) == ["fails-0", "fails-1"],
                  "junit: the 2 failures, no errors (%s, %s; %s)"
                  % (j["failures"], j["errors"], failed))
            check(j["skipped"] == 56 and len(cancelled) == 56,
                  "junit: the 56 cancelled tests skipped (%s)" % j["skipped"])
            by = {c2["name"]: c2 for c2 in j["cases"]}
            bad = [t for t, x in res.items()
                   if t not in by or abs(by[t]["time"] - x["duration_seconds"]) > 0.001]
            check(not bad, "junit: every testcase's time is the outcome's "
                  "duration_seconds (%d differ: %s)" % (len(bad), bad[:5]))


finish(main, "all ops checks passed", ["coordinator", "n1", "n2", "submit"])
