#!/usr/bin/env python3
"""What `alb submit` reports, and how the cluster's processes log, checked
on a real 2-node loopback cluster (issue 14, items 2 and 4).

A suite with passing, failing, signalled and timed-out tests (one printing
control characters, XML markup and invalid UTF-8) is submitted with
--output and --junit: the JSON has ISO-8601 start/end times with zone,
durations, node, attempts and exit code or signal as separate fields; the
non-terminal run prints one line per ended test; the JUnit file is
well-formed for libxml2 (xmllint) and read by junit2json (an npm JUnit
consumer), with testcase count, failures, errors and times equal to the
run's own JSON. `--output -` puts only the JSON on stdout; on a terminal
(a pty) the progress line is redrawn in place. The coordinator's and
nodes' log lines all start with an ISO-8601 time with zone, a level and a
component; --log-level DEBUG adds connection and placement-summary lines;
--log-format json gives one JSON object per line. About 15 s.

Usage: report_it.py PATH/TO/alb TESTS_DIR
"""

import datetime
import json
import os
import pty
import re
import select
import shutil
import subprocess
import sys
import time

from it_support import ALB, TMP, check, finish, read, start, wait_for, write
from it_support import toml_tests

TESTS_DIR = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else os.path.dirname(
    os.path.abspath(__file__))
LOG_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d) (DEBUG|INFO|WARNING|ERROR) "
    r"([a-z][a-z_]*): .")


def iso(s):
    """A datetime from an ISO-8601 string with zone (None when it is not)."""
    try:
        d = datetime.datetime.fromisoformat(s)
    except (TypeError, ValueError):
        return None
    return d if d.tzinfo is not None else None


def start_cluster(name, extra):
    coord = start(["coordinator", "--port", "0", "--no-db"] + extra, name)
    port = []

    def bound():
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", read(name, "out"))
        if m:
            port.append(int(m.group(1)))
        return bool(port)
    if not wait_for(bound, 15, name + "'s port"):
        return None
    return coord, port[0]


def submit(port, file, extra, stderr=subprocess.PIPE):
    args = [ALB, "submit", "--coordinator", "127.0.0.1:%d" % port] + extra + [file]
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=stderr, timeout=60,
                          cwd=TMP)


def main():
    started = start_cluster("coordinator", ["--log-level", "DEBUG"])
    if not started:
        return
    coord, port = started
    addr = "127.0.0.1:%d" % port
    for n in ("n1", "n2"):
        start(["node", "--coordinator", addr, "--cores", "2", "--memory", "4",
               "--name", n, "--reconnect-timeout", "0", "--log-level", "DEBUG"], n)
    wait_for(lambda: read("coordinator").count("registered in slot") >= 2, 15,
             "two workers")

    # -- 1. outcomes: times, node, attempts, exit code or signal -------------
    nasty = r"printf 'a<b>&\"c\" \033[31mred\001 bad:\377\376 end\n'; exit 3"
    suite = [
        {"test_id": "ok.pass_a", "command": ["sh", "-c", "echo hello"]},
        {"test_id": "ok.pass_b", "command": ["sh", "-c", "sleep 0.3"]},
        {"test_id": "bad.exit3", "command": ["sh", "-c", nasty]},
        {"test_id": "bad::killed", "command": ["sh", "-c", "kill -9 $$"]},
        {"test_id": "slow/hang", "command": ["sleep", "30"], "timeout": 1.0},
    ]
    f = write("suite.toml", toml_tests(suite), 0o644)
    out_json = os.path.join(TMP, "suite.json")
    out_xml = os.path.join(TMP, "suite.xml")
    t0 = datetime.datetime.now(datetime.timezone.utc)
    r = submit(port, f, ["--output", out_json, "--junit", out_xml])
    t1 = datetime.datetime.now(datetime.timezone.utc)
    err = r.stderr.decode("utf-8", "replace")
    check(r.returncode == 1, "suite: exit 1 as tests failed (got %d: %s)"
          % (r.returncode, err[-300:]))
    try:
        with open(out_json, encoding="utf-8") as fh:
            doc = json.load(fh)
        res = {x["test_id"]: x for x in doc["results"]}
    except (OSError, ValueError, KeyError) as e:
        check(False, "suite: --output JSON written and valid despite invalid UTF-8 "
              "output (%r)" % e)
        return
    check(len(res) == len(suite), "suite: one outcome per test")
    for tid, x in res.items():
        s, e, q = iso(x.get("started_at")), iso(x.get("ended_at")), iso(x.get("submitted_at"))
        check(s is not None and e is not None and q is not None,
              "%s: submitted/started/ended_at are ISO-8601 with zone (%s, %s)"
              % (tid, x.get("started_at"), x.get("ended_at")))
        if s and e and q:
            dur = (e - s).total_seconds()
            check(abs(dur - x.get("duration_seconds", -1)) < 0.01
                  and t0 - datetime.timedelta(seconds=1) <= q <= s <= e
                  <= t1 + datetime.timedelta(seconds=1),
                  "%s: submitted <= started <= ended within the run, end - start "
                  "= duration_seconds (%.3f vs %s)" % (tid, dur, x.get("duration_seconds")))
            check(abs((s - q).total_seconds() - x.get("queued_seconds", -1)) < 0.01,
                  "%s: queued_seconds = started - submitted" % tid)
        check(x.get("node") in ("n1", "n2")
              and x.get("worker_id", "").startswith(x.get("node", "?") + "/")
              and x.get("attempts") == 1,
              "%s: node, worker and attempts (%s, %s, %s)"
              % (tid, x.get("node"), x.get("worker_id"), x.get("attempts")))
    check(res["ok.pass_a"].get("exit_code") == 0 and res["ok.pass_a"].get("signal") is None,
          "pass: exit code 0, no signal")
    x = res["bad.exit3"]
    check(x.get("exit_code") == 3 and x.get("signal") is None and not x.get("timed_out"),
          "exit 3: exit code 3, no signal")
    x = res["bad::killed"]
    check(x.get("signal") == 9 and x.get("signal_name") == "SIGKILL"
          and x.get("exit_code") is None,
          "kill -9: signal 9 (SIGKILL), exit code null (%s, %s)"
          % (x.get("signal"), x.get("exit_code")))
    x = res["slow/hang"]
    check(x.get("timed_out") and x.get("exit_code") is None and x.get("signal") is None,
          "timeout: timed_out, no exit code, no signal")
    lines = [l for l in err.splitlines() if re.match(r"^\[\d/5\] ", l)]
    check(len(lines) == 5 and all(any(t["test_id"] in l for l in lines) for t in suite),
          "not a terminal: one line per ended test (%d)" % len(lines))
    check(any("bad::killed" in l and "SIGKILL" in l for l in lines)
          and any("bad.exit3" in l and "exit 3" in l for l in lines)
          and any(re.search(r"passed\s+ok\.pass_a .* on n[12] \(n[12]/w0\)", l) for l in lines),
          "per-test lines name the status, node, worker, signal or exit status")

    # -- 2. JUnit XML: well-formed, read by a real consumer, same numbers ------
    xl = subprocess.run(["xmllint", "--noout", out_xml], capture_output=True, text=True)
    check(xl.returncode == 0, "junit: xmllint finds it well-formed (%s)" % xl.stderr[-300:])
    node = shutil.which("node")
    parse = os.path.join(TESTS_DIR, "junit_js", "parse.mjs")
    modules = os.path.join(TESTS_DIR, "junit_js", "node_modules", "junit2json")
    check(node is not None and os.path.isdir(modules),
          "junit: node and junit2json present (run 'npm ci' in tests/junit_js)")
    if node and os.path.isdir(modules):
        p = subprocess.run([node, parse, out_xml], capture_output=True, text=True)
        check(p.returncode == 0, "junit: junit2json reads it (%s)" % p.stderr[-300:])
        if p.returncode == 0:
            j = json.loads(p.stdout)
            failed = [t for t, x in res.items() if not x["success"]]
            check(j["tests"] == len(res) and len(j["cases"]) == len(res),
                  "junit: one testcase per test (%s)" % j["tests"])
            check(j["failures"] == 1 and j["errors"] == 2 and j["skipped"] == 0
                  and j["failures"] + j["errors"] == len(failed),
                  "junit: 1 failure (exit 3), 2 errors (signal, timeout) (%s, %s)"
                  % (j["failures"], j["errors"]))
            by = {(c["classname"], c["name"]): c for c in j["cases"]}
            names = {"ok.pass_a": ("ok", "pass_a"), "ok.pass_b": ("ok", "pass_b"),
                     "bad.exit3": ("bad", "exit3"), "bad::killed": ("bad", "killed"),
                     "slow/hang": ("slow", "hang")}
            for tid, key in names.items():
                c = by.get(key)
                check(c is not None and abs(c["time"] - res[tid]["duration_seconds"]) < 0.001,
                      "junit: %s is %s.%s with time = duration_seconds" % (tid, key[0], key[1]))
            c = by.get(("bad", "exit3"), {})
            fl = (c.get("failure") or [{}])[0]
            check(fl.get("message") == "exit status 3" and fl.get("type") == "exit_status"
                  and "red" in c.get("systemOut", "") and "\u241b" in c.get("systemOut", "")
                  and "\ufffd" in c.get("systemOut", "") and "a<b>&" in c.get("systemOut", "")
                  and '"c' in c.get("systemOut", ""),
                  "junit: failure message, and output with markup, control characters "
                  "and invalid UTF-8 carried safely")
            er = (by.get(("bad", "killed"), {}).get("error") or [{}])[0]
            check(er.get("type") == "signal" and "SIGKILL" in er.get("inner", ""),
                  "junit: the signalled test is an error naming SIGKILL")
            ts = iso(j["suites"][0].get("timestamp") if j["suites"] else None)
            check(ts is not None and t0 - datetime.timedelta(seconds=1) <= ts <= t1,
                  "junit: testsuite timestamp is ISO-8601 with zone, at the run's start")

    # -- 3. --output -: only the JSON on stdout --------------------------------
    quick = write("quick.toml", toml_tests([
        {"test_id": "q1", "command": ["true"]},
        {"test_id": "q2", "command": ["true"]}]), 0o644)
    r = submit(port, quick, ["--output", "-"])
    try:
        d = json.loads(r.stdout.decode())
        ok = r.returncode == 0 and len(d.get("results", [])) == 2
    except ValueError:
        ok = False
    check(ok and b"2 tests: 2 passed" in r.stderr,
          "--output -: stdout is the JSON alone, table and summary on stderr")

    # -- 4. a terminal: progress line redrawn in place -------------------------
    master, slave = pty.openpty()
    p = subprocess.Popen([ALB, "submit", "--coordinator", addr, quick],
                         stdout=subprocess.PIPE, stderr=slave, cwd=TMP)
    os.close(slave)
    seen = b""
    deadline = time.time() + 30
    while time.time() < deadline:
        rd, _, _ = select.select([master], [], [], 0.2)
        if rd:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        elif p.poll() is not None:
            break
    p.wait(timeout=30)
    os.close(master)
    check(re.search(rb"\r\[ *[\d.]+s\] \d/2 ended: \d passed, 0 failed", seen) is not None
          and b"\x1b[K" in seen and re.search(rb"\[\d/2\] passed", seen) is None,
          "terminal: progress line redrawn in place, no per-test lines (%r)" % seen[-200:])

    # -- 5. logs: ISO-8601 time with zone, level, component; DEBUG adds lines --
    wait_for(lambda: re.search(r" DEBUG scheduler: placed \d+ tests in the last",
                               read("coordinator")) is not None,
             10, "a placement summary (DEBUG, every 5 s)")
    clog = read("coordinator")
    check(re.search(r" DEBUG coordinator: client connected from 127\.0\.0\.1:\d+", clog)
          is not None and " DEBUG coordinator: client " in clog and "disconnected" in clog,
          "DEBUG: client connections and disconnections with their address")
    check(re.search(r" DEBUG node: connecting to 127\.0\.0\.1:\d+ \(attempt 1\)", read("n1"))
          is not None, "DEBUG: the node's connection attempts")
    check(len(re.findall(r" DEBUG scheduler: placed ", clog)) < 5,
          "DEBUG: placements summarised, not one line per test")
    for name in ("coordinator", "n1", "n2"):
        log = read(name).splitlines()
        bad = [l for l in log if not LOG_LINE.match(l) or iso(l.split(" ")[0]) is None]
        check(log and not bad, "%s: every log line is 'ISO-8601 LEVEL component: msg' "
              "(%d lines, bad: %r)" % (name, len(log), bad[:2]))
    coord.terminate()
    coord.wait(timeout=15)

    started = start_cluster("coordinator-json", ["--log-format", "json"])
    if started:
        c2, _ = started
        c2.terminate()
        c2.wait(timeout=15)
        lines = read("coordinator-json").splitlines()
        ok = bool(lines)
        for l in lines:
            try:
                o = json.loads(l)
                ok = ok and set(o) == {"ts", "level", "component", "msg"} \
                    and iso(o["ts"]) is not None
            except ValueError:
                ok = False
        check(ok, "--log-format json: every line a JSON object with ts, level, "
              "component, msg (%d lines)" % len(lines))
    # A run command: its progress lines (off a terminal) as JSON log lines.
    r = subprocess.run([ALB, "stress", "--workers", "2", "--tests", "10", "--duration",
                        "1", "--deterministic", "--log-format", "json", "--output",
                        os.path.join(TMP, "stress.json")],
                       capture_output=True, text=True, timeout=60, cwd=TMP)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    try:
        objs = [json.loads(l) for l in lines]
        ok = r.returncode == 0 and objs and all(
            set(o) == {"ts", "level", "component", "msg"} and iso(o["ts"]) for o in objs) \
            and any(o["component"] == "stress" and "submitted" in o["msg"] for o in objs)
    except ValueError:
        ok = False
    check(ok, "alb stress --log-format json: progress lines are JSON log lines (%r)"
          % lines[-2:])
    r = subprocess.run([ALB, "coordinator", "--log-format", "xml"], capture_output=True,
                       text=True, timeout=15)
    check(r.returncode == 2 and "--log-format" in r.stderr,
          "--log-format xml: exit 2 naming the flag")


finish(main, "report_it: PASSED")
