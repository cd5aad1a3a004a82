#!/usr/bin/env python3
"""Integration test of test output on real nodes (loopback).

- Bounded output: an endless-output test (`yes`) is killed at its cap
  (the test's max_output key, or the node's --max-output) and fails with
  "output limit exceeded"; its log files hold no more than the cap.
- stdout and stderr are kept apart: separate log files on the node and
  separate tails in the outcome (output_tail keeps both, stdout first).
- The log directory stays bounded (--log-keep).
- Bad sizes are refused with exit 2 (max_output in a file, --max-output).

Every process is cleaned up; the run is bounded (well under a minute).

Usage: output_it.py PATH/TO/alb
"""

import glob
import hashlib
import json
import os
import random
import re
import subprocess
import time

from it_support import ALB, TMP, finish, check, read, start, wait_for, write
from it_support import toml_tests


def coordinator(token, name):
    start(["coordinator", "--port", "0", "--no-db", "--token-file", token],
          name)
    found = {}

    def bound():
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", read(name, "out"))
        if m:
            found["port"] = int(m.group(1))
        return "port" in found
    wait_for(bound, 15, "the coordinator's port")
    return found.get("port")


def node(port, token, name, extra=()):
    p = start(["node", "--coordinator", "127.0.0.1:%d" % port, "--cores", "2",
               "--memory", "8", "--token-file", token, "--name", name,
               "--reconnect-timeout", "0"] + list(extra), name)
    wait_for(lambda: "connected" in read(name, "err") + read(name, "out"),
             15, "node " + name)
    return p


def submit(port, token, tests, name, timeout=60):
    f = write(name + ".toml", toml_tests(tests))
    out = os.path.join(TMP, name + ".json")
    r = subprocess.run([ALB, "submit", "--coordinator", "127.0.0.1:%d" % port,
                        "--token-file", token, "--output", out, f],
                       capture_output=True, text=True, timeout=timeout,
                       cwd=TMP)
    res = {}
    if os.path.exists(out):
        with open(out) as fh:
            res = {x["test_id"]: x for x in json.load(fh)["results"]}
    return r, res


def log_files(logdir, test_id):
    """The stdout and stderr log of test_id in logdir (by the name's prefix)."""
    def one(suffix):
        pat = re.compile(re.escape(test_id) + r"-[0-9a-f]{16}\." + suffix + "$")
        found = [n for n in os.listdir(logdir) if pat.match(n)]
        return os.path.join(logdir, found[0]) if len(found) == 1 else None
    return one("stdout"), one("stderr")


def size(p):
    return os.path.getsize(p) if p and os.path.exists(p) else -1


def test_cap_and_separation(port, token, logdir):
    mib = 1 << 20
    started = time.time()
    r, res = submit(port, token, [
        # The test's own cap: 1 MiB.
        {"test_id": "endless", "command": ["yes", "spam"],
         "max_output": "1MiB", "timeout": 60},
        # The node's default (--max-output 2MiB), on stderr this time.
        {"test_id": "endless-err",
         "command": ["sh", "-c", "yes err >&2"], "timeout": 60},
        {"test_id": "apart",
         "command": ["sh", "-c", "echo to-out; echo to-err >&2; echo more-out"]},
        # Exactly at the cap is not past it.
        {"test_id": "at-cap", "max_output": 1024,
         "command": ["sh", "-c", "head -c 1024 /dev/zero"]},
    ], "cap")
    took = time.time() - started
    e = res.get("endless", {})
    check(e.get("status") == "failed"
          and "output limit exceeded" in e.get("error", ""),
          "cap: endless `yes` fails with 'output limit exceeded' (%r)"
          % e.get("error"))
    check(took < 30, "cap: stopped while it ran (%.1f s, timeout 60 s)" % took)
    out, err = log_files(logdir, "endless")
    check(0 < size(out) <= mib and size(err) == 0,
          "cap: its log holds at most the cap (%d bytes, cap %d)"
          % (size(out), mib))
    with open(out, "rb") as fh:
        head = fh.read(10)
    check(head == b"spam\nspam\n", "cap: the log starts with the output")
    e = res.get("endless-err", {})
    out, err = log_files(logdir, "endless-err")
    check(e.get("status") == "failed"
          and "output limit exceeded" in e.get("error", "")
          and 0 < size(err) <= 2 * mib and size(out) == 0,
          "cap: the node's --max-output (2 MiB) holds for stderr (%d bytes, %r)"
          % (size(err), e.get("error")))
    check(e.get("stderr_tail", "").endswith("err\n")
          and e.get("stdout_tail") == "",
          "cap: the tails are of the capped log")
    a = res.get("apart", {})
    check(a.get("status") == "completed"
          and a.get("stdout_tail") == "to-out\nmore-out\n"
          and a.get("stderr_tail") == "to-err\n",
          "apart: stdout and stderr tails kept apart (%r, %r)"
          % (a.get("stdout_tail"), a.get("stderr_tail")))
    check(a.get("output_tail") == "to-out\nmore-out\nto-err\n",
          "apart: output_tail still holds both (stdout, then stderr)")
    out, err = log_files(logdir, "apart")
    check(out and err and open(out).read() == "to-out\nmore-out\n"
          and open(err).read() == "to-err\n",
          "apart: separate stdout and stderr log files on the node")
    c = res.get("at-cap", {})
    check(c.get("status") == "completed" and size(log_files(logdir, "at-cap")[0])
          == 1024, "cap: a test writing exactly its cap passes")


def test_bounded_dir(port, token, logdir):
    tests = [{"test_id": "many-%d" % i,
              "command": ["sh", "-c", "echo %d" % i]} for i in range(6)]
    r, res = submit(port, token, tests, "many")
    check(len(res) == 6 and all(x["status"] == "completed"
                                for x in res.values()),
          "bounded: six tests ran")
    stems = {os.path.basename(p).rsplit(".", 1)[0]
             for p in glob.glob(os.path.join(logdir, "*"))}
    check(len(stems) <= 4, "bounded: --log-keep 4 keeps at most 4 tests' "
          "logs (%d)" % len(stems))
    check(log_files(logdir, "many-5")[0] is not None,
          "bounded: the newest logs are kept")


def test_bad_sizes(port, token):
    for value, part in (("12", "out of range"), ('"lots"', "not a size"),
                        ("-1", "negative"), ('"2TiB"', "out of range")):
        f = write("bad.toml", '[[tests]]\ntest_id = "a"\ncommand = ["true"]\n'
                  'max_output = %s\n' % value)
        r = subprocess.run([ALB, "submit", "--coordinator",
                            "127.0.0.1:%d" % port, "--token-file", token, f],
                           capture_output=True, text=True, timeout=30, cwd=TMP)
        check(r.returncode == 2 and "bad.toml:4" in r.stderr
              and "max_output" in r.stderr and part in r.stderr,
              "bad size: max_output = %s refused with exit 2 (%r)"
              % (value, r.stderr.strip()))
    r = subprocess.run([ALB, "node", "--coordinator", "127.0.0.1:%d" % port,
                        "--token-file", token, "--max-output", "100"],
                       capture_output=True, text=True, timeout=30, cwd=TMP)
    check(r.returncode == 2 and "--max-output" in r.stderr,
          "bad size: alb node --max-output 100 refused with exit 2 (%r)"
          % r.stderr.strip())


def main():
    token = write("token", "%032x\n" % random.getrandbits(128))
    port = coordinator(token, "coordinator")
    if not port:
        return
    logdir = os.path.join(TMP, "logs")
    node(port, token, "out-node", ["--log-dir", logdir, "--max-output",
                                   "2MiB"])
    test_bad_sizes(port, token)
    test_cap_and_separation(port, token, logdir)
    small = os.path.join(TMP, "small-logs")
    # A second coordinator and node: the first one's tests stay apart.
    port2 = coordinator(token, "coordinator2")
    node(port2, token, "keep-node", ["--log-dir", small, "--log-keep", "4"])
    test_bounded_dir(port2, token, small)


if __name__ == "__main__":
    finish(main, "all output checks passed")
