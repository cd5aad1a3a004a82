#!/usr/bin/env python3
"""Integration test of the trust model (README "Trust model"), as an attacker.

For plain TCP and for TLS: a coordinator (with a journal) and a node run a
victim test (`sleep 4; echo real-output; exit 1`) for `alb submit`. While
it runs, tests/attacker.cpp -- a CAF peer without the join token (over TLS
with a certificate of the cluster's CA) -- sends the coordinator's port a
forged outcome of the victim, forged reports, stats, submit, cancel, tick,
exit (reason kill), down and error messages, a wrong token and no token.
Checked: every request is refused, the coordinator keeps running and
serving, each kind of refusal is logged exactly once with the peer's
address, and the client gets the victim's real outcome (failed, exit 1,
its own output), the journal too; another member of the cluster (token,
other client key) can cancel the victim neither by id nor by --all-mine.
About 20 s.

Usage: trust_it.py PATH/TO/alb PATH/TO/alb_attacker
"""

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import it_support
from it_support import ALB, FAILURES, PROCS, TMP, finish, check, path, read, start, wait_for

ATTACKER = os.path.abspath(sys.argv[2])


def make_pki():
    it_support.make_pki(("coord", "node", "client", "attacker"))


def tls(name):
    return it_support.tls_args(name)


# Each kind of refusal the attack causes, as the coordinator logs it.
KINDS = [
    "refused outcome_batch from 127.0.0.1:",
    "refused outcome_batch from an anonymous sender:",
    "refused report_bundle from 127.0.0.1:",
    "refused report_batch from 127.0.0.1:",
    "refused load_report from 127.0.0.1:",
    "refused message 'leave' from 127.0.0.1:",
    "refused message 'tick' from 127.0.0.1:",
    "refused message 'cancel' from 127.0.0.1:",
    "refused test_batch from 127.0.0.1:",
    "refused exit_msg from 127.0.0.1:",
    "refused down_msg from 127.0.0.1:",
    "refused error from 127.0.0.1:",
    "refused message 'stats' from 127.0.0.1:",
    "refused message 'status' from 127.0.0.1:",
    "refused message 'submit' from 127.0.0.1:",
    "refused cancel of test 'victim' from 127.0.0.1:",
    "refused message 'heartbeat' from 127.0.0.1:",
    "refused message 'limits' from 127.0.0.1:",
    "refused client from 127.0.0.1:\\d+: wrong join token",
    "refused client from 127.0.0.1:\\d+: no join token",
    "refused worker 'attacker/w0' of node 'attacker' from 127.0.0.1:",
]


def scenario(mode):
    use_tls = mode == "tls"
    tag = mode + "-"
    db = path(tag + "alb.db")
    token = path(tag + "token")
    with open(token, "w") as f:
        f.write("trust-it-token-%s-0123456789\n" % mode)
    os.chmod(token, 0o600)
    extra = tls("coord") if use_tls else []
    coord = start(["coordinator", "--port", "0", "--db-path", db,
                   "--token-file", token] + extra, tag + "coordinator")
    port = None

    def bound():
        nonlocal port
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)",
                      read(tag + "coordinator", "out"))
        if m:
            port = int(m.group(1))
        return port is not None
    if not wait_for(bound, 15, mode + ": the coordinator's port"):
        return
    addr = "127.0.0.1:%d" % port
    start(["node", "--coordinator", addr, "--slots", "2", "--cores", "2",
           "--memory", "4", "--token-file", token, "--name", "member",
           "--reconnect-timeout", "0"] + (tls("node") if use_tls else []),
          tag + "node")
    wait_for(lambda: read(tag + "coordinator").count("registered in slot")
             >= 1, 15, mode + ": the node's worker")
    suite = path(tag + "suite.toml")
    with open(suite, "w") as f:
        f.write('[[tests]]\ntest_id = "victim"\ncommand = ["sh", "-c", '
                '"sleep 4; echo real-output; exit 1"]\n')
    out = path(tag + "out.json")
    client = subprocess.Popen(
        [ALB, "submit", "--coordinator", addr, "--token-file", token,
         "--output", out, suite] + (tls("client") if use_tls else []),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=TMP)
    PROCS.append(client)
    wait_for(lambda: "accepted 1 tests" in read(tag + "coordinator"), 15,
             mode + ": the victim accepted")
    # A member of the cluster (it has the token) with another client key:
    # it may neither cancel the victim nor read its run.
    other = [ALB, "cancel", "--coordinator", addr, "--token-file", token,
             "--client-key", path(tag + "other.key"), "--json"] + (
                 tls("client") if use_tls else [])
    o = subprocess.run(other + ["victim"], capture_output=True, text=True,
                       cwd=TMP, timeout=30)
    check(o.returncode == 1 and json.loads(o.stdout or "{}").get("refused")
          == ["victim"], "%s: another client's alb cancel of the victim is "
          "refused (exit %d: %s)" % (mode, o.returncode, o.stderr.strip()))
    o = subprocess.run(other + ["--all-mine"],
                       capture_output=True, text=True, cwd=TMP, timeout=30)
    check(o.returncode == 0 and json.loads(o.stdout or "{}").get("cancelled")
          == [], mode + ": another client's --all-mine cancels nothing")
    args = [ATTACKER, "127.0.0.1", str(port), "victim"]
    if use_tls:
        args += [path("attacker.pem"), path("attacker.key"), path("ca.pem")]
    t0 = time.time()
    a = subprocess.run(args, capture_output=True, text=True, timeout=60)
    print(a.stdout, end="")
    check(a.returncode == 0 and "all refused" in a.stdout,
          "%s: every request of the attacker refused (exit %d: %s)"
          % (mode, a.returncode, a.stderr.strip()[-300:]))
    check("coordinator alive" in a.stdout and coord.poll() is None,
          mode + ": the coordinator survived exit(kill), down and error")
    check(time.time() - t0 < 2.5, mode + ": the attack ran while the victim "
          "ran (%.1f s)" % (time.time() - t0))
    try:
        cout, cerr = client.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        check(False, mode + ": the client finished")
        return
    check(client.returncode == 1,
          "%s: the client exits 1 (the victim really failed; got %d: %s)"
          % (mode, client.returncode, cerr.strip()[-300:]))
    with open(out) as f:
        res = {x["test_id"]: x for x in json.load(f)["results"]}
    v = res.get("victim", {})
    check(v.get("status") == "failed" and v.get("exit_code") == 1
          and "real-output" in v.get("output_tail", "")
          and "forged" not in json.dumps(res),
          mode + ": the client got the victim's real outcome (%s)" % v)
    check(len(res) == 1, mode + ": one outcome, no test of the attacker's")
    log = read(tag + "coordinator")
    for k in KINDS:
        n = len(re.findall(k if "\\d" in k else re.escape(k), log))
        check(n == 1, "%s: logged once: %s... (%d times)" % (mode, k, n))
    check("attacker was here" not in log and "attacker-test" not in log,
          mode + ": the attacker's submission never ran")
    coord.send_signal(signal.SIGTERM)
    try:
        check(coord.wait(timeout=15) == 0, mode + ": coordinator exits 0")
    except subprocess.TimeoutExpired:
        check(False, mode + ": coordinator exits on SIGTERM")
    # What the journal holds is the real outcome too.
    con = sqlite3.connect(db)
    rows = [r for r in con.execute("select * from sqlite_master")]
    con.close()
    dump = subprocess.run(["sqlite3", db, ".dump"], capture_output=True,
                          text=True) if shutil.which("sqlite3") else None
    if dump is not None:
        check("forged" not in dump.stdout and "real-output" in dump.stdout,
              mode + ": the journal holds the real outcome, nothing forged")
    else:
        check(len(rows) > 0, mode + ": the journal exists")


def main():
    make_pki()
    for mode in ("plain", "tls"):
        scenario(mode)


finish(main, "all trust checks passed", ["plain-coordinator", "tls-coordinator"])
