#!/usr/bin/env python3
"""Integration test of the coordinator's guard under a handshake flood, as an
attacker would run it (README "Trust model", "Refusals in the log").

For plain TCP and for TLS: a coordinator runs with a short handshake
deadline (--handshake-timeout 2). This script opens 1,300 sockets to its
port and holds them: over plain TCP each sends one 32-byte CAF handshake
header announcing a payload that never comes; over TLS each sends one real
ClientHello and nothing more; 100 more send nothing. 600 come from
127.0.0.1 (the address the node and the client use too), 600 from 40 other
loopback addresses (15 each), 100 from yet others. While they are held, a
node joins and `alb submit` runs a small suite. Checked: the node and the
client get in at once (well within the deadline), the submission succeeds,
every held socket is closed by the guard within the deadline (plus the
guard's half-second poll), the refusals are logged with their reasons and
rate-limited, and alb_connections_refused_total counts them by reason.
Then (plain TCP) a 66 MB submission: `alb submit` refuses it at once with
one line naming the limit, exit 2. Loopback only; about 25 s.

Usage: guard_it.py PATH/TO/alb
"""

import json
import os
import re
import resource
import select
import signal
import socket
import ssl
import struct
import subprocess
import time
import urllib.request

import it_support
from it_support import ALB, PROCS, TMP, check, finish, path, read, start, wait_for

DEADLINE = 2.0
HELD_SAME = 600      # from 127.0.0.1, like the real node and client
HELD_SPREAD = 600    # from 127.0.0.2 .. 127.0.0.41, 15 each
HELD_SILENT = 100    # connect and send nothing (127.0.0.50 .. 127.0.0.59)


def basp_header():
    # CAF 0.17 BASP header: operation 1 (client handshake), padding, flags,
    # payload length 200 (never sent), operation data, source, destination.
    return struct.pack(">BBBBIQQQ", 1, 0, 0, 0, 200, 0, 0, 0)


def client_hello():
    """The first flight of a real TLS client: one ClientHello record."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="coordinator")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    data = out.read()
    assert data[:1] == b"\x16", "not a TLS handshake record"
    return data


def flood(port, first_bytes):
    """Opens and holds the flood's sockets; returns them."""
    socks = []
    plan = ([("127.0.0.1", first_bytes)] * HELD_SAME
            + [("127.0.0.%d" % (2 + i // 15), first_bytes)
               for i in range(HELD_SPREAD)]
            + [("127.0.0.%d" % (50 + i // 10), b"") for i in range(HELD_SILENT)])
    for src, data in plan:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(5)
        try:
            s.bind((src, 0))
            s.connect(("127.0.0.1", port))
            if data:
                s.sendall(data)
        except OSError as e:
            # The guard may already have closed one to make room.
            if not isinstance(e, (ConnectionResetError, BrokenPipeError)):
                raise
        socks.append(s)
    return socks


def still_open(socks):
    """How many of SOCKS the guard has not closed yet (no EOF or reset
    waiting to be read); poll(), as select() stops at descriptor 1024."""
    p = select.poll()
    for s in socks:
        p.register(s, select.POLLIN)
    ready = {fd for fd, _ in p.poll(0)}
    left = 0
    for s in socks:
        if s.fileno() not in ready:
            left += 1
            continue
        try:
            if s.recv(65536) != b"":
                left += 1  # the coordinator's answer; not closed yet
        except OSError:
            pass  # reset: closed
    return left


def scrape(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()


def refused_counts(text):
    out = {}
    for m in re.finditer(
            r'^alb_connections_refused_total\{reason="(\w+)"\} ([0-9.e+]+)$',
            text, re.M):
        out[m.group(1)] = float(m.group(2))
    return out


def oversized(addr, token, tag):
    """A 66 MB submission: `alb submit` says at once, in one line, that it is
    over the coordinator's limit and exits 2 (it used to send it, lose the
    connection to the guard and wait 30 s for "did not answer")."""
    suite = path(tag + "huge.json")
    with open(suite, "w") as f:
        json.dump({"tests": [{"test_id": "huge", "command": ["true"],
                              "env": {"BLOB": "x" * (66 << 20)}}]}, f)
    t0 = time.time()
    r = subprocess.run([ALB, "submit", "--coordinator", addr, "--token-file",
                        token, suite], capture_output=True, text=True,
                       cwd=TMP, timeout=120)
    took = time.time() - t0
    os.unlink(suite)
    lines = r.stderr.strip().splitlines()
    check(r.returncode == 2 and len(lines) == 1
          and "test 'huge' alone is 66.0 MB" in lines[0]
          and "limit of 64.0 MB per submission" in lines[0],
          "oversized submission: one clear line, exit 2 (exit %d: %s)"
          % (r.returncode, r.stderr.strip()[-300:]))
    check(took < 25, "oversized submission: refused without waiting for an "
          "answer (%.1f s, mostly reading 66 MB of JSON)" % took)


def usual_file_limit():
    """The usual soft limit of 1,024 descriptors: the coordinator raises its
    own (three descriptors per relayed connection)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))


def open_file_limit(pid):
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max open files"):
                return int(line.split()[3])
    return 0


def scenario(mode):
    use_tls = mode == "tls"
    tag = mode + "-"
    token = it_support.write(tag + "token", "guard-it-%s-0123456789\n" % mode)
    tls = it_support.tls_args
    coord = start(["coordinator", "--port", "0", "--no-db", "--token-file",
                   token, "--handshake-timeout", str(DEADLINE),
                   "--metrics-port", "0"]
                  + (tls("coord") if use_tls else []), tag + "coordinator",
                  preexec_fn=usual_file_limit)
    port = None
    metrics = None

    def bound():
        nonlocal port, metrics
        text = read(tag + "coordinator", "out") + read(tag + "coordinator")
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", text)
        u = re.search(r"(http://127\.0\.0\.1:\d+/metrics)", text)
        if m and u:
            port, metrics = int(m.group(1)), u.group(1)
        return port is not None
    if not wait_for(bound, 15, mode + ": the coordinator's port and metrics"):
        return
    addr = "127.0.0.1:%d" % port
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    check(open_file_limit(coord.pid) >= min(hard, 8192),
          "%s: the coordinator raised its open-file limit from 1024 (to %d)"
          % (mode, open_file_limit(coord.pid)))
    t0 = time.time()
    socks = flood(port, client_hello() if use_tls else basp_header())
    t_flood = time.time()
    print("%s: %d sockets opened in %.1f s" % (mode, len(socks), t_flood - t0),
          flush=True)
    # While they are held: a node and a client.
    node = start(["node", "--coordinator", addr, "--slots", "2", "--cores",
                  "2", "--memory", "4", "--token-file", token, "--name",
                  "member", "--reconnect-timeout", "0"]
                 + (tls("node") if use_tls else []), tag + "node")
    joined = wait_for(lambda: read(tag + "coordinator")
                      .count("registered in slot") >= 1, 15,
                      mode + ": the node's worker")
    t_join = time.time() - t_flood
    check(joined and t_join < DEADLINE,
          "%s: the node joined during the flood in %.1f s (deadline %g s)"
          % (mode, t_join, DEADLINE))
    suite = it_support.write(tag + "suite.toml", "".join(
        '[[tests]]\ntest_id = "t%d"\ncommand = ["sh", "-c", "echo ok-%d"]\n'
        % (i, i) for i in range(4)))
    t1 = time.time()
    sub = subprocess.run(
        [ALB, "submit", "--coordinator", addr, "--token-file", token, suite]
        + (tls("client") if use_tls else []),
        capture_output=True, text=True, cwd=TMP, timeout=60)
    t_submit = time.time() - t1
    check(sub.returncode == 0,
          "%s: a submit during the flood succeeds in %.1f s (exit %d: %s)"
          % (mode, t_submit, sub.returncode, sub.stderr.strip()[-300:]))
    check(t_submit < DEADLINE + 3,
          "%s: ... within the deadline plus its run (%.1f s)" % (mode, t_submit))
    # Every held socket is closed by the guard once the deadline is over
    # (or earlier, to make room).
    wait_for(lambda: still_open(socks) == 0,
             DEADLINE + 5 - (time.time() - t_flood),
             mode + ": the guard closing every held socket")
    open_left = still_open(socks)
    t_closed = time.time() - t_flood
    check(open_left == 0 and t_closed < DEADLINE + 5,
          "%s: every held socket closed by the guard (%d left open, %.1f s "
          "after the flood)" % (mode, open_left, t_closed))
    for s in socks:
        s.close()
    log = read(tag + "coordinator")
    lines = [l for l in log.splitlines() if "refused connection from" in l]
    print("%s: %d refusal lines, e.g.\n  %s" % (
        mode, len(lines), "\n  ".join(sorted({re.sub(r"from [0-9.:]+", "from ADDR", l.split("] ", 1)[-1]) for l in lines}))), flush=True)
    no_hs = "no TLS handshake within 2 s" if use_tls else "no handshake within 2 s"
    check(any(no_hs in l for l in lines),
          mode + ": logged: '" + no_hs + "'")
    check(any("connections from one address in their handshake" in l
              for l in lines), mode + ": logged: the per-address cap")
    check(any("connections in their handshake (the oldest" in l
              for l in lines), mode + ": logged: the total cap")
    check(len(lines) <= 20,
          "%s: refusals rate-limited (%d lines for %d sockets)"
          % (mode, len(lines), len(socks)))
    check(re.search(r"\d+ more connections refused in the last 10 s", log)
          is not None or len(lines) <= 20,
          mode + ": the rest summarised")
    counts = refused_counts(scrape(metrics))
    print("%s: alb_connections_refused_total %s" % (mode, counts), flush=True)
    total = sum(counts.values())
    check(total >= len(socks),
          "%s: every held socket counted in alb_connections_refused_total "
          "(%d >= %d)" % (mode, total, len(socks)))
    check(counts.get("address_cap", 0) > 0 and counts.get("total_cap", 0) > 0
          and counts.get("handshake_timeout", 0) > 0,
          mode + ": counted by reason (address_cap, total_cap, "
          "handshake_timeout)")
    if not use_tls:
        oversized(addr, token, tag)
    node.send_signal(signal.SIGTERM)
    coord.send_signal(signal.SIGTERM)
    try:
        check(coord.wait(timeout=15) == 0, mode + ": coordinator exits 0")
        node.wait(timeout=15)
    except subprocess.TimeoutExpired:
        check(False, mode + ": coordinator and node exit on SIGTERM")


def main():
    # The flood needs more descriptors than the usual soft limit of 1024
    # here (the coordinator starts with 1024 and raises its own).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 8192) if hard != resource.RLIM_INFINITY else 8192
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    it_support.make_pki(("coord", "node", "client"))
    for mode in os.environ.get("GUARD_IT_MODES", "plain tls").split():
        scenario(mode)


finish(main, "all guard checks passed",
       ["plain-coordinator", "plain-node", "tls-coordinator", "tls-node"])
