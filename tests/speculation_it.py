#!/usr/bin/env python3
"""Integration test of speculative copies on a real cluster (real processes,
loopback; README "Speculation").

A coordinator (journal, /metrics, `performance_based`) and node "slow" with
3 slots. Each node runs in a directory of its own whose `mode` file the
test commands read: on "slow" they run until stopped, on "fast" they end at
once. Two tests of model m (expected 1 s) start on "slow": `spec` and
`once` (`speculate = false`, it ends when the file `gate` appears). A
calibration test of model m that only "slow" may run (tag) teaches the
coordinator that "slow" takes ~40x the expected time for m. Then node
"fast" (2 slots, nothing learned: nominal) joins, idle. `spec` has run far
past its expected second and is expected to need ~40 s more on "slow"
against 1 s on "fast": it gets a copy on "fast", the copy wins, and the
run on "slow" is stopped as `alb cancel` stops one (its shell, its child
and its process group are gone; its cgroup, where the node made one, is
empty). `once` is never copied though "fast" had a free slot in the same
pass. Checked:
- the outcome of `spec` is the copy's: node "fast", its output, and
  `speculated`/`speculation_won` in the submitter's JSON; `once` ends on
  "slow", not speculated; the JSON's stats count 1 speculated, 1 win;
- /metrics: alb_tests_speculated_total 1, alb_speculation_wins_total 1;
- every test ends exactly once: one outcome each in the JSON, one testcase
  each in the JUnit file, one ended (then retired) journal row each, with
  the same node and speculation flags; `once` never started on "fast".

About 10 s. Usage: speculation_it.py PATH/TO/alb
"""

import json
import os
import random
import re
import sqlite3
import subprocess
import xml.etree.ElementTree as ET

from it_support import ALB, PROCS, TMP, alive, check, finish, group_members
from it_support import cgroup_of, read, scrape, start, toml_tests, total
from it_support import wait_for, write






def number_in(p):
    try:
        with open(p) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None




def cgroup_procs(cg):
    """Processes left in cgroup CG (none when it is gone)."""
    try:
        with open("/sys/fs/cgroup" + cg + "/cgroup.procs") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


# The one command of the suite: the node's `mode` file decides. It writes
# NAME.pid (its shell) and, where it waits, NAME.child (a child that must
# die with it) in the node's directory.
def command(name, wait):
    return ["sh", "-c",
            'echo $$ > %s.tmp; mv %s.tmp %s.pid; '
            'if [ "$(cat mode)" = slow ]; then %s & echo $! > %s.child; wait; '
            'fi; echo "%s ran on $(cat mode)"'
            % (name, name, name, wait, name, name)]


def main():
    token = write("token", "%032x\n" % random.getrandbits(128))
    db = os.path.join(TMP, "alb.db")
    start(["coordinator", "--port", "0", "--db-path", db, "--token-file",
           token, "--metrics-port", "0", "--scheduler", "performance_based"],
          "coordinator")
    found = {}

    def bound():
        out = read("coordinator", "out")
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", out)
        mm = re.search(r"metrics: (http://\S+)", out + read("coordinator"))
        if m:
            found["port"] = int(m.group(1))
        if mm:
            found["metrics"] = mm.group(1)
        return "port" in found and "metrics" in found
    if not wait_for(bound, 15, "the coordinator"):
        return
    addr = "127.0.0.1:%d" % found["port"]
    dirs = {}
    for name in ("slow", "fast"):
        dirs[name] = os.path.join(TMP, name)
        os.mkdir(dirs[name])
        with open(os.path.join(dirs[name], "mode"), "w") as f:
            f.write(name + "\n")

    def node(name, slots):
        return start(["node", "--coordinator", addr, "--slots", str(slots),
                      "--cores", str(slots), "--memory", "8", "--token-file",
                      token, "--name", name, "--tags", name,
                      "--reconnect-timeout", "0"], name, cwd=dirs[name])

    def client(*args):
        return [ALB, "submit", "--coordinator", addr, "--token-file",
                token] + list(args)
    node("slow", 3)
    if not wait_for(lambda: "worker 'slow/w0'" in read("coordinator"), 15,
                    "node slow"):
        return
    gate = os.path.join(TMP, "gate")
    suite = write("suite.toml", toml_tests([
        {"test_id": "spec", "model_id": "m", "expected_duration": 1.0,
         "command": command("spec", "sleep 300")},
        {"test_id": "once", "model_id": "m", "expected_duration": 1.0,
         "speculate": False,
         "command": command("once", "while [ ! -e %s ]; do sleep 0.05; done"
                            % gate)},
    ]), 0o644)
    out = os.path.join(TMP, "suite.json")
    junit = os.path.join(TMP, "suite.xml")
    sub = subprocess.Popen(client("--output", out, "--junit", junit, suite),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, cwd=TMP)
    PROCS.append(sub)
    slow_file = lambda f: os.path.join(dirs["slow"], f)
    fast_file = lambda f: os.path.join(dirs["fast"], f)
    if not wait_for(lambda: all(number_in(slow_file(t + ".child"))
                                for t in ("spec", "once")), 20,
                    "spec and once running on slow"):
        return
    shell = number_in(slow_file("spec.pid"))
    child = number_in(slow_file("spec.child"))
    with open("/proc/%d/stat" % shell) as f:
        pgid = int(f.read().rsplit(")", 1)[1].split()[2])
    cg = cgroup_of(shell)
    own_cg = cg and cg != cgroup_of(os.getpid()) and cg != cgroup_of(
        PROCS[1].pid)
    check(alive(shell) and alive(child), "spec runs on slow with a child")

    # The pace of node slow for model m: ~40x the expected time.
    calib = write("calib.toml", toml_tests([
        {"test_id": "calibrate", "model_id": "m", "expected_duration": 0.05,
         "tags": ["slow"], "command": ["sleep", "2"]}]), 0o644)
    r = subprocess.run(client(calib), capture_output=True, text=True,
                       timeout=60, cwd=TMP)
    check(r.returncode == 0, "the calibration test passed on slow (exit %d: %s)"
          % (r.returncode, r.stderr.strip()[-300:]))
    check(total(scrape(found["metrics"]), "alb_tests_speculated_total") == 0,
          "no copy while node slow is alone")

    node("fast", 2)
    if not wait_for(lambda: number_in(fast_file("spec.pid")) is not None, 20,
                    "a copy of spec on node fast"):
        return

    def gone():
        return (not alive(shell) and not alive(child)
                and not group_members(pgid)
                and not (own_cg and cgroup_procs(cg)))
    wait_for(gone, 15, "the run of spec on slow to be stopped")
    check(gone(), "the losing run on slow is stopped: shell, child, process "
          "group%s gone" % (" and cgroup" if own_cg else ""))
    check(alive(number_in(slow_file("once.pid")) or 0),
          "once still runs on slow")
    check(not os.path.exists(fast_file("once.pid")),
          "once (speculate = false) never started on fast")
    # once ends: then the submitter has both outcomes.
    write("gate", "")
    try:
        sout, serr = sub.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        check(False, "the submitter finished")
        return
    check(sub.returncode == 0, "the submitter exits 0 (got %d: %s)"
          % (sub.returncode, serr.strip()[-300:]))
    check(not os.path.exists(fast_file("once.pid")),
          "once never ran on fast")

    with open(out) as fh:
        doc = json.load(fh)
    res = doc["results"]
    ids = [x["test_id"] for x in res]
    check(sorted(ids) == ["once", "spec"],
          "one outcome per test in the JSON (%s)" % ids)
    by = {x["test_id"]: x for x in res}
    s = by.get("spec", {})
    check(s.get("status") == "completed" and s.get("node") == "fast"
          and s.get("worker_id") == "fast/w0"
          and "spec ran on fast" in s.get("stdout_tail", ""),
          "spec's outcome is the copy's, from node fast (%s, %s, %r)"
          % (s.get("node"), s.get("worker_id"), s.get("stdout_tail")))
    check(s.get("speculated") is True and s.get("speculation_won") is True,
          "spec: speculated and won in the JSON")
    o = by.get("once", {})
    check(o.get("status") == "completed" and o.get("node") == "slow"
          and "once ran on slow" in o.get("stdout_tail", "")
          and o.get("speculated") is False
          and o.get("speculation_won") is False,
          "once ran on slow only, not speculated (%s)" % o)
    stats = doc.get("stats", {})
    check(stats.get("speculated_tests") == 1
          and stats.get("speculation_wins") == 1,
          "JSON stats: 1 speculated, 1 win (%s)" % stats)
    text = scrape(found["metrics"])
    spec_n = total(text, "alb_tests_speculated_total")
    wins_n = total(text, "alb_speculation_wins_total")
    check((spec_n, wins_n) == (1, 1),
          "/metrics: alb_tests_speculated_total 1, alb_speculation_wins_total "
          "1 (%g, %g)" % (spec_n, wins_n))
    check(total(text, "alb_tests_completed_total") == 3,
          "/metrics: 3 completed (spec once, once, calibrate)")
    cases = [c.get("name") for c in ET.parse(junit).getroot().iter("testcase")]
    check(sorted(cases) == ["once", "spec"],
          "one JUnit testcase per test (%s)" % cases)
    con = sqlite3.connect(db)
    rows = con.execute("SELECT test_id, state, node, speculated, "
                       "speculation_won FROM journal_tests WHERE test_id IN "
                       "('spec', 'once')").fetchall()
    con.close()
    # Ended, and retired once the submitter that received them left.
    check(sorted((t, st != "open", n, a, b) for t, st, n, a, b in rows)
          == [("once", True, "slow", 0, 0), ("spec", True, "fast", 1, 1)],
          "journal: one ended row per test with the outcome's node and "
          "flags (%s)" % rows)


if __name__ == "__main__":
    finish(main, "all speculation checks passed")
