#!/usr/bin/env python3
"""Integration test of how alb runs real tests on real processes (loopback).

- Rebalancing in a cluster: tests queued on a one-slot node move to a node
  that joins later (migration or stealing, seen in /metrics), and every test
  ends exactly once.
- Containment, with a cgroup per test and with supervisors alone
  (`--no-cgroups`): a node SIGKILLed mid-test leaves no process of that
  test alive, not even a `setsid` grandchild; the same after a timeout;
  with cgroups every process of the test is in its cgroup, emptied after
  its end. A node SIGKILLed together with its supervisors (what no
  supervisor can catch) leaves the test's processes in their cgroup; the
  next node started here kills them and removes it.
- Whole-node resources: an 8 GB node with 2 slots runs a 6 GB test, and
  two 3 GB tests at once; that node reads its settings from
  `alb node --config` (flags override the file).
- Node metrics: `alb node --metrics-port 0` serves the node's own
  /metrics (slots busy/total, tests by outcome), checked by scraping it
  while a test runs and after four tests with known outcomes.
- Strict test files: a mistyped key, `timeout = 1e10` and a test without
  a command are refused by `alb submit` and `alb run` with exit 2; a
  mistyped or out-of-range key in a node's --config by `alb node`.

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
from it_support import cgroup_of, scrape, toml_tests


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
    return start(["node", "--coordinator", addr, "--slots", "1", "--cores",
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
    # Three 3 s tests on one slot: one runs, the others wait in the
    # worker's local queue (its prefetch) on the slow node, none centrally,
    # so only a move brings them to the node that joins next. A worker
    # gives nothing back within rebalance_cooldown (2 s) of receiving it,
    # and moves are decided on events (reports): the first test's end must
    # come after the cooldown, while the third still waits (with 1.5 s
    # tests the first end came too early and at the second the third
    # started at once: nothing ever moved).
    tests = [{"test_id": "rb-%d" % i, "command": ["sleep", "3"],
              "expected_duration": 3} for i in range(3)]
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


def state_of(pid):
    """The state letter of pid (R, S, T, Z, ...; "" when gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return ""
    return stat[stat.rfind(")") + 2]


def cgroup2_mount():
    """Where cgroup v2 is mounted ("" when it is not)."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            w = line.split()
            if "-" in w[6:] and w[w.index("-", 6) + 1] == "cgroup2":
                return w[4]
    return ""




def cgroup_procs(directory):
    try:
        with open(os.path.join(directory, "cgroup.procs")) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def children(pid):
    """Pids of pid's children (every thread's)."""
    out = []
    try:
        for t in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, t)) as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def log_of(name):
    return read(name) + read(name, "out")


def start_contained_test(token, tag, extra):
    """A coordinator, a node (EXTRA flags) and one submitted test whose
    shell starts a background child and a `setsid` grandchild; returns
    (coordinator, node, submitter, [leader, bg, setsid pids]) once all
    three run, or None."""
    coord, port, _ = coordinator(token, tag + "-coordinator")
    if not port:
        return None
    addr = "127.0.0.1:%d" % port
    n = node(addr, token, tag + "-node", 2, extra)
    wait_for(lambda: "registered" in log_of(tag + "-coordinator"), 15,
             "the node")
    pids = os.path.join(TMP, tag + "-pids")
    os.mkdir(pids)
    # A background child, and a grandchild in a session of its own: both
    # outlive their parent shell unless alb contains them.
    script = ("sleep 305 & echo $! > %s/bg; "
              "setsid sleep 306 & echo $! > %s/setsid; "
              "echo $$ > %s/leader; wait") % (pids, pids, pids)
    f = write(tag + ".toml", toml_tests([{"test_id": "k", "command":
                                          ["sh", "-c", script]}]))
    sub = submit(f, port, token, os.path.join(TMP, tag + ".json"))
    files = [os.path.join(pids, x) for x in ("leader", "bg", "setsid")]
    if not wait_for(lambda: all(os.path.exists(x) and open(x).read().strip()
                                for x in files), 20, "the test's processes"):
        sub.kill()
        return None
    procs = [int(open(x).read()) for x in files]
    check(all(alive(p) for p in procs), tag + ": the test's processes run")
    return coord, n, sub, procs


def stop_all(procs, *started):
    for p in procs:
        if alive(p):
            os.kill(p, signal.SIGKILL)
    for x in started:
        if x.poll() is None:
            x.terminate()
        try:
            x.communicate(timeout=15)
        except (subprocess.TimeoutExpired, ValueError):
            x.kill()


def uses_cgroups(name):
    return "tests run in cgroups under" in log_of(name)


def test_node_sigkill_leaves_nothing(token, cgroups):
    """A node SIGKILLed mid-test: its supervisors (parent-death signal)
    kill the test's tree, with and without cgroups."""
    tag = "kill-cg" if cgroups else "kill-nocg"
    got = start_contained_test(token, tag, () if cgroups else
                               ("--no-cgroups",))
    if not got:
        return
    coord, n, sub, procs = got
    mount = cgroup2_mount()
    if cgroups:
        if not uses_cgroups(tag + "-node"):
            print("SKIP %s: the node cannot use cgroups here (%s)" % (
                tag, log_of(tag + "-node").strip().splitlines()[-1:]))
            stop_all(procs, n, sub, coord)
            return
        # Every process of the test is in its cgroup, whatever session it
        # moved to.
        cg = cgroup_of(procs[0])
        check(re.search(r"/alb-node-%d-\d+/test-\d+$" % n.pid, cg) is not None
              and all(cgroup_of(p) == cg for p in procs)
              and set(procs) <= set(cgroup_procs(mount + cg)),
              "%s: the test's processes (setsid one too) are in its cgroup "
              "%s" % (tag, cg))
    else:
        check("cgroups turned off" in log_of(tag + "-node")
              and cgroup_of(procs[0]) == cgroup_of(os.getpid()),
              "%s: --no-cgroups: the test runs in the node's cgroup, under "
              "its supervisor" % tag)
    n.send_signal(signal.SIGKILL)
    n.wait(timeout=10)
    gone = wait_for(lambda: not any(alive(p) for p in procs), 10,
                    "the test's processes to end")
    check(gone, "%s: no process of the test outlives its node "
          "(leader, background child, setsid grandchild)" % tag)
    stop_all(procs, sub, coord)


def test_node_and_supervisors_sigkilled(token):
    """The case a supervisor cannot catch: the node SIGKILLed together
    with its supervisors. With cgroups the test's processes stay in its
    cgroup, and the next node started here kills them and removes it."""
    tag = "killall"
    got = start_contained_test(token, tag, ())
    if not got:
        return
    coord, n, sub, procs = got
    if not uses_cgroups(tag + "-node"):
        print("SKIP %s: the node cannot use cgroups here" % tag)
        stop_all(procs, n, sub, coord)
        return
    mount = cgroup2_mount()
    cg = cgroup_of(procs[0])
    # Frozen first, so the node sees nothing of its supervisors' end; then
    # they and it die at once, as when the machine's OOM killer or an
    # operator's kill -9 of the process group hits them all.
    n.send_signal(signal.SIGSTOP)
    # The stop is asynchronous: a node still running would see its
    # supervisor die and kill the test's cgroup itself.
    wait_for(lambda: state_of(n.pid) == "T", 10, "the node to stop")
    sups = children(n.pid)
    check(len(sups) >= 1 and all(cgroup_of(s) != cg for s in sups),
          "%s: the node has supervisors, outside the test's cgroup" % tag)
    for s in sups:
        os.kill(s, signal.SIGKILL)
    n.send_signal(signal.SIGKILL)
    n.wait(timeout=10)
    sub.kill()
    sub.communicate()
    # No coordinator any more: the test must not run again meanwhile.
    coord.terminate()
    coord.wait(timeout=15)
    # The shell dies with its supervisor (its parent-death signal); what
    # it started has no such tie and runs on, reparented out of reach of
    # any supervisor.
    wait_for(lambda: not alive(procs[0]), 10, "the test's shell to die")
    left = procs[1:]
    check(all(alive(p) for p in left)
          and set(left) <= set(cgroup_procs(mount + cg)),
          "%s: with node and supervisors gone, the test's background child "
          "and setsid grandchild run on, held in its cgroup %s" % (tag, cg))
    stale = os.path.dirname(mount + cg)
    # A node starting here finds the cgroup of a node that is gone, kills
    # what is in it and removes it (before it even reaches a coordinator).
    again = node("127.0.0.1:1", token, tag + "-again", 1,
                 ("--connect-timeout", "0"))
    again.wait(timeout=30)
    gone = wait_for(lambda: not any(alive(p) for p in procs), 10,
                    "the stale cgroup's processes to end")
    check(gone and not os.path.exists(stale),
          "%s: the next node killed the test's processes (setsid one too) "
          "and removed %s" % (tag, stale))
    check(("removed the cgroup of a node that is gone: %s (2 processes "
           "killed)" % os.path.basename(stale)) in log_of(tag + "-again"),
          "%s: the next node says what it removed" % tag)
    stop_all(procs)


def test_timeout_kills_setsid_grandchild(token, cgroups):
    tag = "to-cg" if cgroups else "to-nocg"
    coord, port, _ = coordinator(token, tag + "-coordinator")
    if not port:
        return
    addr = "127.0.0.1:%d" % port
    n = node(addr, token, tag + "-node", 1, () if cgroups else
             ("--no-cgroups",))
    pidfile = os.path.join(TMP, tag + "-setsid")
    script = "setsid sleep 307 & echo $! > %s; wait" % pidfile
    f = write(tag + ".toml", toml_tests([{"test_id": "t", "timeout": 1.0,
                                          "command": ["sh", "-c", script]}]))
    out = os.path.join(TMP, tag + ".json")
    sub = submit(f, port, token, out)
    sub.communicate(timeout=60)
    res = results_of(out) if os.path.exists(out) else []
    check(len(res) == 1 and res[0].get("timed_out"),
          "%s: the test timed out" % tag)
    pid = int(open(pidfile).read()) if os.path.exists(pidfile) else -1
    check(pid > 0 and wait_for(lambda: not alive(pid), 10, "the grandchild"),
          "%s: its setsid grandchild is gone too" % tag)
    if cgroups and uses_cgroups(tag + "-node"):
        mine = [d for d in os.listdir(cgroup2_mount() + cgroup_of(n.pid))
                if d.startswith("alb-node-%d-" % n.pid)]
        node_dir = os.path.join(cgroup2_mount() + cgroup_of(n.pid),
                                mine[0]) if mine else ""
        # Removed, or kept empty for the next test: no process in any.
        check(node_dir and wait_for(
            lambda: not [d for d in os.listdir(node_dir)
                         if d.startswith("test-")
                         and cgroup_procs(os.path.join(node_dir, d))],
            10, "the test's cgroup to empty"),
              "%s: the test's cgroup holds no process after its end" % tag)
    if pid > 0 and alive(pid):
        os.kill(pid, signal.SIGKILL)
    n.terminate()
    coord.terminate()
    n.wait(timeout=15)
    coord.wait(timeout=15)
    if cgroups and uses_cgroups(tag + "-node"):
        check(not [d for d in os.listdir(cgroup2_mount() + cgroup_of(os.getpid()))
                   if d.startswith("alb-node-%d-" % n.pid)],
              "%s: a node that stops removes its cgroup" % tag)


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
    # alb node --config is as strict: a mistyped key, a value out of range
    # and an unknown section are refused before it connects.
    node_cases = {
        "typo": ('[node]\ncoordinator = "127.0.0.1:%d"\nslot = 2\n' % port,
                 ["node-typo.toml:3:1: unknown key 'slot' in node",
                  "did you mean 'slots'?"]),
        "range": ('[node]\ncoordinator = "127.0.0.1:%d"\nslots = 0\n' % port,
                  ["node-range.toml:3:9: node.slots: must be between 1 and"]),
        "section": ('[nodes]\ncoordinator = "127.0.0.1:%d"\n' % port,
                    ["node-section.toml:1:2: unknown key 'nodes' at top level",
                     "did you mean 'node'?"]),
        "address": ('[node]\ncoordinator = "127.0.0.1:99999"\n',
                    ["node-address.toml:2:15: node.coordinator: bad port"]),
    }
    for name, (text, parts) in node_cases.items():
        f = write("node-%s.toml" % name, text)
        r = subprocess.run([ALB, "node", "--config", f, "--token-file", token],
                           capture_output=True, text=True, timeout=30, cwd=TMP)
        check(r.returncode == 2 and all(x in r.stderr for x in parts),
              "strict: alb node --config refuses %s with exit 2 (%r)"
              % (name, r.stderr.strip()))
    r = subprocess.run([ALB, "node", "--token-file", token], capture_output=True,
                       text=True, timeout=30, cwd=TMP)
    check(r.returncode == 2 and "no coordinator" in r.stderr,
          "strict: alb node without a coordinator: exit 2 (%r)" % r.stderr.strip())
    coord.terminate()
    coord.wait(timeout=15)


def test_whole_node_pool(token):
    coord, port, _ = coordinator(token, "pool-coordinator")
    if not port:
        return
    addr = "127.0.0.1:%d" % port
    # 8 GB and 2 slots in one pool: a 6 GB test fits, and two 3 GB tests
    # run at the same time (each writes a file the other waits for). The
    # node reads its settings from --config; the --slots flag overrides the
    # file's slots = 1 (with one slot the two 3 GB tests could not meet).
    # The keys that were flags only: software, log_dir, max_output,
    # log_keep, log_max_bytes, cgroups.
    logdir = os.path.join(TMP, "pool-logs")
    conf = write("pool-node.toml", (
        "[node]\ncoordinator = %s\nname = \"pool-node\"\nslots = 1\n"
        "cores = 2\nmemory = 8\ntoken_file = %s\nreconnect_timeout = 0\n"
        "accelerators = {}\ntags = [\"pool\"]\n"
        "software = { torch = \"2.3\" }\nlog_dir = %s\n"
        "max_output = \"1MiB\"\nlog_keep = 10\nlog_max_bytes = \"8MiB\"\n"
        "cgroups = false\n")
        % (json.dumps(addr), json.dumps(token), json.dumps(logdir)))
    n = start(["node", "--config", conf, "--slots", "2"], "pool-node")
    wait_for(lambda: "registered" in read("pool-coordinator", "err")
             + read("pool-coordinator", "out"), 15, "the configured node")
    check("'pool-node'" in read("pool-node") and
          "2 slots, 2 cores, 8 GB" in read("pool-node"),
          "node --config: name, cores and memory from the file, slots from "
          "the flag (%s)" % read("pool-node").strip().splitlines()[-1:])
    check(("test logs in %s (max_output 1 MiB per test)" % logdir)
          in log_of("pool-node")
          and "cgroups turned off" in log_of("pool-node"),
          "node --config: log_dir, max_output and cgroups = false from the "
          "file")
    meet = os.path.join(TMP, "meet")
    os.mkdir(meet)
    both = ("touch %s/$T; for i in $(seq 100); do "
            "[ -e %s/a ] && [ -e %s/b ] && exit 0; sleep 0.05; done; exit 1"
            % (meet, meet, meet))
    # The file's software = { torch = "2.3" } meets a versioned need.
    tests = [{"test_id": "big", "minimum_memory": 6, "wait_limit": 20,
              "required_software": ["torch >= 2.1"],
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
          "pool: an 8 GB node with 2 slots runs a 6 GB test (needing "
          "torch >= 2.1, which the file's software offers)")
    check(any(x.startswith("big") and x.endswith(".stdout")
              for x in (os.listdir(logdir) if os.path.isdir(logdir) else [])),
          "node --config: the test's log is in the file's log_dir")
    check(res.get("half-a", {}).get("status") == "completed"
          and res.get("half-b", {}).get("status") == "completed",
          "pool: two 3 GB tests run at once on its two slots")
    n.terminate()
    n.wait(timeout=15)
    # The old --workers 2 split 8 GB into two 4 GB workers, so a 6 GB test
    # fitted neither; now it means two slots of one pool.
    w = start(["node", "--coordinator", addr, "--workers", "2", "--cores", "2",
               "--memory", "8", "--token-file", token, "--name", "pool-w2",
               "--reconnect-timeout", "0"], "pool-w2")
    f = write("pool-w2.toml", toml_tests([{"test_id": "big-w2",
                                           "minimum_memory": 6,
                                           "wait_limit": 20,
                                           "command": ["true"]}]))
    out = os.path.join(TMP, "pool-w2.json")
    sub = submit(f, port, token, out)
    try:
        sub.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        sub.kill()
        sub.communicate()
    res = results_of(out) if os.path.exists(out) else []
    check(len(res) == 1 and res[0]["status"] == "completed"
          and res[0].get("worker_id", "").startswith("pool-w2/"),
          "pool: --workers 2 no longer splits: an 8 GB node runs a 6 GB test")
    check("means --slots 2" in read("pool-w2"),
          "pool: --workers says it is --slots now")
    w.terminate()
    coord.terminate()
    w.wait(timeout=15)
    coord.wait(timeout=15)




def sample(text, name, labels=""):
    """The value of one sample (NAME{LABELS} VALUE), None when absent."""
    want = name + ("{%s}" % labels if labels else "")
    for line in text.splitlines():
        if line.split(" ")[0] == want:
            return float(line.split()[-1])
    return None


def test_node_metrics(token):
    coord, port, _ = coordinator(token, "nm-coordinator")
    if not port:
        return
    addr = "127.0.0.1:%d" % port
    n = start(["node", "--coordinator", addr, "--slots", "2", "--cores", "2",
               "--memory", "8", "--accelerators", "cuda:1", "--token-file",
               token, "--name", "nm-node", "--reconnect-timeout", "0",
               "--metrics-port", "0"], "nm-node")
    found = {}

    def bound():
        m = re.search(r"metrics: (http://\S+)", read("nm-node"))
        if m:
            found["url"] = m.group(1)
        return "url" in found and "connected" in read("nm-node")
    if not wait_for(bound, 15, "the node's /metrics"):
        return
    url = found["url"]
    gate = os.path.join(TMP, "nm-gate")
    started = os.path.join(TMP, "nm-started")
    tests = [{"test_id": "nm-pass", "command": ["true"]},
             {"test_id": "nm-fail", "command": ["false"]},
             {"test_id": "nm-timeout", "command": ["sleep", "30"],
              "timeout": 0.5},
             {"test_id": "nm-wait", "command": [
                 "sh", "-c", "touch %s; while [ ! -e %s ]; do sleep 0.05; "
                 "done" % (started, gate)]}]
    f = write("nm.toml", toml_tests(tests))
    out = os.path.join(TMP, "nm.json")
    sub = submit(f, port, token, out)
    # While nm-wait runs (and the others have ended), one slot is busy.
    wait_for(lambda: os.path.exists(started) and
             sample(scrape(url), "alb_node_tests_ended_total",
                    'outcome="timed_out"') == 1, 20, "the first three tests")
    text = scrape(url)
    check(sample(text, "alb_node_slots_busy") == 1,
          "node metrics: one slot busy while a test runs (%s)"
          % sample(text, "alb_node_slots_busy"))
    write(os.path.basename(gate), "")
    try:
        sub.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        sub.kill()
        sub.communicate()
    res = {r["test_id"]: r for r in results_of(out)} if os.path.exists(out) else {}
    text = scrape(url)
    want = {("alb_node_slots", ""): 2, ("alb_node_slots_busy", ""): 0,
            ("alb_node_cores", ""): 2,
            ("alb_node_memory_bytes", ""): 8 * 1024 ** 3,
            ("alb_node_accelerators", 'type="cuda"'): 1,
            ("alb_node_connected", ""): 1,
            ("alb_node_info", 'node="nm-node"'): 1,
            ("alb_node_tests_started_total", ""): 4,
            ("alb_node_tests_ended_total", 'outcome="passed"'): 2,
            ("alb_node_tests_ended_total", 'outcome="failed"'): 1,
            ("alb_node_tests_ended_total", 'outcome="timed_out"'): 1,
            ("alb_node_tests_ended_total", 'outcome="withdrawn"'): 0,
            ("alb_node_test_duration_seconds_count", ""): 4}
    got = {k: sample(text, *k) for k in want}
    check(got == want, "node metrics: /metrics of the node says what it ran "
          "(%s)" % {k[0] + k[1]: v for k, v in got.items() if want[k] != v})
    # The outcomes the submitter saw agree with the node's counts.
    ok = sum(1 for r in res.values() if r["status"] == "completed")
    check(len(res) == 4 and ok == 2 and res["nm-timeout"].get("timed_out"),
          "node metrics: the outcomes agree (2 passed, 1 failed, 1 timed out)")
    check("alb_tests_completed_total" not in text,
          "node metrics: no scheduler families on a node's /metrics")
    promtool = shutil.which("promtool")
    if promtool:
        r = subprocess.run([promtool, "check", "metrics"], input=text,
                           capture_output=True, text=True, timeout=30)
        check(r.returncode == 0, "node metrics: promtool check metrics is "
              "clean (%s)" % (r.stdout + r.stderr).strip()[-300:])
    n.terminate()
    coord.terminate()
    n.wait(timeout=15)
    coord.wait(timeout=15)


def main():
    token = write("token", "%032x\n" % random.getrandbits(128))
    test_strict_files(token)
    test_whole_node_pool(token)
    test_node_metrics(token)
    test_rebalancing(token)
    for cgroups in (True, False):
        test_node_sigkill_leaves_nothing(token, cgroups)
        test_timeout_kills_setsid_grandchild(token, cgroups)
    test_node_and_supervisors_sigkilled(token)


if __name__ == "__main__":
    finish(main, "all execution checks passed")
