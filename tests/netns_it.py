#!/usr/bin/env python3
"""Machines, not just loopback: a TLS cluster across network namespaces.

The coordinator and two nodes each live in a network namespace of their own
(`ip netns add`), joined by veth pairs to a bridge in the coordinator's
namespace; each has its own address (10.231.7.0/24), the coordinator
listens on its namespace's address with TLS (certificates from a throwaway
CA made with `openssl`). With tests running on n1, n1's link is cut (`ip
link set ... down` on its bridge port: a real partition, the TCP connection
left open) for longer than --node-timeout: the coordinator declares n1 lost
and its tests finish on n2; the link comes back: n1 is told it was dropped,
joins again and runs tests; no test ends twice (client's outcome file,
journal, alb_tests_completed_total).

The namespaces are the test's own (named after its PID) and always removed;
only processes it started are signalled. Needs root and `ip netns`; without
them it says why and exits 77 (ctest SKIP_RETURN_CODE). About 20 s.

Usage: netns_it.py PATH/TO/alb
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
import urllib.request

NODE_TIMEOUT = 2
TAG = "alb%d" % (os.getpid() % 100000)
NS = {"c": TAG + "c", "n1": TAG + "n1", "n2": TAG + "n2"}
ADDR = {"c": "10.231.7.1", "n1": "10.231.7.2", "n2": "10.231.7.3"}


def skip(why):
    print("SKIP netns_it: " + why, flush=True)
    sys.exit(77)


def ip(*args, check=True):
    return subprocess.run(["ip"] + list(args), capture_output=True, text=True,
                          check=check, timeout=30)


if len(sys.argv) < 2:
    print("usage: netns_it.py PATH/TO/alb", file=sys.stderr)
    sys.exit(2)
if os.geteuid() != 0:
    skip("needs root (ip netns add)")
if shutil.which("ip") is None:
    skip("the ip command (iproute2) is not installed")
if shutil.which("openssl") is None:
    skip("the openssl command is not installed")
# Probe: can this machine make a namespace at all (containers may forbid it)?
probe = TAG + "probe"
r = ip("netns", "add", probe, check=False)
if r.returncode != 0:
    skip("ip netns add failed: " + r.stderr.strip())
ip("netns", "del", probe, check=False)

from it_support import ALB, PROCS, TMP, check, finish, path, read, wait_for, write  # noqa: E402
from it_support import gated, runs_under, started, toml_tests  # noqa: E402


def remove_namespaces():
    for ns in NS.values():
        ip("netns", "del", ns, check=False)


def make_network():
    # Leftovers of an earlier run with the same PID (killed before its
    # cleanup) carry this run's names: they are ours to remove.
    remove_namespaces()
    for ns in NS.values():
        ip("netns", "add", ns)
        ip("-n", ns, "link", "set", "lo", "up")
    c = NS["c"]
    ip("-n", c, "link", "add", "br0", "type", "bridge")
    ip("-n", c, "link", "set", "br0", "up")
    ip("-n", c, "addr", "add", ADDR["c"] + "/24", "dev", "br0")
    for n in ("n1", "n2"):
        # Both ends made inside the namespaces: nothing touches the host's.
        ip("-n", NS[n], "link", "add", "eth0", "type", "veth", "peer", "name",
           "port-" + n, "netns", c)
        ip("-n", c, "link", "set", "port-" + n, "master", "br0")
        ip("-n", c, "link", "set", "port-" + n, "up")
        ip("-n", NS[n], "addr", "add", ADDR[n] + "/24", "dev", "eth0")
        ip("-n", NS[n], "link", "set", "eth0", "up")


def start_in(ns, args, name):
    out = open(path(name + ".out"), "w")
    err = open(path(name + ".err"), "w")
    # `ip netns exec` execs the command in place: the PID is alb's.
    p = subprocess.Popen(["ip", "netns", "exec", NS[ns], ALB] + args,
                         stdout=out, stderr=err, cwd=TMP)
    p.log_name = name
    PROCS.append(p)
    return p


def run_in(ns, args, timeout=60):
    return subprocess.run(["ip", "netns", "exec", NS[ns], ALB] + args,
                          capture_output=True, text=True, timeout=timeout,
                          cwd=TMP)


def openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, cwd=TMP,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_pki():
    def key(name):
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt",
                "ec_paramgen_curve:P-256", "-out", name + ".key")
        os.chmod(path(name + ".key"), 0o600)
    key("ca")
    openssl("req", "-x509", "-new", "-key", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=ca")
    for name in ("coord", "node", "client"):
        key(name)
        openssl("req", "-new", "-key", name + ".key", "-out", name + ".csr",
                "-subj", "/CN=" + name)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem",
                "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
                "-out", name + ".pem")


def tls(name):
    return ["--tls-cert", name + ".pem", "--tls-key", name + ".key",
            "--tls-ca", "ca.pem"]


def metric(url_ns, url, name):
    """Sum of the series of NAME, scraped from inside the coordinator's
    namespace (its metrics listen on its loopback there)."""
    r = subprocess.run(["ip", "netns", "exec", NS[url_ns], "python3", "-c",
                        "import sys, urllib.request; sys.stdout.write("
                        "urllib.request.urlopen(sys.argv[1], timeout=5)"
                        ".read().decode())", url],
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        return None
    total = 0.0
    for line in r.stdout.splitlines():
        m = re.match(r"([a-z_]+)(\{[^}]*\})? (\S+)$", line)
        if m and m.group(1) == name:
            total += float(m.group(3))
    return total






def results(file):
    if not os.path.exists(file):
        return []
    with open(file) as fh:
        return json.load(fh)["results"]


def main():
    make_network()
    make_pki()
    os.mkdir(path("started"))
    token = write("token", "netns-it-token-%d-0123456789abcdef\n" % os.getpid())
    db = path("alb.db")
    coord = start_in("c", ["coordinator", "--host", ADDR["c"], "--port", "0",
                           "--db-path", db, "--token-file", token,
                           "--node-timeout", str(NODE_TIMEOUT),
                           "--metrics-port", "0"] + tls("coord"), "coordinator")
    found = {}

    def bound():
        text = read("coordinator", "out")
        m = re.search(r"listening on %s:(\d+) \(strategy \S+, TLS\)"
                      % re.escape(ADDR["c"]), text)
        if m:
            found["port"] = int(m.group(1))
        m = re.search(r"metrics: (http://\S+)", text)
        if m:
            found["url"] = m.group(1)
        return "port" in found and "url" in found
    if not wait_for(bound, 15, "the coordinator on %s with TLS" % ADDR["c"]):
        return
    addr = "%s:%d" % (ADDR["c"], found["port"])
    url = found["url"]
    nodes = {}
    for n in ("n1", "n2"):
        nodes[n] = start_in(n, ["node", "--coordinator", addr,
                                "--cores", "2", "--slots", "2", "--memory", "8",
                                "--token-file", token, "--name", n,
                                "--reconnect-timeout", "30"] + tls("node"), n)
    if not wait_for(lambda: read("coordinator").count("registered in slot") >= 2,
                    20, "both nodes over TLS"):
        return
    log = read("coordinator")
    for n in ("n1", "n2"):
        check(re.search(r"node '%s' joined from %s:\d+" % (n, re.escape(ADDR[n])), log)
              is not None, "%s joined from its own address %s" % (n, ADDR[n]))

    ids = ["p-%d" % i for i in range(6)]
    f = write("gated.toml", toml_tests([gated(t) for t in ids]), 0o644)
    out = path("gated.json")
    sub = subprocess.Popen(["ip", "netns", "exec", NS["n2"], ALB, "submit",
                            "--coordinator", addr, "--token-file", token,
                            "--output", out, f] + tls("client"),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, cwd=TMP)
    PROCS.append(sub)
    if not wait_for(lambda: len(started()) >= 4, 20, "four tests running"):
        return
    on_n1 = {t for t, pid in started() if runs_under(pid, nodes["n1"].pid)}
    check(len(on_n1) == 2, "n1 runs two tests (%s)" % sorted(on_n1))

    # -- the partition: n1's bridge port down, TCP connections left open -----
    t_cut = time.time()
    ip("-n", NS["c"], "link", "set", "port-n1", "down")
    line = "node 'n1' lost: no heartbeat for %d s" % NODE_TIMEOUT
    wait_for(lambda: line in read("coordinator"), NODE_TIMEOUT + 10,
             "the coordinator to declare n1 lost")
    check(line in read("coordinator"),
          "coordinator logs \"%s\" (%.1f s after the cut)" % (line, time.time() - t_cut))
    write("gate", "")
    try:
        sub.communicate(timeout=NODE_TIMEOUT + 10)
    except subprocess.TimeoutExpired:
        pass
    check(sub.returncode == 0, "submit over TLS: every test completed (exit %s)"
          % sub.returncode)
    check(time.time() - t_cut < NODE_TIMEOUT + 5,
          "n1's tests finished elsewhere %.1f s after the cut" % (time.time() - t_cut))
    res = {x["test_id"]: x for x in results(out)}
    check(sorted(res) == sorted(ids) and
          all(x.get("status") == "completed" for x in res.values()),
          "one completed outcome per test")
    check(on_n1 and all(res.get(t, {}).get("worker_id", "").startswith("n2/")
                        for t in on_n1),
          "the tests cut off on n1 finished on n2")
    # n1 never noticed: still running, the connection still open.
    check(nodes["n1"].poll() is None, "n1 kept running through the partition")

    # -- the link back: n1 is told it was dropped and joins again ------------
    ip("-n", NS["c"], "link", "set", "port-n1", "up")
    wait_for(lambda: "node 'n1' rejoined" in read("coordinator"), 30,
             "n1 to join again after the link came back")
    check("dropped by the coordinator" in read("n1"),
          "n1 logs that it was dropped")
    check("node 'n1' rejoined" in read("coordinator"), "n1 joined again")
    ids2 = ["q-%d" % i for i in range(4)]
    f2 = write("after.toml", toml_tests([gated(t) for t in ids2]), 0o644)
    out2 = path("after.json")
    r = subprocess.run(["ip", "netns", "exec", NS["n1"], ALB, "submit",
                        "--coordinator", addr, "--token-file", token,
                        "--output", out2, f2] + tls("client"),
                       capture_output=True, text=True, timeout=60, cwd=TMP)
    check(r.returncode == 0, "after the partition: submit exits 0 (%s)"
          % r.stderr.strip()[-300:])
    rows2 = results(out2)
    check(any(x.get("worker_id", "").startswith("n1/") for x in rows2),
          "n1 runs tests again")

    total = len(ids) + len(ids2)
    got = metric("c", url, "alb_tests_completed_total")
    check(got == total, "alb_tests_completed_total is %d (got %s)" % (total, got))
    con = sqlite3.connect(db)
    try:
        counts = dict(con.execute("SELECT test_id, COUNT(*) FROM journal_tests "
                                  "WHERE status IS NOT NULL GROUP BY test_id"))
    finally:
        con.close()
    check(sorted(counts) == sorted(ids + ids2)
          and all(c == 1 for c in counts.values()),
          "journal: exactly one ended record per test")
    check(coord.poll() is None, "coordinator still serving")


def main_and_clean():
    try:
        main()
    finally:
        # The processes first (finish() ends them too, but a process must
        # not outlive its namespace's removal holding it open).
        for p in PROCS:
            if p.poll() is None:
                p.kill()
                p.wait()
        remove_namespaces()


try:
    finish(main_and_clean, "netns_it: PASSED")
finally:
    remove_namespaces()
