#!/usr/bin/env python3
"""Integration test of `alb status` on a real 2-node loopback cluster.

A coordinator (join token, operator token, metrics port) and two node
processes; a client submits 200 short tests plus one that needs 64 GB (no
node has it). Then:
- `alb submit` names the unplaceable test with its reason at once;
- `alb status --json` with the operator token shows both nodes (address,
  slots, memory, last seen), running tests with their node, waiting tests
  with reasons, and the unplaceable one as such within 2 s of submission;
- a client with only the join token sees nodes and totals but none of the
  other client's tests (its view is "own");
- `alb status` (text) prints the sections; `--help` documents the kinds;
- /api/status on the metrics port is the same document, / is the page,
  /status.js its script, and any other path is 404.
Usage: status_it.py ALB_BINARY
"""

import json
import re
import subprocess
import time
import urllib.error
import urllib.request

from it_support import (ALB, TMP, check, coordinator_ports, finish, read, start,
                        wait_for, write)
from it_support import toml_tests


def status(port, token_file, text=False):
    args = [ALB, "status", "--coordinator", "127.0.0.1:%d" % port,
            "--token-file", token_file]
    if not text:
        args.append("--json")
    r = subprocess.run(args, capture_output=True, text=True, timeout=30, cwd=TMP)
    if r.returncode != 0:
        check(False, "alb status exited %d: %s" % (r.returncode, r.stderr.strip()))
        return None
    return r.stdout if text else json.loads(r.stdout)


def http(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode()


def main():
    token = write("token", "status-it-join-token-0123456789\n")
    optoken = write("operator-token", "status-it-operator-token-9876543210\n")
    start(["coordinator", "--port", "0", "--no-db", "--token-file", token,
           "--operator-token-file", optoken, "--metrics-port", "0"],
          "coordinator")
    ports = coordinator_ports(metrics=True)
    if ports is None:
        return
    port, mport = ports
    addr = "127.0.0.1:%d" % port
    for n in ("n1", "n2"):
        start(["node", "--coordinator", addr, "--cores", "2",
               "--memory", "8", "--token-file", token, "--name", n,
               "--reconnect-timeout", "0"], n)
    wait_for(lambda: read("coordinator").count("registered in slot") >= 2, 15,
             "two workers")

    # -- an idle cluster: both nodes, nothing waits ------------------------
    s = status(port, optoken)
    if s is None:
        return
    check([n["name"] for n in s["nodes"]] == ["n1", "n2"],
          "both nodes listed by name: %s" % [n["name"] for n in s["nodes"]])
    check(all(re.match(r"127\.0\.0\.1:\d+$", n["address"]) for n in s["nodes"]),
          "each node has its address: %s" % [n["address"] for n in s["nodes"]])
    check(all(n["slots"] == 2 and n["memory_gb"] == 8 for n in s["nodes"]),
          "2 slots and 8 GB per node")
    check(all(n["last_seen"] is not None and abs(n["last_seen"] - time.time()) < 60
              for n in s["nodes"]), "each node was heard from just now")
    check(s["view"] == "all", "the operator token lists every test")
    # Idle workers send nothing: an idle node's time moves with its
    # heartbeats (every 3 s at the default --node-timeout of 15 s).
    first = {n["name"]: n["last_seen"] for n in s["nodes"]}

    def heard_again():
        time.sleep(0.25)  # one client session per look, not 20 per second
        x = status(port, optoken)
        return x is not None and all(
            n["last_seen"] is not None and n["last_seen"] > first[n["name"]]
            for n in x["nodes"])
    check(wait_for(heard_again, 15, "a heartbeat to move last_seen"),
          "an idle node's last_seen moves with its heartbeats")

    # -- 200 tests and one that no node can hold ---------------------------
    suite = [{"test_id": "t%03d" % i, "command": ["sleep", "0.15"]}
             for i in range(200)]
    suite.append({"test_id": "big", "command": ["true"], "minimum_memory": 64,
                  "priority": 1, "wait_limit": 6})
    f = write("suite.toml", toml_tests(suite), 0o644)
    sub = start(["submit", "--coordinator", addr, "--token-file", token,
                 "--output", "suite.json", f], "submit")
    if not wait_for(lambda: "201 tests submitted" in read("submit"), 20,
                    "the submission"):
        return
    t_sub = time.time()
    # `alb submit` itself names it at once.
    wait_for(lambda: "waiting: big: no node has memory >= 64 GB" in read("submit"),
             2.0, "alb submit to name the unplaceable test")
    check(time.time() - t_sub < 2.0, "alb submit named it within 2 s (%.2f s)"
          % (time.time() - t_sub))
    t_ask = time.time() - t_sub
    s = status(port, optoken)
    t_seen = time.time() - t_sub
    if s is None:
        return
    waiting = {w["test_id"]: w for w in s["waiting"]}
    big = waiting.get("big")
    check(big is not None and big["reason_kind"] == "unplaceable"
          and big["reason"] == "no node has memory >= 64 GB",
          "status shows 'big' unplaceable: %s" % big)
    # The coordinator's own clock says when it showed it; the process
    # around it (start-up, connect) is printed for the record.
    check(big is not None and big["waited_seconds"] < 2.0,
          "... within 2 s of submission (coordinator showed it %.2f s after; "
          "alb status started at %.2f s, printed at %.2f s)"
          % (big["waited_seconds"] if big else -1, t_ask, t_seen))
    check(s["waiting"] and s["waiting"][0]["test_id"] == "big",
          "the queue is by priority (priority-1 'big' first)")
    busy = [w for w in s["waiting"] if w["reason_kind"] == "busy"]
    check(len(busy) > 50, "most of the suite waits because the nodes are busy "
          "(%d)" % len(busy))
    check(busy and busy[0]["reason"] == "all 2 workers that can hold it are busy "
          "(short of: a free slot)", "the busy reason: %s"
          % (busy[0]["reason"] if busy else None))
    running = [r for r in s["running"] if r["state"] == "running"]
    check(len(running) == 4 and {r["node"] for r in running} == {"n1", "n2"},
          "running tests name their node: %s" % [(r["test_id"], r["node"])
                                                  for r in running][:6])
    check(all(r["since"] <= s["time"] + 1 and r["seconds"] >= 0 for r in running),
          "running tests say since when")
    t = s["totals"]
    check(t["nodes"] == 2 and t["slots"] == 4 and t["busy_slots"] == 4
          and t["running"] == 4, "totals: 2 nodes, 4 of 4 slots busy: %s" % t)
    check(t["waiting"] + t["running"] + t["assigned"] + t["ended"] == 201,
          "totals add up to the 201 tests: %s" % t)
    check(t["unplaceable"] == 1, "one test unplaceable")

    # -- a client with the join token only sees its own (none) -------------
    mine = status(port, token)
    if mine is not None:
        check(mine["view"] == "own" and mine["waiting"] == []
              and mine["running"] == [], "a join-token client lists no "
              "other client's tests")
        check(mine["totals"]["waiting"] > 0 and len(mine["nodes"]) == 2,
              "... but sees nodes and totals")

    # -- the text form -------------------------------------------------------
    txt = status(port, optoken, text=True) or ""
    for section in ("NODES (2)", "WAITING (", "RUNNING (", "TOTALS:"):
        check(section in txt, "text output has " + section)
    check(re.search(r"big .* unplaceable: no node has memory >= 64 GB", txt)
          is not None, "text output gives big's reason")
    h = subprocess.run([ALB, "status", "--help"], capture_output=True, text=True)
    check(h.returncode == 0 and "--json" in h.stdout and "unplaceable" in h.stdout,
          "alb status --help documents --json and the reasons")

    # -- the same over HTTP ----------------------------------------------------
    base = "http://127.0.0.1:%d" % mport
    code, ctype, body = http(base + "/api/status")
    check(code == 200 and ctype.startswith("application/json"),
          "/api/status is JSON (%d %s)" % (code, ctype))
    if code == 200:
        api = json.loads(body)
        check(set(api) == set(s) and len(api["nodes"]) == 2
              and any(w["test_id"] == "big" for w in api["waiting"]),
              "/api/status has the same content as alb status --json")
    code, ctype, body = http(base + "/")
    check(code == 200 and ctype.startswith("text/html")
          and '<script src="/status.js">' in body, "/ is the status page")
    code, ctype, body = http(base + "/status.js")
    check(code == 200 and "/api/status" in body and "innerHTML" not in body,
          "/status.js polls /api/status and writes no HTML from data")
    for bad in ("/nope", "/api/status/x", "/status.js.map", "/..%2fetc/passwd"):
        code, _, _ = http(base + bad)
        check(code == 404, "%s is 404 (%d)" % (bad, code))
    code, _, body = http(base + "/metrics")
    check(code == 200 and "alb_" in body, "/metrics still serves the metrics")

    # -- the suite ends: the unplaceable test fails after its wait limit --------
    try:
        sub.wait(timeout=60)
    except subprocess.TimeoutExpired:
        check(False, "alb submit did not finish")
        return
    check(sub.returncode == 1, "alb submit exits 1 (big failed): %d" % sub.returncode)
    with open(TMP + "/suite.json") as fh:
        res = {r["test_id"]: r for r in json.load(fh)["results"]}
    check(len(res) == 201 and sum(r["success"] for r in res.values()) == 200,
          "200 passed, one outcome each")
    check(res.get("big", {}).get("status") == "failed", "big failed as unplaceable")
    s = status(port, optoken)
    if s is not None:
        fails = [x["test_id"] for x in s["recent_failures"]]
        check(fails == ["big"], "recent failures list big: %s" % fails)
        check(s["totals"]["waiting"] == 0 and s["totals"]["ended"] == 201,
              "nothing waits afterwards")


finish(main, "STATUS IT PASSED")
