#!/usr/bin/env python3
"""The coordinator's status page in a real browser (headless Chromium).

A coordinator with --metrics-port and two node processes (8 and 16 GB) run
a suite: one test that fails with output, four long ones that fill the
slots, ten that wait for them and one that needs 64 GB. Once the cluster
is in that state, Chromium loads http://127.0.0.1:PORT/ (its script
fetches /api/status and renders it; --dump-dom after it ran) and the test
checks what was rendered: both nodes, the unplaceable test with its reason,
busy tests, the running tests with their node, the failure with its output
tail. Then Chromium takes a screenshot of the page (written to
SCREENSHOT_PATH, shown in the README as docs/status-page.png). The nodes
and the coordinator are stopped with SIGTERM (their tests end with them);
Chromium runs in its own process group, which is what a timeout kills.
Exit 77 (skipped) when Chromium is not installed.

Usage: status_page_it.py ALB_BINARY SCREENSHOT_PATH
"""

import html
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

from it_support import (ALB, PROCS, TMP, check, coordinator_ports, finish, path,
                        read, start, wait_for, write)
from it_support import toml_tests

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if not CHROMIUM:
    print("SKIP: chromium is not installed (apt-get install chromium)")
    shutil.rmtree(TMP, ignore_errors=True)
    sys.exit(77)
SHOT = os.path.abspath(sys.argv[2])


def chromium(args, what, timeout=90):
    """Runs headless Chromium in its own process group; on a timeout that
    group (Chromium and the helpers it started) is killed."""
    cmd = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
           "--disable-dev-shm-usage", "--no-first-run", "--disable-extensions",
           "--disable-background-networking", "--disable-sync",
           "--user-data-dir=" + path("chromium-profile"),
           "--window-size=1280,1100", "--hide-scrollbars"] + args
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        check(False, "chromium (%s) did not finish in %d s" % (what, timeout))
        return None
    check(p.returncode == 0, "chromium (%s) exits 0 (%d): %s"
          % (what, p.returncode, err.strip()[-300:] if p.returncode else ""))
    return out


def api(mport):
    with urllib.request.urlopen("http://127.0.0.1:%d/api/status" % mport,
                                timeout=10) as r:
        return json.loads(r.read().decode())


def row(dom, attr, key):
    """The text of the table row with data-ATTR="KEY" ("" when absent)."""
    m = re.search(r'<tr data-%s="%s">(.*?)</tr>' % (attr, re.escape(key)), dom,
                  re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", m.group(1))) if m else ""


def main():
    start(["coordinator", "--port", "0", "--no-db", "--metrics-port", "0"],
          "coordinator")
    ports = coordinator_ports(metrics=True)
    if ports is None:
        return
    port, mport = ports
    addr = "127.0.0.1:%d" % port
    nodes = []
    for n, mem in (("n1", "8"), ("n2", "16")):
        nodes.append(start(["node", "--coordinator", addr,
                            "--cores", "2", "--memory", mem, "--name", n,
                            "--reconnect-timeout", "0"], n))
    wait_for(lambda: read("coordinator").count("registered in slot") >= 2, 15,
             "two workers")
    suite = [{"test_id": "fails-with-output", "priority": 1,
              "command": ["sh", "-c", "echo boom-output-line; echo err-line >&2; exit 3"]}]
    # The long tests run until the gate opens after the page was read (an
    # event, not 30 s: under load Chromium once took ~50 s to render and
    # found them ended).
    gate = path("gate")
    suite += [{"test_id": "long-%d" % i, "priority": 2, "command": [
        "sh", "-c", "while [ ! -e %s ]; do sleep 0.05; done" % gate]}
              for i in range(4)]
    suite += [{"test_id": "queued-%d" % i, "command": ["true"]} for i in range(10)]
    suite.append({"test_id": "needs-64gb", "minimum_memory": 64, "command": ["true"],
                  "wait_limit": 300})
    f = write("suite.toml", toml_tests(suite), 0o644)
    sub = start(["submit", "--coordinator", addr, f], "submit")
    state = {}

    def settled():
        s = api(mport)
        state["s"] = s
        return (s["totals"]["running"] == 4 and s["recent_failures"]
                and any(w["test_id"] == "needs-64gb" for w in s["waiting"]))
    if not wait_for(settled, 20, "4 running tests, a failure and the 64 GB test waiting"):
        print(json.dumps(state.get("s"), indent=1)[:3000])
        return
    url = "http://127.0.0.1:%d/" % mport
    # --virtual-time-budget: Chromium runs the page (its fetch and render)
    # before it dumps or shoots; network waits do not use up the budget.
    dom = chromium(["--virtual-time-budget=8000", "--dump-dom", url], "dump-dom")
    if dom is None:
        return
    with open(path("page.html"), "w") as fh:
        fh.write(dom)
    check('data-state="loaded"' in dom, "the script ran and rendered /api/status")
    for n, mem in (("n1", "8"), ("n2", "16")):
        r = row(dom, "node", n)
        check(re.search(r"127\.0\.0\.1:\d+", r) is not None and ("/ %s GB" % mem) in r,
              "node %s rendered with its address and memory: %r" % (n, r.strip()))
    r = row(dom, "test", "needs-64gb")
    check("unplaceable" in r and "no node has memory >= 64 GB" in r,
          "the 64 GB test is rendered as unplaceable with its reason: %r" % r.strip())
    m = re.search(r'<tbody id="waiting">(.*?)</tbody>', dom, re.S)
    busy = [k for k, cells in re.findall(r'<tr data-test="([^"]+)">(.*?)</tr>',
                                         m.group(1) if m else "", re.S)
            if k.startswith("queued-") and "kind-busy" in cells
            and "workers that can hold it are busy" in cells]
    # The nodes' local queues hold a few (prefetch); the rest wait here.
    check(len(busy) >= 4, "queued tests are rendered as busy: %s" % busy)
    for i in range(4):
        r = row(dom, "test", "long-%d" % i)
        check("running" in r and re.search(r"\bn[12]\b", r) is not None,
              "long-%d rendered running on its node: %r" % (i, r.strip()))
    m = re.search(r'<tbody id="failures">(.*?)</tbody>', dom, re.S)
    fail = html.unescape(m.group(1)) if m else ""
    check("fails-with-output" in fail and "boom-output-line" in fail
          and "<pre>" in fail, "the failure is rendered with its output tail")
    check(re.search(r'id="total-unplaceable"><b>1</b>', dom) is not None,
          "the totals say one test is unplaceable")
    shot = path("status-page.png")
    chromium(["--virtual-time-budget=8000", "--screenshot=" + shot, url],
             "screenshot")
    ok = os.path.exists(shot) and os.path.getsize(shot) > 10000
    if ok:
        with open(shot, "rb") as fh:
            head = fh.read(24)
        w, h = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
        ok = head[:8] == b"\x89PNG\r\n\x1a\n" and w >= 1000 and h >= 800
        check(ok, "the screenshot is a %dx%d PNG" % (w, h))
        if ok:
            os.makedirs(os.path.dirname(SHOT), exist_ok=True)
            shutil.copyfile(shot, SHOT)
            print("screenshot: " + SHOT)
    else:
        check(False, "chromium wrote a screenshot")
    write("gate", "")
    # A clean stop: the nodes end their tests as they leave.
    for p in [sub] + nodes + [PROCS[0]]:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass


finish(main, "STATUS PAGE IT PASSED")
