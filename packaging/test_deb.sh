#!/usr/bin/env bash
# Builds the .deb from BUILD_DIR (cpack), installs it with dpkg -i, runs
# /usr/bin/alb --version from the installed path, checks the installed files
# (man page, completion, /etc/alb, token readable by alb only), starts the
# coordinator and a node on the installed configs, checks both
# systemd units with systemd-analyze verify, and removes the package again.
# Cleans up on any failure; refuses to touch a system where alb is already
# installed. Needs root. Usage: packaging/test_deb.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?usage: test_deb.sh BUILD_DIR}" && pwd)
if [ "$(id -u)" != 0 ]; then
  echo "test_deb: skipped: needs root (dpkg -i)"; exit 0
fi
# One run at a time on a machine (several checkouts may run CI at once).
exec 9>/run/lock/alb-test-deb.lock
flock -w 300 9
if dpkg-query -W alb >/dev/null 2>&1; then
  echo "test_deb: skipped: dpkg knows an alb package here already; not touching it"
  exit 0
fi
for p in /usr/bin/alb /etc/alb /var/lib/alb /var/lib/alb-node; do
  if [ -e "$p" ]; then
    echo "test_deb: skipped: $p exists and is not from the alb package; not touching it"
    exit 0
  fi
done
had_user=0
getent passwd alb >/dev/null && had_user=1
work=$(mktemp -d)
cleanup() {
  local rc=$?
  if dpkg-query -W alb >/dev/null 2>&1; then
    dpkg --purge alb >/dev/null || rc=1
  fi
  if [ "$had_user" = 0 ] && getent passwd alb >/dev/null; then
    deluser --system alb >/dev/null 2>&1 || userdel alb || true
    getent group alb >/dev/null && { delgroup --system alb >/dev/null 2>&1 || groupdel alb || true; }
  fi
  rm -rf "$work"
  [ "$rc" = 0 ] && echo "test_deb: passed" || echo "test_deb: FAILED"
  exit "$rc"
}
trap cleanup EXIT
fail() { echo "test_deb: FAIL: $*"; exit 1; }

(cd "$work" && cpack --config "$build/CPackConfig.cmake" -G DEB -B "$work" >cpack.log 2>&1) \
  || { cat "$work/cpack.log"; fail "cpack"; }
deb=$(ls "$work"/alb_*.deb)
echo "test_deb: built $(basename "$deb") ($(du -k "$deb" | cut -f1) KB)"
depends=$(dpkg-deb -f "$deb" Depends)
echo "test_deb: Depends: $depends"
for lib in libcaf-core libcaf-io libprometheus-cpp-core libsqlite3 libcurl libssl; do
  [[ $depends == *"$lib"* ]] || fail "Depends lacks $lib"
done
dpkg -i "$deb" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -i"; }

[ "$(/usr/bin/alb --version)" = "$("$build/bin/alb" --version)" ] \
  || fail "/usr/bin/alb --version differs from the build's"
echo "test_deb: installed: $(/usr/bin/alb --version)"
/usr/bin/alb version --json >/dev/null || fail "alb version --json"
for f in /usr/share/man/man1/alb.1.gz /usr/share/bash-completion/completions/alb \
         /usr/share/alb/grafana/dashboards /usr/share/alb/configs/cluster_example.toml \
         /usr/share/alb/scenarios.toml /etc/alb/coordinator.toml /etc/alb/node.env \
         /etc/alb/node.toml /usr/share/alb/configs/node.toml \
         /usr/lib/systemd/system/alb-coordinator.service \
         /usr/lib/systemd/system/alb-node.service; do
  [ -e "$f" ] || fail "$f not installed"
done
zcat /usr/share/man/man1/alb.1.gz | grep -q 'Attach this machine' \
  || fail "man page lacks the subcommands"
[ "$(stat -c '%U:%G %a' /etc/alb/token)" = "alb:alb 600" ] \
  || fail "/etc/alb/token is $(stat -c '%U:%G %a' /etc/alb/token), want alb:alb 600"
[ "$(stat -c %s /etc/alb/token)" -ge 32 ] || fail "/etc/alb/token is too short"
# The coordinator accepts the installed config (bad input would be exit 2
# before it listens); --port 0 so nothing fixed is taken, killed at once.
setpriv --reuid=alb --regid=alb --init-groups /usr/bin/alb coordinator \
  --config /etc/alb/coordinator.toml --port 0 --no-db >"$work/coord.log" 2>&1 &
coord=$!
for _ in $(seq 100); do
  grep -q 'listening on' "$work/coord.log" && break
  kill -0 "$coord" 2>/dev/null || break
  sleep 0.1
done
grep -q 'listening on' "$work/coord.log" \
  || { kill "$coord" 2>/dev/null; cat "$work/coord.log"; fail "coordinator did not start on /etc/alb/coordinator.toml"; }
# The node accepts the installed /etc/alb/node.toml (as alb-node.service
# runs it) and attaches with its token_file; only the port differs.
port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/coord.log" | head -1)
setpriv --reuid=alb --regid=alb --init-groups /usr/bin/alb node \
  --config /etc/alb/node.toml --coordinator "127.0.0.1:$port" \
  --reconnect-timeout 0 >"$work/node.log" 2>&1 &
node=$!
for _ in $(seq 100); do
  grep -q 'connected to' "$work/node.log" && break
  kill -0 "$node" 2>/dev/null || break
  sleep 0.1
done
kill "$node" "$coord" 2>/dev/null || true
wait "$node" 2>/dev/null || true
wait "$coord" 2>/dev/null || true
grep -q 'connected to' "$work/node.log" \
  || { cat "$work/node.log"; fail "node did not attach with /etc/alb/node.toml"; }
echo "test_deb: alb node --config /etc/alb/node.toml attached"
# systemd-analyze verify needs no running systemd; it fails on unknown
# directives, bad paths, a missing ExecStart binary.
SYSTEMD_LOG_LEVEL=notice systemd-analyze verify \
  /usr/lib/systemd/system/alb-coordinator.service \
  /usr/lib/systemd/system/alb-node.service >"$work/verify.log" 2>&1 \
  || { cat "$work/verify.log"; fail "systemd-analyze verify"; }
if [ -s "$work/verify.log" ]; then
  cat "$work/verify.log"; fail "systemd-analyze verify printed warnings"
fi
echo "test_deb: systemd-analyze verify: both units clean"
dpkg -r alb >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -r"; }
[ ! -e /usr/bin/alb ] || fail "/usr/bin/alb left after dpkg -r"
[ -e /etc/alb/token ] || fail "dpkg -r removed /etc/alb (only purge should)"
dpkg --purge alb >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg --purge"; }
for p in /etc/alb /var/lib/alb /var/lib/alb-node /usr/lib/systemd/system/alb-node.service; do
  [ ! -e "$p" ] || fail "$p left after dpkg --purge"
done
