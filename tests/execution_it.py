#!/usr/bin/env python3
"""Integration test of how alb runs real tests on real processes (loopback).

- Rebalancing in a cluster: tests queued on a one-slot node move to a node
  that joins later (migration or stealing, seen in /metrics), and every test
  ends exactly once.
- Containment: a node SIGKILLed mid-test leaves no process of that test
  alive, not even a `setsid` grandchild; the same after a timeout.
- Whole-node resources: an 8 GB node with 2 slots runs a 6 GB test, and
  two 3 GB tests at once.
- Strict test files: a mistyped key, `timeout = 1e10` and a test without
  a command are refused by `alb submit` and `alb run` with exit 2.

Every process is cleaned up; the run is bounded (well under a minute).

Usage: execution_it.py PATH/TO/alb
"""

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

from it_support import ALB, FAILURES, PROCS, TMP, finish, check, read, start, wait_for, write


def toml_tests(tests):
    out = []
    for t in tests:
        out.append("[[tests]]")
        for k, v in t.items():
            out.append("%s = %s" % (k, json.dumps(v)))
    return "\n".join(out) + "\n"


def results_of(path):
    with open(path) as f:
        return json.load(f)["results"]


def alive(pid):
    """Whether pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"


def coordinator(token, name, extra=()):
    p = start(["coordinator", "--port", "0", "--no-db", "--token-file", token]
              + list(extra), name)
    found = {}

    def bound():
        text = read(name, "out")
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", text)
        if m:
            found["port"] = int(m.group(1))
        m = re.search(r"metrics: (http://\S+)", text)
        if m:
            found["metrics"] = m.group(1)
        return "port" in found and ("metrics" in found or not extra)
    wait_for(bound, 15, "the coordinator's port")
    return p, found.get("port"), found.get("metrics")


def node(addr, token, name, cores, extra=()):
    return start(["node", "--coordinator", addr, "--workers", "1", "--cores",
                  str(cores), "--memory", "8", "--token-file", token, "--name",
                  name, "--reconnect-timeout", "0"] + list(extra), name)


def registered(name, count=1):
    return lambda: read(name, "err").count("registered") >= count or \
        read(name, "out").count("registered") >= count


def submit(file, port, token, output, timeout=60):
    return subprocess.Popen(
        [ALB, "submit", "--coordinator", "127.0.0.1:%d" % port, "--token-file",
         token, "--output", output, file],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=TMP)


def metric(url, name):
    try:
        text = urllib.request.urlopen(url, timeout=5).read().decode()
    except OSError:
        return None
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name):
            total += float(line.split()[-1])
    return total


def test_rebalancing(token):
    coord, port, url = coordinator(token, "rb-coordinator",
                                   ["--metrics-port", "0"])
    if not port or not url:
        return
    addr = "127.0.0.1:%d" % port
    slow = node(addr, token, "rb-slow", 1)
    wait_for(lambda: "registered" in read("rb-coordinator", "err")
             + read("rb-coordinator", "out"), 15, "the first node")
    # Three 1.5 s tests on one slot: one runs, the others wait in the
    # worker's local queue (its prefetch) on the slow node, none centrally,
    # so only a move brings them to the node that joins next.
    tests = [{"test_id": "rb-%d" % i, "command": ["sleep", "1.5"],
              "expected_duration": 1.5} for i in range(3)]
    f = write("rb.toml", toml_tests(tests))
    out = os.path.join(TMP, "rb.json")
    sub = submit(f, port, token, out)
    time.sleep(0.5)
    fast = node(addr, token, "rb-fast", 2)
    try:
        sub.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        sub.kill()
        sub.communicate()
    res = results_of(out) if os.path.exists(out) else []
    ids = [r["test_id"] for r in res]
    check(sorted(ids) == sorted(t["test_id"] for t in tests),
          "rebalancing: every test ended exactly once (%d outcomes)" % len(ids))
    check(all(r["status"] == "completed" for r in res),
          "rebalancing: all completed")
    moved = (metric(url, "alb_tests_migrated_total") or 0) + \
        (metric(url, "alb_tests_stolen_total") or 0)
    check(moved > 0, "rebalancing: migrated + stolen = %g > 0 in /metrics"
          % moved)
    on_fast = sum(1 for r in res if r.get("worker_id", "").startswith("rb-fast"))
    check(on_fast > 0, "rebalancing: %d tests ran on the node that joined "
          "later" % on_fast)
    for p in (slow, fast, coord):
        p.terminate()
    for p in (slow, fast, coord):
        p.wait(timeout=15)


def test_node_sigkill_leaves_nothing(token):
    coord, port, _ = coordinator(token, "kill-coordinator")
    if not port:
        return
    addr = "127.0.0.1:%d" % port
    n = node(addr, token, "kill-node", 2)
    wait_for(lambda: "registered" in read("kill-coordinator", "err")
             + read("kill-coordinator", "out"), 15, "the node")
    pids = os.path.join(TMP, "pids")
    os.mkdir(pids)
    # A background child, and a grandchild in a session of its own: both
    # outlive their parent shell unless alb contains them.
    script = ("sleep 305 & echo $! > %s/bg; "
              "setsid sleep 306 & echo $! > %s/setsid; "
              "echo $$ > %s/leader; wait") % (pids, pids, pids)
    f = write("kill.toml", toml_tests([{"test_id": "k", "command":
                                        ["sh", "-c", script]}]))
    sub = submit(f, port, token, os.path.join(TMP, "kill.json"))
    files = [os.path.join(pids, x) for x in ("bg", "setsid", "leader")]
    if not wait_for(lambda: all(os.path.exists(x) and open(x).read().strip()
                                for x in files), 20, "the test's processes"):
        sub.kill()
        return
    procs = [int(open(x).read()) for x in files]
    check(all(alive(p) for p in procs), "sigkill: the test's processes run")
    n.send_signal(signal.SIGKILL)
    n.wait(timeout=10)
    gone = wait_for(lambda: not any(alive(p) for p in procs), 10,
                    "the test's processes to end")
    check(gone, "sigkill: no process of the test outlives its node "
          "(leader, background child, setsid grandchild)")
    for p in procs:
        if alive(p):
            os.kill(p, signal.SIGKILL)
    sub.kill()
    sub.communicate()
    coord.terminate()
    coord.wait(timeout=15)


def test_timeout_kills_setsid_grandchild(token):
    coord, port, _ = coordinator(token, "to-coordinator")
    if not port:
        return
    addr = "127.0.0.1:%d" % port
    n = node(addr, token, "to-node", 1)
    pidfile = os.path.join(TMP, "to-setsid")
    script = "setsid sleep 307 & echo $! > %s; wait" % pidfile
    f = write("to.toml", toml_tests([{"test_id": "t", "timeout": 1.0,
                                      "command": ["sh", "-c", script]}]))
    out = os.path.join(TMP, "to.json")
    sub = submit(f, port, token, out)
    sub.communicate(timeout=60)
    res = results_of(out) if os.path.exists(out) else []
    check(len(res) == 1 and res[0].get("timed_out"), "timeout: the test timed out")
    pid = int(open(pidfile).read()) if os.path.exists(pidfile) else -1
    check(pid > 0 and wait_for(lambda: not alive(pid), 10, "the grandchild"),
          "timeout: its setsid grandchild is gone too")
    if pid > 0 and alive(pid):
        os.kill(pid, signal.SIGKILL)
    n.terminate()
    coord.terminate()
    n.wait(timeout=15)
    coord.wait(timeout=15)


def test_strict_files(token):
    coord, port, _ = coordinator(token, "strict-coordinator")
    if not port:
        return
    cases = {
        "typo": ('[[tests]]\ntest_id = "a"\ncomand = ["false"]\n',
                 ["strict-typo.toml:3:1: unknown key 'comand'",
                  "did you mean 'command'?"]),
        "huge-timeout": ('[[tests]]\ntest_id = "a"\ncommand = ["sleep", "3"]'
                         '\ntimeout = 1e10\n', ["timeout", "too long"]),
        "no-command": ('[[tests]]\ntest_id = "a"\n', ["no 'command'"]),
    }
    for name, (text, parts) in cases.items():
        f = write("strict-%s.toml" % name, text)
        out = os.path.join(TMP, "strict-%s.json" % name)
        r = subprocess.run([ALB, "submit", "--coordinator", "127.0.0.1:%d" % port,
                            "--token-file", token, "--output", out, f],
                           capture_output=True, text=True, timeout=30, cwd=TMP)
        check(r.returncode == 2 and all(x in r.stderr for x in parts)
              and not os.path.exists(out),
              "strict: alb submit refuses %s with exit 2 (%r)"
              % (name, r.stderr.strip()))
        r = subprocess.run([ALB, "run", "--nodes", "0", f], capture_output=True,
                           text=True, timeout=30, cwd=TMP)
        check(r.returncode == 2 and all(x in r.stderr for x in parts),
              "strict: alb run refuses %s with exit 2" % name)
    coord.terminate()
    coord.wait(timeout=15)


def test_whole_node_pool(token):
    coord, port, _ = coordinator(token, "pool-coordinator")
    if not port:
        return
    addr = "127.0.0.1:%d" % port
    # 8 GB and 2 slots in one pool: a 6 GB test fits, and two 3 GB tests
    # run at the same time (each writes a file the other waits for).
    n = start(["node", "--coordinator", addr, "--slots", "2", "--cores", "2",
               "--memory", "8", "--token-file", token, "--name", "pool-node",
               "--reconnect-timeout", "0"], "pool-node")
    meet = os.path.join(TMP, "meet")
    os.mkdir(meet)
    both = ("touch %s/$T; for i in $(seq 100); do "
            "[ -e %s/a ] && [ -e %s/b ] && exit 0; sleep 0.05; done; exit 1"
            % (meet, meet, meet))
    tests = [{"test_id": "big", "minimum_memory": 6, "wait_limit": 20,
              "command": ["true"]},
             {"test_id": "half-a", "minimum_memory": 3, "env": {"T": "a"},
              "command": ["sh", "-c", both]},
             {"test_id": "half-b", "minimum_memory": 3, "env": {"T": "b"},
              "command": ["sh", "-c", both]}]
    out_lines = []
    for t in tests:
        out_lines.append("[[tests]]")
        for k, v in t.items():
            if isinstance(v, dict):
                out_lines.append("%s = { %s }" % (k, ", ".join(
                    "%s = %s" % (a, json.dumps(b)) for a, b in v.items())))
            else:
                out_lines.append("%s = %s" % (k, json.dumps(v)))
    f = write("pool.toml", "\n".join(out_lines) + "\n")
    out = os.path.join(TMP, "pool.json")
    sub = submit(f, port, token, out)
    try:
        sub.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        sub.kill()
        sub.communicate()
    res = {r["test_id"]: r for r in results_of(out)} if os.path.exists(out) else {}
    check(res.get("big", {}).get("status") == "completed",
          "pool: an 8 GB node with 2 slots runs a 6 GB test")
    check(res.get("half-a", {}).get("status") == "completed"
          and res.get("half-b", {}).get("status") == "completed",
          "pool: two 3 GB tests run at once on its two slots")
    n.terminate()
    coord.terminate()
    n.wait(timeout=15)
    coord.wait(timeout=15)


def main():
    token = write("token", "%032x\n" % random.getrandbits(128))
    test_strict_files(token)
    test_whole_node_pool(token)
    test_rebalancing(token)
    test_node_sigkill_leaves_nothing(token)
    test_timeout_kills_setsid_grandchild(token)


if __name__ == "__main__":
    finish(main, "all execution checks passed")
