#!/usr/bin/env python3
"""Tests that no node can hold end, and the coordinator's limits come from
its [cluster] section.

A coordinator reads a config file with `[scheduler] wait_limit = 2` and
`[cluster] max_submission = "1MiB"`; one node (8 GB, one slot) joins.

- A test needing 64 GB (no node can ever hold it) fails after the wait limit
  with the reason, which `alb submit` prints; it ends once.
- Two gated tests, one running and one queued behind it on the only node:
  the node is SIGKILLed (the last node able to hold them leaves). Both end
  once as failed (`no node is connected`), the wait limit after the leave,
  the client prints the reason, and the coordinator keeps serving: a node
  that joins afterwards runs nothing of theirs.
- A submission over the coordinator's 1 MiB limit is refused by the client
  at once with the coordinator's limit in the reason (exit 2), and a
  submission under it still runs.
- A bad value of a [cluster] key (or of --max-submission) stops the
  coordinator with one line naming file:line and the key, exit 2.

Only processes the test started are signalled (by PID); bounded (about
15 s).

Usage: backstop_it.py PATH/TO/alb
"""

import json
import os
import random
import re
import signal
import subprocess
import time

from it_support import ALB, TMP, check, finish, path, read, start, wait_for, write

WAIT_LIMIT = 2


def toml_tests(tests):
    out = []
    for t in tests:
        out.append("[[tests]]")
        for k, v in t.items():
            if isinstance(v, dict):
                v = "{ %s }" % ", ".join("%s = %s" % (a, json.dumps(b))
                                         for a, b in v.items())
            else:
                v = json.dumps(v)
            out.append("%s = %s" % (k, v))
    return "\n".join(out) + "\n"


def submit(addr, token, name, tests, wait=True):
    f = write(name + ".toml", toml_tests(tests), 0o644)
    args = [ALB, "submit", "--coordinator", addr, "--token-file", token,
            "--output", path(name + ".json"), f]
    if not wait:
        return subprocess.Popen(args, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=TMP)
    return subprocess.run(args, capture_output=True, text=True, timeout=60,
                          cwd=TMP)


def results(name):
    try:
        with open(path(name + ".json")) as fh:
            return json.load(fh)["results"]
    except (OSError, ValueError, KeyError):
        return []


def bad_config(token):
    cases = [
        ('[cluster]\nmax_submission = "2GiB"\n', "bad1.toml:2:",
         "cluster.max_submission"),
        ('[cluster]\nhandshake_timeout = 0\n', "bad2.toml:2:",
         "cluster.handshake_timeout"),
        ('[cluster]\nmax_handshakes_per_address = 0\n', "bad3.toml:2:",
         "cluster.max_handshakes_per_address"),
        ('[cluster]\nclient_timeout = -3\n', "bad4.toml:2:",
         "cluster.client_timeout"),
    ]
    for i, (text, where, key) in enumerate(cases, 1):
        f = write("bad%d.toml" % i, text, 0o644)
        r = subprocess.run([ALB, "coordinator", "--port", "0", "--no-db",
                            "--token-file", token, "--config", f],
                           capture_output=True, text=True, timeout=30, cwd=TMP)
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        check(r.returncode == 2 and len(lines) == 1 and where in lines[0]
              and key in lines[0],
              "%s: exit 2 with one line naming %s and %s (%d: %s)"
              % (text.strip().replace("\n", " "), where, key, r.returncode,
                 r.stderr.strip()))
    r = subprocess.run([ALB, "coordinator", "--port", "0", "--no-db",
                        "--token-file", token, "--max-submission", "12 bananas"],
                       capture_output=True, text=True, timeout=30, cwd=TMP)
    check(r.returncode == 2 and "--max-submission" in r.stderr,
          "--max-submission '12 bananas': exit 2 naming the flag (%d: %s)"
          % (r.returncode, r.stderr.strip()))


def main():
    token = write("token", "%032x\n" % random.getrandbits(128))
    bad_config(token)
    cfg = write("cluster.toml", "[scheduler]\nwait_limit = %d\n\n"
                "[cluster]\nmax_submission = \"1MiB\"\n" % WAIT_LIMIT, 0o644)
    start(["coordinator", "--port", "0", "--no-db", "--token-file", token,
           "--config", cfg], "coordinator")
    found = {}

    def bound():
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", read("coordinator", "out"))
        if m:
            found["port"] = int(m.group(1))
        return "port" in found
    if not wait_for(bound, 15, "the coordinator's port"):
        return
    addr = "127.0.0.1:%d" % found["port"]

    def node(name):
        p = start(["node", "--coordinator", addr, "--slots", "1", "--cores", "1",
                   "--memory", "8", "--token-file", token, "--name", name,
                   "--reconnect-timeout", "0"], name)
        wait_for(lambda: ("node '%s' joined" % name) in read("coordinator")
                 or ("node '%s' rejoined" % name) in read("coordinator"),
                 15, "node " + name + " to join")
        return p
    n1 = node("n1")

    # 1. No node can ever hold it: it fails after the wait limit.
    t0 = time.time()
    r = submit(addr, token, "huge", [{"test_id": "huge", "minimum_memory": 64,
                                      "command": ["true"]}])
    took = time.time() - t0
    rows = results("huge")
    check(r.returncode == 1, "the unplaceable test fails (exit %d)" % r.returncode)
    check(len(rows) == 1 and rows[0].get("status") == "failed"
          and "no node has 64 GB memory" in (rows[0].get("error") or ""),
          "it ends once, failed with the reason (%s)" % rows)
    check("huge" in r.stdout + r.stderr
          and "no node has 64 GB memory" in r.stdout + r.stderr,
          "the client prints the reason")
    check(WAIT_LIMIT - 0.5 <= took < WAIT_LIMIT + 8,
          "it ended after the wait limit (%.1f s)" % took)

    # 2. The last node able to hold queued tests leaves.
    os.mkdir(path("started"))
    def gated(tid):
        # Waits for the gate (an event the test makes), not for a time.
        return ["sh", "-c", 'touch started/%s.$$; '
                'while [ ! -e gate ]; do sleep 0.05; done' % tid]
    tests = [{"test_id": "running", "command": gated("running"),
              "minimum_memory": 4},
             {"test_id": "queued", "command": gated("queued"),
              "minimum_memory": 4}]
    sub = submit(addr, token, "left", tests, wait=False)
    if not wait_for(lambda: len(os.listdir(path("started"))) >= 1, 15,
                    "the first test to start"):
        sub.kill()
        return
    os.kill(n1.pid, signal.SIGKILL)
    n1.wait()
    t0 = time.time()
    try:
        out, err = sub.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        sub.kill()
        out, err = sub.communicate()
    took = time.time() - t0
    rows = results("left")
    by_id = {}
    for x in rows:
        by_id.setdefault(x["test_id"], []).append(x)
    check(sub.returncode == 1, "alb submit exits 1 (%s)" % sub.returncode)
    for tid in ("running", "queued"):
        xs = by_id.get(tid, [])
        check(len(xs) == 1 and xs[0].get("status") == "failed"
              and "no node is connected" in (xs[0].get("error") or ""),
              "%s ends once, failed: no node can hold it (%s)" % (tid, xs))
    check("no node is connected" in out + err,
          "the client prints the reason")
    check(took < WAIT_LIMIT + 8,
          "they ended within the wait limit of the leave (%.1f s)" % took)
    # A node joining later runs neither (they ended, exactly once).
    runs = len(os.listdir(path("started")))
    node("n2")
    write("gate", "")
    r = submit(addr, token, "after", [{"test_id": "after", "command": ["true"]}])
    check(r.returncode == 0, "a later test runs on the new node (%s)"
          % r.stderr.strip()[-300:])
    check(len(os.listdir(path("started"))) == runs,
          "no ended test ran again (%d starts)" % runs)

    # 3. Over the coordinator's configured limit: refused by the client.
    t0 = time.time()
    big = {"test_id": "big", "command": ["true"], "env": {"BLOB": "x" * (2 << 20)}}
    r = submit(addr, token, "big", [big])
    took = time.time() - t0
    check(r.returncode == 2 and "over the coordinator's limit of 1.0 MB" in r.stderr,
          "a 2 MB submission is refused with the coordinator's limit (%d: %s)"
          % (r.returncode, r.stderr.strip()[-300:]))
    check(took < 10, "refused at once, not after a timeout (%.1f s)" % took)
    # Under the limit (in pieces: one environment string may hold at most
    # 128 KiB in exec).
    small = {"test_id": "small", "command": ["true"],
             "env": {"BLOB%d" % i: "x" * (100 << 10) for i in range(6)}}
    r = submit(addr, token, "small", [small])
    check(r.returncode == 0, "a 600 KB submission still runs (%s)"
          % r.stderr.strip()[-300:])


finish(main, "backstop_it: PASSED")
