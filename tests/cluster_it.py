#!/usr/bin/env python3
"""Multi-process integration test of an alb cluster on loopback.

A coordinator (ephemeral port, join token) and three node processes run a
suite of real commands; then: a node SIGKILLed mid-run loses no test, nodes
and clients with a wrong or missing token are refused and get no work, and
short connections, random bytes and a truncated handshake on the port leave
the coordinator serving. Every process is cleaned up; the whole run is
bounded (about a minute).

Usage: cluster_it.py PATH/TO/alb
"""

import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

ALB = os.path.abspath(sys.argv[1])
TMP = tempfile.mkdtemp(prefix="alb-cluster-it-")
PROCS = []
FAILURES = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILURES.append(what)


def start(args, name):
    out = open(os.path.join(TMP, name + ".out"), "w")
    err = open(os.path.join(TMP, name + ".err"), "w")
    p = subprocess.Popen([ALB] + args, stdout=out, stderr=err, cwd=TMP)
    p.log_name = name
    PROCS.append(p)
    return p


def read(name, ext="err"):
    with open(os.path.join(TMP, name + "." + ext)) as f:
        return f.read()


def wait_for(pred, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    check(False, "timed out waiting for " + what)
    return False


def write(name, text, mode=0o600):
    path = os.path.join(TMP, name)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def toml_tests(tests):
    out = []
    for t in tests:
        out.append("[[tests]]")
        for k, v in t.items():
            if isinstance(v, dict):
                inner = ", ".join('%s = %s' % (a, json.dumps(b)) for a, b in v.items())
                out.append("%s = { %s }" % (k, inner))
            else:
                out.append("%s = %s" % (k, json.dumps(v)))
    return "\n".join(out) + "\n"


def submit(file, port, token_file, output, timeout=60):
    args = [ALB, "submit", "--coordinator", "127.0.0.1:%d" % port,
            "--output", output, file]
    if token_file:
        args[2:2] = ["--token-file", token_file]
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                          cwd=TMP)


def results_of(path):
    with open(path) as f:
        return {r["test_id"]: r for r in json.load(f)["results"]}


def main():
    token = write("token", "%032x\n" % random.getrandbits(128))
    bad = write("bad-token", "not-the-token\n")
    coord = start(["coordinator", "--port", "0", "--no-db", "--token-file",
                   token], "coordinator")
    port = None

    def bound():
        nonlocal port
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", read("coordinator", "out"))
        if m:
            port = int(m.group(1))
        return port is not None
    if not wait_for(bound, 15, "the coordinator's port"):
        return
    addr = "127.0.0.1:%d" % port
    nodes = {}
    for n in ("n1", "n2", "n3"):
        nodes[n] = start(["node", "--coordinator", addr, "--workers", "2",
                          "--cores", "2", "--memory", "8", "--token-file",
                          token, "--name", n], n)
    wait_for(lambda: read("coordinator").count("registered in slot") >= 6, 15,
             "six workers")

    # -- 1. a suite of real commands: exact outcomes ---------------------------
    suite = []
    for i in range(6):
        suite.append({"test_id": "pass-%d" % i,
                      "command": ["sh", "-c", "sleep 0.2; echo ok-%d" % i]})
    for code in (1, 2, 3, 42):
        suite.append({"test_id": "fail-%d" % code,
                      "command": ["sh", "-c", "echo failing >&2; exit %d" % code]})
    suite.append({"test_id": "hang", "command": ["sleep", "60"], "timeout": 1.0})
    suite.append({"test_id": "env-cwd",
                  "command": ["sh", "-c", 'test "$(pwd)" = /tmp && echo "v=$ALB_IT"'],
                  "env": {"ALB_IT": "42"}, "cwd": "/tmp"})
    suite.append({"test_id": "missing-binary",
                  "command": ["/nonexistent/alb-it-binary"]})
    suite.append({"test_id": "simulated", "expected_duration": 0.1})
    f = write("suite.toml", toml_tests(suite), 0o644)
    t0 = time.time()
    r = submit(f, port, token, os.path.join(TMP, "suite.json"))
    check(r.returncode == 1, "suite: exit 1 because tests failed (got %d: %s)"
          % (r.returncode, r.stderr.strip()[-300:]))
    res = results_of(os.path.join(TMP, "suite.json"))
    check(len(res) == len(suite), "suite: one outcome per test")
    for i in range(6):
        x = res.get("pass-%d" % i, {})
        check(x.get("status") == "completed" and x.get("exit_code") == 0
              and ("ok-%d" % i) in x.get("output_tail", ""),
              "suite: pass-%d completed with its output" % i)
    for code in (1, 2, 3, 42):
        x = res.get("fail-%d" % code, {})
        check(x.get("status") == "failed" and x.get("exit_code") == code
              and not x.get("timed_out") and "failing" in x.get("output_tail", ""),
              "suite: fail-%d failed with exit status %d" % (code, code))
    x = res.get("hang", {})
    check(x.get("status") == "failed" and x.get("timed_out")
          and x.get("execution_time", 99) < 5, "suite: hang timed out after ~1 s")
    x = res.get("env-cwd", {})
    check(x.get("status") == "completed" and "v=42" in x.get("output_tail", ""),
          "suite: env and cwd applied")
    x = res.get("missing-binary", {})
    check(x.get("status") == "failed" and x.get("exit_code") == 127,
          "suite: a missing binary fails with 127")
    check(res.get("simulated", {}).get("status") == "completed",
          "suite: a test without command is simulated")
    check(time.time() - t0 < 20, "suite: finished in bounded time")
    check(len({x["worker_id"].split("/")[0] for x in res.values()}) >= 2,
          "suite: spread over several nodes")

    # -- 2. wrong or missing token: refused, no work ---------------------------
    intruder = start(["node", "--coordinator", addr, "--token-file", bad,
                      "--name", "intruder"], "intruder")
    anon = start(["node", "--coordinator", addr, "--name", "anonymous"], "anonymous")
    for p in (intruder, anon):
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
    check(intruder.returncode == 1, "wrong token: node exits 1")
    check(anon.returncode == 1, "missing token: node exits 1")
    log = read("coordinator")
    check(re.search(r"refused worker 'intruder/w0' of node 'intruder' from "
                    r"127\.0\.0\.1:\d+: wrong join token", log) is not None,
          "wrong token: refusal logged with the peer address")
    check("of node 'anonymous' from 127.0.0.1:" in log
          and "no join token" in log, "missing token: refusal logged")
    check("intruder/w0' of node 'intruder' registered" not in log,
          "wrong token: no worker registered")
    r = submit(f, port, bad, os.path.join(TMP, "bad.json"))
    check(r.returncode == 2 and "refused" in r.stderr,
          "wrong token: submission refused")

    # -- 3. a node SIGKILLed mid-run loses no test -----------------------------
    work = [{"test_id": "k-%d" % i, "command": ["sh", "-c", "sleep 1.5; echo done"]}
            for i in range(12)]
    f2 = write("kill.toml", toml_tests(work), 0o644)
    out2 = os.path.join(TMP, "kill.json")
    args = [ALB, "submit", "--coordinator", addr, "--token-file", token,
            "--output", out2, f2]
    client = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              cwd=TMP)
    PROCS.append(client)
    time.sleep(0.8)
    nodes["n2"].send_signal(signal.SIGKILL)
    nodes["n2"].wait(timeout=5)
    try:
        client.wait(timeout=40)
    except subprocess.TimeoutExpired:
        pass
    check(client.returncode == 0, "node loss: every test passed (exit %s)"
          % client.returncode)
    res = results_of(out2) if os.path.exists(out2) else {}
    check(len(res) == 12 and all(x["status"] == "completed" for x in res.values()),
          "node loss: all 12 tests completed")
    check(all(not x["worker_id"].startswith("n2/") for x in res.values()),
          "node loss: no outcome from the killed node")
    check(any(x["attempts"] >= 2 for x in res.values()),
          "node loss: the killed node's tests were requeued")
    wait_for(lambda: re.search(r"node 'n2' at 127\.0\.0\.1:\d+ left",
                               read("coordinator")) is not None,
             5, "the coordinator to log n2 leaving")

    # -- 4. hostile bytes on the port ------------------------------------------
    rnd = random.Random(7)
    t0 = time.time()
    for _ in range(300):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.close()
    held = []
    for i in range(200):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(bytes(rnd.getrandbits(8) for _ in range(1000)))
        s.close()
    # Forged BASP headers announcing ~4 GB payloads: each one stalled CAF's
    # middleman for ~36 s until the guard in front of it dropped them.
    for op in (1, 2, 3):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(struct.pack(">BBBBIQQQ", op, 0, 0, 0, 0xF0000000, 0, 1, 1)
                  + b"x" * 100)
        s.close()
    for i in range(5):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"\x01\x00\x00\x00")  # truncated handshake, left open
        held.append(s)
    quick = [{"test_id": "after-%d" % i, "command": ["true"]} for i in range(3)]
    f3 = write("after.toml", toml_tests(quick), 0o644)
    r = submit(f3, port, token, os.path.join(TMP, "after.json"), timeout=30)
    check(r.returncode == 0, "hostile bytes: the coordinator still serves (%s)"
          % r.stderr.strip()[-200:])
    check(time.time() - t0 < 30, "hostile bytes: no long stall")
    check(coord.poll() is None, "hostile bytes: the coordinator is alive")
    for s in held:
        s.close()

    # -- 5. clean shutdown -----------------------------------------------------
    coord.send_signal(signal.SIGTERM)
    try:
        coord.wait(timeout=15)
    except subprocess.TimeoutExpired:
        pass
    check(coord.returncode == 0, "shutdown: coordinator exits 0 on SIGTERM")
    for n in ("n1", "n3"):
        try:
            nodes[n].wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
        check(nodes[n].returncode == 0, "shutdown: node %s exits when the "
              "coordinator goes away" % n)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # report, then clean up
        FAILURES.append("exception: %r" % e)
        print("FAIL exception: %r" % e, flush=True)
    finally:
        for p in PROCS:
            if p.poll() is None:
                p.kill()
                p.wait()
    if FAILURES:
        print("\nlogs in " + TMP)
        for name in ("coordinator", "n1", "n2", "n3"):
            try:
                print("--- %s.err\n%s" % (name, read(name)[-3000:]))
            except OSError:
                pass
        sys.exit(1)
    shutil.rmtree(TMP, ignore_errors=True)
    print("all cluster checks passed")
