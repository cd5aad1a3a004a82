#!/usr/bin/env bash
# Integration test of `alb monitor` and `alb stress --live` on a real terminal:
# tmux runs them in panes of a private server and `capture-pane` reads the
# screen. Checks that the dashboard shows a running stress's figures and that
# they change, that `q` quits, that an unreachable URL is reported and
# retried until the target appears, that a pipe gets summary lines, and that
# --live shows the run (and falls back to the progress line off a terminal).
# Loopback only; every process it starts is stopped on exit.
#
# Usage: monitor_tmux_it.sh ALB_BINARY   (exit 0 pass, 1 fail, 77 skipped)

set -euo pipefail

ALB=${1:?usage: monitor_tmux_it.sh ALB_BINARY}
command -v tmux >/dev/null || { echo "SKIP: tmux is not installed"; exit 77; }

WORK=$(mktemp -d /tmp/alb_monitor_it.XXXXXX)
SOCKET="alb_monitor_it_$$"
PIDS=()
tm() { tmux -L "$SOCKET" -f /dev/null "$@"; }
cleanup() {
  tm kill-server 2>/dev/null || true
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
# Block glyphs and the em dash need a UTF-8 locale on both sides of tmux.
export LANG=C.UTF-8 LC_ALL=C.UTF-8

fail() {
  echo "FAIL: $*"
  if [[ -f $WORK/last ]]; then
    echo "--- last screen:"
    cat "$WORK/last"
  fi
  exit 1
}

# capture PANE: the visible screen of PANE into $WORK/last, also on stdout.
capture() { tm capture-pane -p -t "$1" >"$WORK/last"; cat "$WORK/last"; }

# wait_for PANE REGEX SECONDS: until the screen matches.
wait_for() {
  local deadline=$((SECONDS + $3))
  while ((SECONDS < deadline)); do
    if capture "$1" | grep -Eq -- "$2"; then return 0; fi
    sleep 0.3
  done
  fail "pane $1 never showed /$2/ within $3 s"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_stress LOG ARGS...: a stress run with /metrics in the background.
start_stress() {
  local log=$1
  shift
  "$ALB" stress --quiet --metrics-linger 3 "$@" >"$log" 2>&1 &
  PIDS+=($!)
}

# metrics_url LOG: the URL the run printed.
metrics_url() {
  local deadline=$((SECONDS + 20)) url
  while ((SECONDS < deadline)); do
    url=$(grep -Eo 'http://127\.0\.0\.1:[0-9]+/metrics' "$1" | head -n1 || true)
    if [[ -n $url ]]; then echo "$url"; return 0; fi
    sleep 0.2
  done
  cat "$1"
  fail "the stress run printed no metrics URL"
}

figure() { grep -E "^$1 " "$WORK/$2" || true; }

echo "== 1. the dashboard follows a running stress"
start_stress "$WORK/stress1.log" --workers 10 --tests 2500 --duration 20 \
  --metrics-port 0
URL=$(metrics_url "$WORK/stress1.log")
tm new-session -d -s mon -x 120 -y 45 \
  "'$ALB' monitor --url '$URL' --interval 1; echo MONITOR-EXIT=\$?; sleep 60"
wait_for mon 'Throughput +[0-9.]+ tests/s now' 15
wait_for mon 'w-[0-9]+ ' 10
sleep 1
capture mon >"$WORK/screen_a"
sleep 3
capture mon >"$WORK/screen_b"
echo "--- first capture:"
cat "$WORK/screen_a"
for want in 'alb monitor  http://127\.0\.0\.1' 'q quits' 'Run +stress run' \
  'Workers +10 registered' 'Queue +[0-9]+ waiting \(p1 ' \
  'Wait +p50 (≤ |<= |> )?[0-9]' 'Success +[0-9.]+% of ended tests' \
  'Moves +[0-9]+ migrations' 'Alerts' 'Throughput history' \
  'Busiest workers' '█'; do
  grep -Eq -- "$want" "$WORK/screen_a" || fail "first capture lacks /$want/"
done
a=$(figure Success screen_a)
b=$(figure Success screen_b)
echo "success line 3 s apart: [$a] -> [$b]"
[[ -n $a && $a != "$b" ]] || fail "the figures did not change in 3 s"
[[ $(figure Throughput screen_a) != "$(figure Throughput screen_b)" \
  || $(figure Queue screen_a) != "$(figure Queue screen_b)" ]] \
  || echo "(throughput and queue happened to be equal; success moved)"

echo "== 2. q quits"
tm send-keys -t mon q
wait_for mon 'MONITOR-EXIT=0' 5
grep -q 'alb monitor: workers 10' "$WORK/last" \
  || fail "no summary line left after quitting"

echo "== 3. a pipe gets one summary line per interval"
"$ALB" monitor --url "$URL" --interval 0.5 --count 4 >"$WORK/plain.out"
cat "$WORK/plain.out"
[[ $(wc -l <"$WORK/plain.out") -eq 4 ]] || fail "expected 4 summary lines"
[[ $(grep -Ec '^\[[0-9:]{8}\] workers 10 \(.*\| throughput .*\| success ' \
  "$WORK/plain.out") -eq 4 ]] || fail "summary lines lack the figures"
grep -q $'\e' "$WORK/plain.out" && fail "escape sequences in piped output"

echo "== 4. unreachable URL: message, retries, then the target appears"
PORT=$(free_port)
tm new-session -d -s down -x 120 -y 30 \
  "'$ALB' monitor --url http://127.0.0.1:$PORT/metrics --interval 1; echo MONITOR-EXIT=\$?; sleep 60"
wait_for down "cannot reach http://127\.0\.0\.1:$PORT/metrics: connection refused — retrying every 1 s" 5
sleep 2.5
capture down >/dev/null
grep -q 'cannot reach' "$WORK/last" || fail "the message went away with no target"
start_stress "$WORK/stress2.log" --workers 4 --tests 600 --duration 8 \
  --metrics-port "$PORT"
wait_for down 'Workers +4 registered' 15
grep -q 'cannot reach' "$WORK/last" && fail "stale message after reconnecting"
tm send-keys -t down q
wait_for down 'MONITOR-EXIT=0' 5

echo "== 5. alb stress --live shows the run, then the summary"
tm new-session -d -s live -x 120 -y 45 \
  "'$ALB' stress --workers 6 --tests 600 --duration 6 --live; echo STRESS-EXIT=\$?; sleep 60"
wait_for live 'alb stress \(live\)' 10
wait_for live 'into the run: submitted [0-9]+/600' 10
wait_for live 'Throughput +[0-9.]+ tests/s now' 10
grep -Eq 'Workers +6 registered' "$WORK/last" || fail "live view lacks workers"
echo "--- live capture:"
cat "$WORK/last"
wait_for live 'STRESS-EXIT=0' 40
grep -q 'into the run' "$WORK/last" && fail "the live view stayed after the run"

echo "== 6. --live off a terminal falls back to the progress line"
"$ALB" stress --workers 4 --tests 100 --duration 2 --live \
  >"$WORK/live_plain.out" 2>&1
grep -Eq 'submitted [0-9]+/100' "$WORK/live_plain.out" \
  || fail "no progress line with --live into a file"
grep -q $'\e\[?1049h' "$WORK/live_plain.out" \
  && fail "--live drew a screen into a file"

echo "PASS"
