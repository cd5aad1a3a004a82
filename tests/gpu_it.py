#!/usr/bin/env python3
"""Integration test of GPU pinning and node constraints (real processes,
loopback).

- GPU pinning: a node whose `nvidia-smi` (a fake one on PATH printing the
  CSV of 2 GPUs) lists devices 0 and 1 runs two 1-GPU tests at once with
  different CUDA_VISIBLE_DEVICES, a 2-GPU test alone (its recorded run
  does not overlap theirs) with CUDA_VISIBLE_DEVICES=0,1, and a test
  needing no GPU with CUDA_VISIBLE_DEVICES set to ""; a 2-GPU test that
  times out gives both devices back to the next one.
- Garbage from nvidia-smi stops the node with exit 2 and a line naming
  the output line; `--accelerators cuda:2` skips detection.
- Constraints: of two nodes (torch 2.3 + tag gpu-rack, torch 1.13 + tag
  cpu-rack) `required_software` and `tags` steer each test to the right
  one; a requirement no node can meet fails with a reason naming it; bad
  constraint syntax is refused with exit 2 and file:line.

Every process is cleaned up; the run is bounded (well under a minute).

Usage: gpu_it.py PATH/TO/alb
"""

import json
import os
import random
import re
import subprocess
import time

from it_support import ALB, PROCS, TMP, check, finish, path, read, wait_for, write

FAKE_SMI = """#!/bin/sh
# A fake nvidia-smi: the CSV of two GPUs, for the query alb makes.
case "$*" in
  *--query-gpu=index,memory.total,name*--format=csv*)
    echo "index, memory.total [MiB], name"
    echo "0, 16384 MiB, Fake GPU A"
    echo "1, 16384 MiB, Fake GPU B"
    ;;
  *) echo "unexpected arguments: $*" >&2; exit 9 ;;
esac
"""

GARBAGE_SMI = """#!/bin/sh
echo "GPU 0: Fake GPU A (UUID: GPU-1234)"
"""


def start_env(args, name, extra_path):
    """Starts `alb ARGS` with EXTRA_PATH first on PATH (recorded in PROCS)."""
    env = dict(os.environ)
    env["PATH"] = extra_path + ":" + env.get("PATH", "/usr/bin:/bin")
    out = open(path(name + ".out"), "w")
    err = open(path(name + ".err"), "w")
    p = subprocess.Popen([ALB] + args, stdout=out, stderr=err, cwd=TMP, env=env)
    p.log_name = name
    PROCS.append(p)
    return p


def fake_bin(dirname, script):
    d = path(dirname)
    os.mkdir(d)
    write(os.path.join(dirname, "nvidia-smi"), script, 0o755)
    return d


def toml_tests(tests):
    out = []
    for t in tests:
        out.append("[[tests]]")
        for k, v in t.items():
            if isinstance(v, dict):
                out.append("%s = { %s }" % (k, ", ".join(
                    "%s = %s" % (a, json.dumps(b)) for a, b in v.items())))
            else:
                out.append("%s = %s" % (k, json.dumps(v)))
    return "\n".join(out) + "\n"


def coordinator(token):
    p = start_env(["coordinator", "--port", "0", "--no-db", "--token-file",
                   token], "coordinator", "/nonexistent")
    found = {}

    def bound():
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", read("coordinator", "out"))
        if m:
            found["port"] = int(m.group(1))
        return "port" in found
    wait_for(bound, 15, "the coordinator's port")
    return p, found.get("port")


def submit(file, port, token, output):
    r = subprocess.run(
        [ALB, "submit", "--coordinator", "127.0.0.1:%d" % port, "--token-file",
         token, "--output", output, file],
        capture_output=True, text=True, cwd=TMP, timeout=90)
    res = {}
    if os.path.exists(output):
        with open(output) as f:
            res = {x["test_id"]: x for x in json.load(f)["results"]}
    return r, res


def registered(count):
    text = read("coordinator", "err") + read("coordinator", "out")
    return text.count("registered") >= count


def recorder(name, meet=None):
    """A command that records its start, its CUDA_VISIBLE_DEVICES (or
    UNSET) and its end in NAME.run; with MEET it first touches MEET/NAME
    and waits (up to 10 s) until every file named in MEET's list exists."""
    rec = path("runs/" + name + ".run")
    body = ('echo "start $(date +%%s.%%N)" > %s; '
            'echo "cuda ${CUDA_VISIBLE_DEVICES-UNSET}" >> %s; ' % (rec, rec))
    if meet:
        d, names = meet
        body += "touch %s/%s; for i in $(seq 200); do ok=1; " % (d, name)
        for n in names:
            body += "[ -e %s/%s ] || ok=0; " % (d, n)
        body += '[ $ok = 1 ] && break; sleep 0.05; done; echo "met $ok" >> %s; ' % rec
    else:
        body += "sleep 0.5; "
    body += 'echo "end $(date +%%s.%%N)" >> %s' % rec
    return ["sh", "-c", body]


def run_record(name):
    try:
        with open(path("runs/" + name + ".run")) as f:
            lines = f.read().splitlines()
    except OSError:
        return {}
    out = {}
    for line in lines:
        k, _, v = line.partition(" ")
        out[k] = v
    return out


def test_gpu_pinning(port, token):
    os.mkdir(path("runs"))
    meet = path("meet")
    os.mkdir(meet)
    tests = [
        {"test_id": "one-a", "required_accelerators": {"cuda": 1},
         "tags": ["gpu-rack"], "command": recorder("one-a", (meet, ["one-a", "one-b"]))},
        {"test_id": "one-b", "required_accelerators": {"cuda": 1},
         "tags": ["gpu-rack"], "command": recorder("one-b", (meet, ["one-a", "one-b"]))},
        {"test_id": "two", "required_accelerators": {"cuda": 2}, "priority": 4,
         "tags": ["gpu-rack"], "command": recorder("two")},
        {"test_id": "none", "tags": ["gpu-rack"], "command": recorder("none")},
    ]
    f = write("gpu.toml", toml_tests(tests))
    r, res = submit(f, port, token, path("gpu.json"))
    check(r.returncode == 0 and len(res) == 4
          and all(x["status"] == "completed" for x in res.values()),
          "gpu: all four tests completed (exit %d, %s)"
          % (r.returncode, {k: v["status"] for k, v in res.items()}))
    check(all(x.get("worker_id", "").startswith("gpu-node") for x in res.values()),
          "gpu: they ran on the GPU node")
    a, b, two, none = (run_record(n) for n in ("one-a", "one-b", "two", "none"))
    check(a.get("met") == "1" and b.get("met") == "1",
          "gpu: the two 1-GPU tests ran at the same time")
    check({a.get("cuda"), b.get("cuda")} == {"0", "1"},
          "gpu: with different CUDA_VISIBLE_DEVICES (%r, %r)"
          % (a.get("cuda"), b.get("cuda")))
    check(two.get("cuda") == "0,1",
          "gpu: the 2-GPU test sees CUDA_VISIBLE_DEVICES=0,1 (%r)" % two.get("cuda"))
    try:
        t0, t1 = float(two["start"]), float(two["end"])
        others = [(float(x["start"]), float(x["end"])) for x in (a, b)]
        alone = all(t1 <= s or t0 >= e for s, e in others)
    except (KeyError, ValueError):
        alone = False
    check(alone, "gpu: the 2-GPU test ran alone (no overlap with the 1-GPU "
          "tests' recorded runs)")
    check(none.get("cuda") == "",
          "gpu: a test needing no GPU sees CUDA_VISIBLE_DEVICES='' (%r)"
          % none.get("cuda"))


def test_release_at_timeout(port, token):
    # A 2-GPU test that times out must give its devices back: the next
    # 2-GPU test on that node would otherwise find none free.
    tests = [{"test_id": "stuck", "required_accelerators": {"cuda": 2},
              "priority": 1, "timeout": 1, "tags": ["gpu-rack"],
              "command": ["sleep", "30"]},
             {"test_id": "next", "required_accelerators": {"cuda": 2},
              "priority": 5, "tags": ["gpu-rack"], "command": recorder("next")}]
    f = write("release.toml", toml_tests(tests))
    r, res = submit(f, port, token, path("release.json"))
    check(res.get("stuck", {}).get("timed_out") is True,
          "release: the stuck 2-GPU test timed out")
    check(res.get("next", {}).get("status") == "completed"
          and run_record("next").get("cuda") == "0,1",
          "release: the next 2-GPU test got both devices after it (%r, %r)"
          % (res.get("next", {}).get("error"), run_record("next").get("cuda")))


def test_steering(port, token):
    tests = [
        {"test_id": "new-torch", "required_software": ["torch >= 2.1"],
         "command": ["true"]},
        {"test_id": "old-torch", "required_software": ["torch<2"],
         "command": ["true"]},
        {"test_id": "exact", "required_software": ["torch = 1.13", "os = linux"],
         "command": ["true"]},
        {"test_id": "tag-cpu", "tags": ["cpu-rack"], "command": ["true"]},
        {"test_id": "tag-gpu", "tags": ["gpu-rack"], "command": ["true"]},
        {"test_id": "never", "required_software": ["torch >= 3"],
         "wait_limit": 1, "command": ["true"]},
        {"test_id": "never-tag", "tags": ["tpu-rack"], "wait_limit": 1,
         "command": ["true"]},
    ]
    f = write("steer.toml", toml_tests(tests))
    r, res = submit(f, port, token, path("steer.json"))
    where = {k: v.get("worker_id", "").split("/")[0] for k, v in res.items()}
    expect = {"new-torch": "gpu-node", "old-torch": "cpu-node",
              "exact": "cpu-node", "tag-cpu": "cpu-node", "tag-gpu": "gpu-node"}
    for t, n in expect.items():
        check(res.get(t, {}).get("status") == "completed" and where.get(t) == n,
              "steer: %s ran on %s (%r)" % (t, n, where.get(t)))
    err = res.get("never", {}).get("error", "")
    check(res.get("never", {}).get("status") == "failed"
          and "no node has software torch >= 3" in err,
          "steer: torch >= 3 fails naming the requirement (%r)" % err)
    err = res.get("never-tag", {}).get("error", "")
    check(res.get("never-tag", {}).get("status") == "failed"
          and "no node has tag tpu-rack" in err,
          "steer: an unknown tag fails naming it (%r)" % err)


def test_bad_syntax(port, token):
    cases = {
        "op": ('[[tests]]\ntest_id = "a"\ncommand = ["true"]\n'
               'required_software = ["torch >>= 2"]\n', "bad-op.toml:4"),
        "version": ('[[tests]]\ntest_id = "a"\ncommand = ["true"]\n'
                    'required_software = ["torch >= "]\n', "bad-version.toml:4"),
        "tag": ('[[tests]]\ntest_id = "a"\ncommand = ["true"]\n'
                'tags = [""]\n', "bad-tag.toml:4"),
    }
    for name, (text, where) in cases.items():
        f = write("bad-%s.toml" % name, text)
        r = subprocess.run([ALB, "submit", "--coordinator", "127.0.0.1:%d" % port,
                            "--token-file", token, "--output",
                            path("bad-%s.json" % name), f],
                           capture_output=True, text=True, timeout=30, cwd=TMP)
        check(r.returncode == 2 and where in r.stderr,
              "syntax: bad %s refused with exit 2 at %s (%r)"
              % (name, where, r.stderr.strip()))


def test_detection_errors(port, token, garbage_bin):
    addr = "127.0.0.1:%d" % port
    p = start_env(["node", "--coordinator", addr, "--token-file", token,
                   "--name", "garbage-node", "--reconnect-timeout", "0"],
                  "garbage-node", garbage_bin)
    p.wait(timeout=30)
    err = read("garbage-node")
    check(p.returncode == 2 and "nvidia-smi output line 1" in err
          and "--accelerators" in err,
          "detect: garbage from nvidia-smi stops the node with exit 2 (%r)"
          % err.strip())
    p = start_env(["node", "--coordinator", addr, "--token-file", token,
                   "--name", "told-node", "--accelerators", "cuda:2",
                   "--reconnect-timeout", "0"], "told-node", garbage_bin)
    ok = wait_for(lambda: registered(3), 15, "the node told its accelerators")
    check(ok and p.poll() is None,
          "detect: --accelerators cuda:2 skips nvidia-smi (no error)")
    p.terminate()
    p.wait(timeout=15)


def main():
    token = write("token", "%032x\n" % random.getrandbits(128))
    smi = fake_bin("smi-bin", FAKE_SMI)
    garbage = fake_bin("garbage-bin", GARBAGE_SMI)
    coord, port = coordinator(token)
    if not port:
        return
    addr = "127.0.0.1:%d" % port
    gpu = start_env(["node", "--coordinator", addr, "--token-file", token,
                     "--name", "gpu-node", "--slots", "3", "--cores", "4",
                     "--memory", "8", "--software", "torch=2.3,cuda=12.1",
                     "--tags", "gpu-rack", "--reconnect-timeout", "0"],
                    "gpu-node", smi)
    cpu = start_env(["node", "--coordinator", addr, "--token-file", token,
                     "--name", "cpu-node", "--slots", "2", "--cores", "2",
                     "--memory", "8", "--software", "torch=1.13",
                     "--tags", "cpu-rack", "--reconnect-timeout", "0"],
                    "cpu-node", "/nonexistent")
    if not wait_for(lambda: registered(2), 20, "both nodes"):
        return
    check("GPUs from nvidia-smi: 0 Fake GPU A (16384 MiB), 1 Fake GPU B"
          in read("gpu-node"), "detect: the GPU node read its GPUs from nvidia-smi")
    test_gpu_pinning(port, token)
    test_release_at_timeout(port, token)
    test_steering(port, token)
    test_bad_syntax(port, token)
    test_detection_errors(port, token, garbage)
    for p in (gpu, cpu, coord):
        p.terminate()
    for p in (gpu, cpu, coord):
        p.wait(timeout=15)


if __name__ == "__main__":
    finish(main, "all gpu checks passed")
