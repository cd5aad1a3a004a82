#!/usr/bin/env python3
"""The default placement strategy is adaptive in every command that places
tests (alb benchmark measured it best on heterogeneous fleets: README,
"alb benchmark"): a coordinator started without --scheduler names it in its
start line, `alb run` passes it on, the simulated runs (stress, spike, a
scenario without a strategy of its own) record it in their JSON, and each
command's --help says so. --disable-load-balancer still means round_robin,
and a scenario's own strategy still wins over the default.

Usage: defaults_it.py ALB_BINARY SOURCE_DIR
"""
import json
import os
import re
import signal
import subprocess
import sys

alb, src = sys.argv[1], sys.argv[2]
failures = []
# No configuration from the caller's environment: only the built-in default.
env = {k: v for k, v in os.environ.items()
       if k not in ("LB_CONFIG_PATH", "LB_DEFAULT_DURATION", "LB_MAX_WORKERS")}
env["ALB_SCENARIOS_PATH"] = os.path.join(src, "configs", "scenarios.toml")


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def run(*args, timeout=120):
    p = subprocess.run([alb, *args], capture_output=True, text=True,
                       timeout=timeout, env=env)
    return p.returncode, p.stdout, p.stderr


def coordinator_start_line(*args):
    """The first line `alb coordinator --port 0 --no-db ARGS` prints, after
    which it is stopped with SIGTERM (and must stop cleanly)."""
    p = subprocess.Popen([alb, "coordinator", "--port", "0", "--no-db", *args],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=env)
    try:
        line = p.stdout.readline()
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
    check(p.returncode == 0, f"coordinator {args} stops on SIGTERM with 0 "
          f"(got {p.returncode})")
    return line


line = coordinator_start_line()
check(re.search(r"listening on 127\.0\.0\.1:\d+ \(strategy adaptive\)", line)
      is not None, f"a coordinator without --scheduler places with adaptive: "
      f"{line!r}")
line = coordinator_start_line("--disable-load-balancer")
check("(strategy round_robin)" in line,
      f"--disable-load-balancer is round_robin: {line!r}")
line = coordinator_start_line("--scheduler", "least_loaded")
check("(strategy least_loaded)" in line, f"--scheduler wins: {line!r}")
# The shipped cluster example no longer restates a default.
line = coordinator_start_line(
    "--config", os.path.join(src, "configs", "cluster_example.toml"))
check("(strategy adaptive)" in line,
      f"configs/cluster_example.toml gives adaptive: {line!r}")

# `alb run` starts its coordinator with the configured strategy.
rc, out, err = run("run", os.path.join(src, "configs", "cluster_example.toml"),
                   "--nodes", "1", "--slots", "2", "--timeout", "60")
first = out.splitlines()[0] if out else ""
check("(strategy adaptive)" in first,
      f"alb run's coordinator places with adaptive: {first!r} (rc {rc}, "
      f"stderr {err[-300:]!r})")


def simulated(*args):
    rc, out, err = run(*args, "--deterministic", "--output", "-", "--quiet")
    check(rc == 0, f"{args[0]} exits 0 (got {rc}, stderr {err[-300:]!r})")
    try:
        return json.loads(out), err
    except ValueError:
        check(False, f"{args[0]} --output - writes JSON: {out[:200]!r}")
        return {}, err


def strategy_of(doc):
    return doc.get("configuration", {}).get("strategy")


doc, human = simulated("stress", "--workers", "4", "--tests", "20",
                       "--duration", "1")
check(strategy_of(doc) == "adaptive",
      f"alb stress runs adaptive: {strategy_of(doc)!r}")
check("strategy adaptive" in human, f"and says so: {human.splitlines()[:1]!r}")
doc, human = simulated("spike", "--workers", "4", "--tests", "20",
                       "--duration", "1")
check(strategy_of(doc) == "adaptive",
      f"alb spike runs adaptive: {strategy_of(doc)!r}")
doc, _ = simulated("scenario", "worker_churn")
check(strategy_of(doc) == "adaptive",
      f"a scenario without a strategy runs adaptive: {strategy_of(doc)!r}")
doc, _ = simulated("scenario", "resource_contention")
check(strategy_of(doc) == "best_fit",
      f"a scenario's own strategy still wins: {strategy_of(doc)!r}")

# --busy-poll-us: a polling run ends every test; where no thread would poll
# (virtual time, or two threads of one work-sharing system) it is a usage
# error that says why.
rc, out, err = run("stress", "--workers", "4", "--tests", "50", "--duration",
                   "0.1", "--time-scale", "100", "--threads", "1",
                   "--busy-poll-us", "200", "--output", "-", "--quiet")
check(rc == 0, f"stress --busy-poll-us 200 --threads 1 exits 0 (got {rc}, "
      f"stderr {err[-300:]!r})")
if rc == 0:
    m = json.loads(out)["metrics"]
    check(m["completed_tests"] + m["failed_tests"] == 50,
          f"and ends its 50 tests: {m['completed_tests']} + "
          f"{m['failed_tests']}")
for extra, says in ((("--deterministic",), "needs real time"),
                    (("--threads", "2"), "one thread per shard")):
    rc, _, err = run("stress", "--workers", "4", "--tests", "5",
                     "--busy-poll-us", "100", "--quiet", *extra)
    check(rc == 2 and says in err, f"stress --busy-poll-us {' '.join(extra)} "
          f"exits 2 saying {says!r} (got {rc}, {err[-200:]!r})")
rc, _, err = run("stress", "--workers", "4", "--busy-poll-us", "-5")
check(rc == 2 and "--busy-poll-us" in err, f"a negative --busy-poll-us is "
      f"a usage error naming it (got {rc}, {err[-200:]!r})")

note = "adaptive unless the config says otherwise"
for cmd in ("coordinator", "run", "stress", "spike", "scenario"):
    rc, out, _ = run(cmd, "--help")
    flat = " ".join(out.split())
    check(rc == 0 and note in flat, f"alb {cmd} --help says the default is "
          f"adaptive")

if failures:
    print(f"{len(failures)} check(s) failed")
    sys.exit(1)
print("PASSED")
