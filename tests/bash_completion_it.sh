#!/usr/bin/env bash
# packaging/bash-completion/alb: completing `alb ` lists every subcommand of
# `alb --help`, `alb node --tok` gives --token-file, and every option of every
# subcommand's --help is offered after `alb SUB -`.
# Usage: bash_completion_it.sh ALB_BINARY SOURCE_DIR
set -euo pipefail
alb=$1 src=$2
PATH="$(dirname "$alb"):$PATH"
# shellcheck source=/dev/null
source "$src/packaging/bash-completion/alb"
fail=0
complete_words() { # words... (last one is being completed)
  COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=()
  _alb
}
subs=$(alb --help | sed -n '/^Subcommands:/,/^$/s/^  \([a-z][a-z0-9-]*\) .*/\1/p')
[ -n "$subs" ] || { echo "FAIL: no subcommands parsed from alb --help"; exit 1; }
complete_words alb ""
for s in $subs; do
  [[ " ${COMPREPLY[*]} " == *" $s "* ]] || { echo "FAIL: 'alb ' lacks $s"; fail=1; }
done
complete_words alb no
[ "${COMPREPLY[*]}" = node ] || { echo "FAIL: 'alb no' gave '${COMPREPLY[*]}'"; fail=1; }
complete_words alb node --tok
[ "${COMPREPLY[*]}" = --token-file ] || { echo "FAIL: 'alb node --tok' gave '${COMPREPLY[*]}'"; fail=1; }
complete_words alb --ver
[ "${COMPREPLY[*]}" = --version ] || { echo "FAIL: 'alb --ver' gave '${COMPREPLY[*]}'"; fail=1; }
complete_words alb version --j
[ "${COMPREPLY[*]}" = --json ] || { echo "FAIL: 'alb version --j' gave '${COMPREPLY[*]}'"; fail=1; }
complete_words alb submit --ju
[ "${COMPREPLY[*]}" = --junit ] || { echo "FAIL: 'alb submit --ju' gave '${COMPREPLY[*]}'"; fail=1; }
complete_words alb coordinator --log-format j
[ "${COMPREPLY[*]}" = json ] || { echo "FAIL: 'alb coordinator --log-format j' gave '${COMPREPLY[*]}'"; fail=1; }
complete_words alb node --log-level DE
[ "${COMPREPLY[*]}" = DEBUG ] || { echo "FAIL: 'alb node --log-level DE' gave '${COMPREPLY[*]}'"; fail=1; }
complete_words alb status --js
[ "${COMPREPLY[*]}" = --json ] || { echo "FAIL: 'alb status --js' gave '${COMPREPLY[*]}'"; fail=1; }
complete_words alb logs --fol
[ "${COMPREPLY[*]}" = --follow ] || { echo "FAIL: 'alb logs --fol' gave '${COMPREPLY[*]}'"; fail=1; }
complete_words alb logs --stream std
[ "${COMPREPLY[*]}" = "stdout stderr" ] || { echo "FAIL: 'alb logs --stream std' gave '${COMPREPLY[*]}'"; fail=1; }
n=0
for s in $subs; do
  complete_words alb "$s" -
  for o in $(alb "$s" --help | grep -oE '^  (-[A-Za-z],)?--[A-Za-z0-9-]+' | sed 's/.*,//; s/^ *//'); do
    n=$((n + 1))
    [[ " ${COMPREPLY[*]} " == *" $o "* ]] || { echo "FAIL: 'alb $s -' lacks $o"; fail=1; }
  done
done
[ "$fail" = 0 ] || exit 1
echo "bash completion: $(echo $subs | wc -w) subcommands, $n options offered"
