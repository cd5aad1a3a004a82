#!/usr/bin/env python3
"""`alb --version` and `alb version --json`: the shape of both outputs, the
git commit against `git rev-parse --short HEAD` of the source checkout the
binary was built from, and the library versions against the installed
Debian packages (when dpkg-query is there).

Usage: version_it.py ALB_BINARY SOURCE_DIR
"""
import json
import re
import subprocess
import sys

alb, src = sys.argv[1], sys.argv[2]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL: " + what)


def run(*args):
    p = subprocess.run([alb, *args], capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout, p.stderr


rc, out, err = run("--version")
check(rc == 0, f"--version exits 0 (got {rc}, stderr {err!r})")
m = re.fullmatch(r"alb (\d+\.\d+\.\d+) \(git ([0-9a-f]{4,40}|unknown)\)\n", out)
check(m is not None, f"--version prints one line 'alb X.Y.Z (git COMMIT)': {out!r}")

git = subprocess.run(["git", "-C", src, "rev-parse", "--short", "HEAD"],
                     capture_output=True, text=True)
if m:
    if git.returncode == 0:
        check(m.group(2) == git.stdout.strip(),
              f"commit {m.group(2)} is the checkout's {git.stdout.strip()}")
    else:
        check(m.group(2) == "unknown", "commit is 'unknown' outside a checkout")

rc, out2, _ = run("version")
check(rc == 0 and out2 == out, f"`alb version` prints the --version line: {out2!r}")

rc, js, err = run("version", "--json")
check(rc == 0, f"version --json exits 0 (got {rc}, stderr {err!r})")
try:
    v = json.loads(js)
except ValueError as e:
    v = {}
    check(False, f"version --json is JSON ({e}): {js!r}")
keys = {"version", "git_commit", "caf", "tomlplusplus", "prometheus_cpp"}
check(set(v) == keys, f"version --json has exactly {sorted(keys)}: {sorted(v)}")
if m and v:
    check(v.get("version") == m.group(1), "JSON version = --version's")
    check(v.get("git_commit") == m.group(2), "JSON git_commit = --version's")
for k in ("caf", "tomlplusplus", "prometheus_cpp"):
    check(re.fullmatch(r"\d+\.\d+\.\d+", str(v.get(k, ""))) is not None,
          f"{k} is X.Y.Z: {v.get(k)!r}")

# The versions come from the headers/package the build used: on Debian they
# are the upstream part of the -dev packages' versions.
pkgs = {"caf": "libcaf-dev", "tomlplusplus": "libtomlplusplus-dev",
        "prometheus_cpp": "prometheus-cpp-dev"}
for k, pkg in pkgs.items():
    q = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg],
                       capture_output=True, text=True) \
        if subprocess.run(["sh", "-c", "command -v dpkg-query"],
                          capture_output=True).returncode == 0 else None
    if q is None or q.returncode != 0:
        print(f"skip: {pkg} not known to dpkg")
        continue
    upstream = re.sub(r"^\d+:", "", q.stdout).split("-")[0].split("+")[0]
    check(str(v.get(k)) == upstream, f"{k} {v.get(k)} = {pkg} {upstream}")

rc, _, err = run("version", "--bogus")
check(rc == 2 and err.startswith("alb: error:"), f"bad flag is exit 2: {rc} {err!r}")

if failures:
    print(f"{len(failures)} check(s) failed")
    sys.exit(1)
print("version checks passed")
