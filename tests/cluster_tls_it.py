#!/usr/bin/env python3
"""Integration test of a TLS cluster on loopback (CAF's OpenSSL module).

A throwaway CA and certificates are made with the `openssl` command; a TLS
coordinator and a TLS node run real commands for a TLS `alb submit`. Then:
a plain-TCP node and client, and a node whose certificate another CA
signed, are refused during the handshake without disturbing the member
node (no "left" line: CAF 0.17.6's dirty OpenSSL error queue used to cut
it off); garbage and cut-off TLS records on the port leave it serving; bad
TLS files are one error line and exit 2; `alb run` with a [tls] section
runs its suite over TLS. Every process is cleaned up; about half a minute.

Usage: cluster_tls_it.py PATH/TO/alb
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

from it_support import ALB, FAILURES, PROCS, TMP, finish, check, path, read, start, wait_for, write


def run(args, timeout=60):
    return subprocess.run([ALB] + args, capture_output=True, text=True,
                          timeout=timeout, cwd=TMP)


def openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, cwd=TMP,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_pki():
    def key(name):
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt",
                "ec_paramgen_curve:P-256", "-out", name + ".key")
        os.chmod(path(name + ".key"), 0o600)
    for ca in ("ca", "other-ca"):
        key(ca)
        openssl("req", "-x509", "-new", "-key", ca + ".key", "-out",
                ca + ".pem", "-days", "2", "-subj", "/CN=" + ca)
    for name, ca in (("coord", "ca"), ("node", "ca"), ("client", "ca"),
                     ("stranger", "other-ca")):
        key(name)
        openssl("req", "-new", "-key", name + ".key", "-out", name + ".csr",
                "-subj", "/CN=" + name)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem",
                "-CAkey", ca + ".key", "-CAcreateserial", "-days", "2",
                "-out", name + ".pem")


def tls(name, ca="ca"):
    return ["--tls-cert", name + ".pem", "--tls-key", name + ".key",
            "--tls-ca", ca + ".pem"]


def suite_toml(prefix, n, extra=""):
    out = [extra]
    for i in range(n):
        out.append('[[tests]]\ntest_id = "%s-%d"\ncommand = ["sh", "-c", '
                   '"echo tls-ok-%d"]\n' % (prefix, i, i))
    return "\n".join(out)


def main():
    make_pki()
    token = write("token", "tls-it-token-0123456789abcdef\n")
    coord = start(["coordinator", "--port", "0", "--no-db", "--token-file",
                   token] + tls("coord"), "coordinator")
    port = None

    def bound():
        nonlocal port
        m = re.search(r"listening on 127\.0\.0\.1:(\d+) \(strategy \S+, TLS\)",
                      read("coordinator", "out"))
        if m:
            port = int(m.group(1))
        return port is not None
    if not wait_for(bound, 15, "the TLS coordinator's port"):
        return
    addr = "127.0.0.1:%d" % port
    start(["node", "--coordinator", addr, "--slots", "2", "--cores", "2",
           "--memory", "4", "--token-file", token, "--name", "member"]
          + tls("node"), "member")
    wait_for(lambda: read("coordinator").count("registered in slot") >= 1, 15,
             "the member's worker")

    # -- 1. tests over TLS ----------------------------------------------------
    write("suite.toml", suite_toml("s", 4), 0o644)
    r = run(["submit", "--coordinator", "alb://" + addr, "--token-file", token,
             "--output", "suite.json", "suite.toml"] + tls("client"))
    check(r.returncode == 0, "submit over TLS: exit 0 (got %d: %s)"
          % (r.returncode, r.stderr.strip()[-300:]))
    check("over TLS" in r.stderr, "submit over TLS: says so")
    with open(path("suite.json")) as f:
        res = {x["test_id"]: x for x in json.load(f)["results"]}
    check(len(res) == 4 and all(
        res.get("s-%d" % i, {}).get("status") == "completed"
        and ("tls-ok-%d" % i) in res["s-%d" % i].get("output_tail", "")
        for i in range(4)), "submit over TLS: every test completed with its output")

    # -- 2. strangers are refused; the member stays ---------------------------
    t0 = time.time()
    r = run(["node", "--coordinator", addr, "--token-file", token,
             "--connect-timeout", "2", "--name", "plain"], timeout=40)
    check(r.returncode == 1, "plain node: exit 1 (got %d)" % r.returncode)
    check("disconnect_during_handshake" in r.stderr and "--tls-cert" in r.stderr,
          "plain node: says the handshake failed and hints at TLS (%s)"
          % r.stderr.strip()[-200:])
    check(time.time() - t0 < 20, "plain node: refused quickly")
    r = run(["node", "--coordinator", addr, "--token-file", token,
             "--connect-timeout", "2", "--name", "stranger"]
            + tls("stranger", "ca"), timeout=40)
    check(r.returncode == 1, "other CA's node: exit 1 (got %d)" % r.returncode)
    check("does not verify against CA" in r.stderr,
          "other CA's node: warned that its certificate does not verify")
    r = run(["submit", "--coordinator", addr, "--token-file", token,
             "--connect-timeout", "1", "suite.toml"])
    check(r.returncode == 2 and "cannot reach coordinator" in r.stderr,
          "plain submit: exit 2, cannot reach (got %d)" % r.returncode)
    log = read("coordinator")
    check("'plain'" not in log and "'stranger'" not in log,
          "strangers: no worker of theirs registered")
    check("refused connection from 127.0.0.1:" in log
          and "did not speak TLS" in log,
          "plain node: refusal logged with its address")
    check("the TLS handshake failed" in log,
          "other CA's node: refused handshake logged with its address")

    # Garbage, a cut-off TLS record and a cut-off ClientHello on the port.
    for payload in (os.urandom(64), b"\x16\x03\x01\x40\x00", b"\x16\x03\x01\x00\x30" + os.urandom(20),
                    b"GET / HTTP/1.0\r\n\r\n", b""):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
            s.sendall(payload)
            time.sleep(0.05)
            s.close()
        except OSError:
            pass
    time.sleep(1)
    log = read("coordinator")
    check(" left " not in log,
          "member: never dropped while strangers knocked (no 'left' line)")
    write("after.toml", suite_toml("after", 2), 0o644)
    r = run(["submit", "--coordinator", addr, "--token-file", token,
             "after.toml"] + tls("client"))
    check(r.returncode == 0, "after the strangers: a member's submit passes (got %d: %s)"
          % (r.returncode, r.stderr.strip()[-200:]))

    # -- 3. bad TLS files: one line, exit 2 -----------------------------------
    write("garbage.pem", "not a certificate\n")
    cases = [
        (["coordinator", "--port", "0", "--no-db", "--tls-cert", "coord.pem",
          "--tls-key", "missing.key", "--tls-ca", "ca.pem"], "cannot read TLS key"),
        (["coordinator", "--port", "0", "--no-db"] + tls("coord")[:4],
         "missing: CA (--tls-ca)"),
        (["node", "--coordinator", addr, "--tls-cert", "garbage.pem",
          "--tls-key", "node.key", "--tls-ca", "ca.pem"], "holds no PEM certificate"),
        (["submit", "--coordinator", addr, "--tls-cert", "node.pem", "--tls-key",
          "client.key", "--tls-ca", "ca.pem", "suite.toml"], "does not belong to certificate"),
    ]
    for args, expect in cases:
        r = run(args, timeout=30)
        lines = [l for l in r.stderr.splitlines() if "error" in l]
        check(r.returncode == 2 and len(lines) == 1 and expect in lines[0],
              "bad TLS input (%s): exit 2 with one line (got %d: %s)"
              % (expect, r.returncode, r.stderr.strip()[-200:]))

    # -- 4. alb run with a [tls] section --------------------------------------
    tls_section = ('[cluster]\nport = 0\n[tls]\ncert = "coord.pem"\nkey = '
                   '"coord.key"\nca = "ca.pem"\n')
    write("run.toml", suite_toml("run", 3, tls_section), 0o644)
    r = run(["run", "run.toml", "--nodes", "1", "--slots", "2", "--output",
             "run.json"], timeout=60)
    check(r.returncode == 0 and ", TLS)" in r.stdout,
          "alb run with [tls]: exit 0 over TLS (got %d: %s)"
          % (r.returncode, (r.stdout + r.stderr).strip()[-300:]))

    # -- 5. shutdown -----------------------------------------------------------
    coord.send_signal(signal.SIGTERM)
    try:
        check(coord.wait(timeout=15) == 0, "coordinator exits 0 on SIGTERM")
    except subprocess.TimeoutExpired:
        check(False, "coordinator exits on SIGTERM")


finish(main, "all TLS cluster checks passed", ["coordinator", "member"])
