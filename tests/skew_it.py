#!/usr/bin/env python3
"""Integration test of rebalancing on a skewed cluster (real processes,
loopback): two nodes, one slow (its tests sleep 2 s where the other's sleep
0.05 s: each node runs in a directory whose `speed` file the test command
reads), and more tests than both hold at once, so the slow node's local
queue is long while the fast node runs dry.

It checks that
- `migrated` or `stolen` > 0 in the submitter's outcome stats (the JSON of
  `alb submit --output`),
- those stats equal the coordinator's `alb_tests_migrated_total` and
  `alb_tests_stolen_total` on /metrics and the sum over the outcome
  records,
- every test ends exactly once: one outcome per test, and one run per test
  (each run appends a line to a file of its own, so a test that was moved
  and also ran where it was would show two),
- the nodes' own /metrics count one start per test between them.

Bounded: about 10 s. Usage: skew_it.py PATH/TO/alb
"""

import json
import os
import random
import re
import subprocess

from it_support import ALB, TMP, check, finish, read, scrape, start, total
from it_support import wait_for, write

TESTS = 24
SLOW_SECONDS = 2.0
FAST_SECONDS = 0.05






def url_in(name):
    m = re.search(r"metrics: (http://\S+)", read(name, "out") + read(name))
    return m.group(1) if m else None


def main():
    token = write("token", "%032x\n" % random.getrandbits(128))
    coord = start(["coordinator", "--port", "0", "--no-db", "--token-file",
                   token, "--metrics-port", "0"], "coordinator")
    found = {}

    def bound():
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)",
                      read("coordinator", "out"))
        if m:
            found["port"] = int(m.group(1))
        found["metrics"] = url_in("coordinator")
        return "port" in found and found["metrics"]
    if not wait_for(bound, 15, "the coordinator"):
        return
    addr = "127.0.0.1:%d" % found["port"]
    runs = os.path.join(TMP, "runs")
    os.mkdir(runs)
    nodes = {}
    for name, seconds in (("slow", SLOW_SECONDS), ("fast", FAST_SECONDS)):
        d = os.path.join(TMP, name)
        os.mkdir(d)
        with open(os.path.join(d, "speed"), "w") as f:
            f.write("%g\n" % seconds)
        nodes[name] = start(["node", "--coordinator", addr, "--slots", "2",
                             "--cores", "2", "--memory", "8", "--token-file",
                             token, "--name", name, "--reconnect-timeout",
                             "0", "--metrics-port", "0"], name, cwd=d)
    if not wait_for(lambda: read("coordinator").count("registered in slot")
                    >= 2 and url_in("slow") and url_in("fast"), 15,
                    "both nodes"):
        return
    # The same command everywhere; where it runs decides how long it takes.
    tests = []
    for i in range(TESTS):
        tests.append('[[tests]]\ntest_id = "s-%d"\ncommand = ["sh", "-c", '
                     '"echo run >> %s/s-%d; sleep $(cat speed)"]\n'
                     % (i, runs, i))
    f = write("skew.toml", "".join(tests))
    out = os.path.join(TMP, "skew.json")
    r = subprocess.run([ALB, "submit", "--coordinator", addr, "--token-file",
                        token, "--output", out, f], capture_output=True,
                       text=True, timeout=120, cwd=TMP)
    check(r.returncode == 0, "skew: alb submit exit 0 (got %d: %s)"
          % (r.returncode, r.stderr.strip()[-300:]))
    if not os.path.exists(out):
        check(False, "skew: alb submit wrote its JSON")
        return
    with open(out) as fh:
        doc = json.load(fh)
    res = doc["results"]
    stats = doc.get("stats", {})
    ids = [x["test_id"] for x in res]
    want = ["s-%d" % i for i in range(TESTS)]
    check(sorted(ids) == sorted(want),
          "skew: every test has exactly one outcome (%d for %d tests)"
          % (len(ids), TESTS))
    check(all(x["status"] == "completed" for x in res),
          "skew: every test completed")

    def run_count(i):
        try:
            with open(os.path.join(runs, i)) as fh:
                return len(fh.read().splitlines())
        except OSError:
            return 0
    counts = {i: run_count(i) for i in want}
    check(all(c == 1 for c in counts.values()),
          "skew: every test ran exactly once (%s)"
          % {i: c for i, c in counts.items() if c != 1})
    migrated = stats.get("migrated", -1)
    stolen = stats.get("stolen", -1)
    check(migrated + stolen > 0,
          "skew: outcome stats show moves: migrated %d + stolen %d > 0"
          % (migrated, stolen))
    rec_m = sum(x.get("migrated", 0) for x in res)
    rec_s = sum(x.get("stolen", 0) for x in res)
    check((rec_m, rec_s) == (migrated, stolen),
          "skew: outcome stats = sum over the outcome records (%d, %d)"
          % (rec_m, rec_s))
    text = scrape(found["metrics"])
    met_m = total(text, "alb_tests_migrated_total")
    met_s = total(text, "alb_tests_stolen_total")
    check((met_m, met_s) == (migrated, stolen),
          "skew: outcome stats = coordinator /metrics (migrated %g, stolen %g)"
          % (met_m, met_s))
    moved_fast = sum(1 for x in res if x.get("migrated", 0) + x.get("stolen", 0)
                     and x["worker_id"].startswith("fast/"))
    check(moved_fast > 0, "skew: %d moved tests ended on the fast node"
          % moved_fast)
    check(stats.get("completed") == TESTS and stats.get("failed") == 0
          and stats.get("without_outcome") == 0,
          "skew: outcome stats count %d completed, 0 failed, 0 open (%s)"
          % (TESTS, stats))
    started = sum(total(scrape(url_in(n)), "alb_node_tests_started_total")
                  for n in ("slow", "fast"))
    check(started == TESTS, "skew: the nodes' /metrics count %g starts for %d "
          "tests" % (started, TESTS))
    for p in list(nodes.values()) + [coord]:
        p.terminate()
    for p in list(nodes.values()) + [coord]:
        p.wait(timeout=15)


if __name__ == "__main__":
    finish(main, "all skew checks passed")
