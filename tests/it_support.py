"""Shared harness of the multi-process integration tests (cluster_it,
cluster_tls_it, trust_it, execution_it).

Importing it reads the alb binary from argv[1] and makes the test's own
temporary directory; every process started with start() is recorded in PROCS
so the test's cleanup can end exactly the processes it started.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

ALB = os.path.abspath(sys.argv[1])
TMP = tempfile.mkdtemp(
    prefix="alb-%s-" % os.path.splitext(os.path.basename(sys.argv[0]))[0]
    .replace("_", "-"))
PROCS = []
FAILURES = []
# Clients that are not given --client-key keep their key in the test's
# directory, not in the user's ~/.config.
os.environ["ALB_CLIENT_KEY_FILE"] = os.path.join(TMP, "client.key")


def check(cond, what):
    """Prints one ok/FAIL line and records a failure."""
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILURES.append(what)


def path(name):
    """The path of a file in the test's directory."""
    return os.path.join(TMP, name)


def start(args, name, preexec_fn=None, cwd=None):
    """Starts `alb ARGS` in CWD (default: the test's directory), stdout/stderr
    to NAME.out/.err in the test's directory (PREEXEC_FN, when given, runs in
    the child before alb starts)."""
    out = open(path(name + ".out"), "w")
    err = open(path(name + ".err"), "w")
    p = subprocess.Popen([ALB] + args, stdout=out, stderr=err, cwd=cwd or TMP,
                         preexec_fn=preexec_fn)
    p.log_name = name
    PROCS.append(p)
    return p


def read(name, ext="err"):
    """What a started process wrote so far ("" before it wrote anything)."""
    try:
        with open(path(name + "." + ext)) as f:
            return f.read()
    except OSError:
        return ""


def wait_for(pred, timeout, what):
    """Waits until pred() holds (polled every 50 ms); a timeout is a failure."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    check(False, "timed out waiting for " + what)
    return False


def coordinator_ports(name="coordinator", timeout=15, metrics=False):
    """The port a started `alb coordinator` (logged as NAME) listens on, read
    from its "listening on 127.0.0.1:PORT" line; with METRICS a pair (port,
    metrics port) from its "metrics: http://127.0.0.1:PORT/metrics" line too.
    None (and a failure) when it does not say so within TIMEOUT seconds."""
    found = {}

    def bound():
        out = read(name, "out")
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", out)
        mm = re.search(r"metrics: http://127\.0\.0\.1:(\d+)/metrics", out)
        if m:
            found["port"] = int(m.group(1))
        if mm:
            found["metrics"] = int(mm.group(1))
        return "port" in found and (not metrics or "metrics" in found)
    if not wait_for(bound, timeout, "the ports of " + name):
        return None
    return (found["port"], found["metrics"]) if metrics else found["port"]


def write(name, text, mode=0o600):
    """Writes a file in the test's directory with MODE; returns its path."""
    p = path(name)
    with open(p, "w") as f:
        f.write(text)
    os.chmod(p, mode)
    return p


def finish(main, passed, logs=None):
    """Runs main(), then ends every process it started. On a failure (or an
    exception) it prints the tail of each log in LOGS (every .err file when
    None), keeps TMP and exits 1; otherwise it removes TMP and prints PASSED."""
    try:
        main()
    except Exception as e:  # report, then clean up
        FAILURES.append("exception: %r" % e)
        print("FAIL exception: %r" % e, flush=True)
    finally:
        for p in PROCS:
            if p.poll() is None:
                p.kill()
                p.wait()
    if FAILURES:
        print("\nlogs kept in " + TMP)
        if logs is None:
            logs = sorted(n[:-4] for n in os.listdir(TMP) if n.endswith(".err"))
        for name in logs:
            print("--- %s.err\n%s" % (name, read(name)[-3000:]))
        print("%d check(s) failed" % len(FAILURES))
        sys.exit(1)
    shutil.rmtree(TMP, ignore_errors=True)
    print(passed)


def toml_tests(tests):
    """TESTS (a list of dicts) as [[tests]] tables of a TOML test file."""
    out = []
    for t in tests:
        out.append("[[tests]]")
        for k, v in t.items():
            out.append("%s = %s" % (k, json.dumps(v)))
    return "\n".join(out) + "\n"


def alive(pid):
    """Whether process `pid` exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def group_members(pgid):
    """Live processes of process group `pgid`."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            out.append(int(d))
    return out


def pid_of(name):
    """The first number in pids/NAME of the test's directory (None when the
    file is not written yet)."""
    try:
        with open(path("pids/" + name)) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def gated(tid):
    """A test that marks started/TID.PID and then waits for the file `gate`
    (an event the test makes, not a time)."""
    return {"test_id": tid, "expected_duration": 1.0,
            "command": ["sh", "-c",
                        'touch "started/%s.$$"; '
                        'while [ ! -e gate ]; do sleep 0.05; done; echo ok' % tid]}


def started():
    """(test id, pid) of every gated run that started so far (its marker)."""
    out = []
    for name in os.listdir(path("started")):
        tid, pid = name.rsplit(".", 1)
        out.append((tid, int(pid)))
    return out


def ppid(pid):
    """The parent of process PID (None when it is gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return None
    return int(stat[stat.rfind(")") + 2:].split()[1])


def runs_under(pid, ancestor):
    """Whether process PID descends from ANCESTOR."""
    for _ in range(64):
        if pid is None or pid <= 1:
            return False
        if pid == ancestor:
            return True
        pid = ppid(pid)
    return False


def long_cmd(name):
    """A command that runs until stopped and writes its shell's pid (and so
    its process group) to pids/NAME and a child's to pids/NAME.child: the
    child must die with the test too."""
    p = path("pids/" + name)
    return ["sh", "-c", "sleep 300 & echo $! > %s.child; echo $$ > %s.tmp; "
            "mv %s.tmp %s; wait" % (p, p, p, p)]


def key_gated_tests():
    """5 long tests (run-N, priority 1; run-0 holds concurrency key "gate")
    and 50 quick ones waiting for that key (gated-N, priority 5, each
    writing pids/gated-N when it runs): (tests, long ids, gated ids)."""
    long_ids = ["run-%d" % i for i in range(5)]
    gated = ["gated-%d" % i for i in range(50)]
    tests = []
    for i, t in enumerate(long_ids):
        # Priority 1 is placed first: run-0 takes the key before any gated
        # test can.
        x = {"test_id": t, "command": long_cmd(t), "priority": 1}
        if i == 0:
            x["concurrency_key"] = "gate"
        tests.append(x)
    for t in gated:
        tests.append({"test_id": t, "priority": 5, "concurrency_key": "gate",
                      "command": ["sh", "-c", "echo $$ > %s"
                                  % path("pids/" + t)]})
    return tests, long_ids, gated


def long_procs(ids):
    """{id: (shell pid, process group, child pid)} of running long_cmd
    tests."""
    procs = {}
    for t in ids:
        pid = pid_of(t)
        with open("/proc/%d/stat" % pid) as fh:
            pgid = int(fh.read().rsplit(")", 1)[1].split()[2])
        with open(path("pids/%s.child" % t)) as fh:
            child = int(fh.read().split()[0])
        procs[t] = (pid, pgid, child)
    return procs


def openssl(*args):
    """Runs the openssl command in the test's directory (quietly)."""
    subprocess.run(["openssl"] + list(args), check=True, cwd=TMP,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_pki(names):
    """A throwaway CA (ca.pem/ca.key) and, for each of NAMES, NAME.pem and
    NAME.key signed by it (EC P-256, valid 2 days), in the test's directory."""
    def key(name):
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt",
                "ec_paramgen_curve:P-256", "-out", name + ".key")
        os.chmod(path(name + ".key"), 0o600)
    key("ca")
    openssl("req", "-x509", "-new", "-key", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=ca")
    for name in names:
        key(name)
        openssl("req", "-new", "-key", name + ".key", "-out", name + ".csr",
                "-subj", "/CN=" + name)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem",
                "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
                "-out", name + ".pem")


def tls_args(name):
    """The --tls-* flags of a process presenting NAME.pem of make_pki()."""
    return ["--tls-cert", name + ".pem", "--tls-key", name + ".key",
            "--tls-ca", "ca.pem"]


def scrape(url):
    """The body of URL ("" when it cannot be read)."""
    try:
        return urllib.request.urlopen(url, timeout=5).read().decode()
    except OSError:
        return ""


def total(text, name):
    """Sum of every sample of NAME (all label sets)."""
    s = 0.0
    for line in text.splitlines():
        head = line.split(" ")[0]
        if head == name or head.startswith(name + "{"):
            s += float(line.split()[-1])
    return s


def cgroup_of(pid):
    """The cgroup v2 path of PID ("" when unknown or gone)."""
    try:
        with open("/proc/%d/cgroup" % pid) as f:
            for line in f:
                if line.startswith("0::"):
                    return line[3:].strip()
    except OSError:
        pass
    return ""
