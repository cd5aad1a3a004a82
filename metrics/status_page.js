// Polls /api/status and renders it. Every value goes in through
// textContent: test names and output tails come from submitters.
"use strict";

var REFRESH_MS = 2000;
var updates = 0;

function el(tag, text, cls) {
  var e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function clock(t) {
  if (t === null || t === undefined || t < 0) return "never";
  return new Date(t * 1000).toLocaleTimeString();
}

function secs(s) {
  s = Math.max(0, s);
  if (s < 120) return s.toFixed(1) + " s";
  if (s < 7200) return (s / 60).toFixed(0) + " min";
  return (s / 3600).toFixed(1) + " h";
}

function accel(total, free) {
  var names = Object.keys(total || {});
  if (names.length === 0) return "-";
  return names.map(function (n) {
    return n + " " + ((free || {})[n] !== undefined ? free[n] : total[n]) + "/" + total[n];
  }).join(", ");
}

function fill(id, rows, columns, empty, key) {
  var body = document.getElementById(id);
  while (body.firstChild) body.removeChild(body.firstChild);
  if (rows.length === 0) {
    var tr = el("tr");
    var td = el("td", empty, "empty");
    td.colSpan = columns;
    tr.appendChild(td);
    body.appendChild(tr);
    return;
  }
  rows.forEach(function (r) {
    var tr = el("tr");
    if (r.key) tr.setAttribute("data-" + key, r.key);
    r.cells.forEach(function (c) { tr.appendChild(c); });
    body.appendChild(tr);
  });
}

function render(s) {
  var t = s.totals;
  document.getElementById("meta").textContent =
    "updated " + clock(s.time) + " · coordinator up " + secs(s.uptime_seconds) +
    " · refreshes every " + REFRESH_MS / 1000 + " s";
  var totals = document.getElementById("totals");
  while (totals.firstChild) totals.removeChild(totals.firstChild);
  [["nodes", t.nodes], ["busy slots", t.busy_slots + " / " + t.slots],
   ["waiting", t.waiting], ["unplaceable", t.unplaceable], ["running", t.running],
   ["assigned", t.assigned], ["ended", t.ended], ["completed", t.completed]]
    .forEach(function (p) {
      var span = el("span");
      span.id = "total-" + p[0].replace(" ", "-");
      span.appendChild(el("b", p[1]));
      span.appendChild(document.createTextNode(" " + p[0]));
      totals.appendChild(span);
    });
  fill("nodes", s.nodes.map(function (n) {
    return {key: n.name, cells: [el("td", n.name), el("td", n.address || "-"),
      el("td", n.workers, "num"), el("td", n.busy + " / " + n.slots, "num"),
      el("td", n.memory_free_gb + " / " + n.memory_gb + " GB", "num"),
      el("td", accel(n.accelerators, n.accelerators_free)),
      el("td", n.last_seen === null ? "never" :
        clock(n.last_seen) + " (" + secs(s.time - n.last_seen) + " ago)")]};
  }), 7, "no node is connected", "node");
  document.getElementById("waiting-count").textContent =
    "(" + t.waiting + (t.hidden_waiting ? ", " + t.hidden_waiting + " not listed" : "") + ")";
  fill("waiting", s.waiting.map(function (w) {
    var why = el("td");
    why.appendChild(el("span", w.reason_kind, "kind kind-" + w.reason_kind));
    why.appendChild(document.createTextNode(" " + w.reason));
    return {key: w.test_id, cells: [el("td", w.test_id), el("td", w.priority, "num"),
      el("td", w.state), el("td", secs(w.waited_seconds), "num"), why]};
  }), 5, "nothing waits", "test");
  document.getElementById("running-count").textContent =
    "(" + t.running + " running, " + t.assigned + " assigned" +
    (t.hidden_running ? ", " + t.hidden_running + " not listed" : "") + ")";
  fill("running", s.running.map(function (r) {
    return {key: r.test_id, cells: [el("td", r.test_id), el("td", r.node || "-"),
      el("td", r.worker_id), el("td", r.state), el("td", clock(r.since)),
      el("td", secs(r.seconds), "num")]};
  }), 6, "nothing runs", "test");
  fill("failures", s.recent_failures.slice().reverse().map(function (f) {
    var what = el("td", f.error || "(no error text)");
    if (f.output_tail) what.appendChild(el("pre", f.output_tail));
    return {key: f.test_id, cells: [el("td", clock(f.ended)), el("td", f.test_id),
      el("td", f.timed_out ? "timeout" : f.status), el("td", f.exit_code, "num"),
      el("td", f.worker_id || "-"), what]};
  }), 6, "no failures", "test");
}

function refresh() {
  fetch("/api/status", {cache: "no-store"})
    .then(function (r) {
      if (!r.ok) return r.text().then(function (x) { throw new Error(r.status + " " + x); });
      return r.json();
    })
    .then(function (s) {
      render(s);
      document.getElementById("error").textContent = "";
      updates += 1;
      document.body.setAttribute("data-state", "loaded");
      document.body.setAttribute("data-updates", String(updates));
    })
    .catch(function (e) {
      document.getElementById("error").textContent = "cannot read /api/status: " + e.message;
      document.body.setAttribute("data-state", "error");
    })
    .then(function () { setTimeout(refresh, REFRESH_MS); });
}

refresh();
