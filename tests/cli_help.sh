#!/usr/bin/env bash
# The CLI reference in README.md matches the tool: every command of
# `wcm help` has a working `--help` and a README row, and every option the
# README row shows for a command appears in that command's --help.
set -u
WCM="$1"
README="$(dirname "$0")/../README.md"
fails=0 checks=0
cmds=$("$WCM" help | awk '/^commands:/{on=1; next} on && /^  [a-z]/{print $1} /^$/{if(on) exit}' | grep -v '^help$')
for c in $cmds; do
  checks=$((checks+1))
  help=$("$WCM" "$c" --help 2>&1); rc=$?
  row=$(grep -E "^\| \`wcm $c( |\`)" "$README" | head -1)
  if [ $rc -ne 0 ] || [ -z "$row" ]; then
    fails=$((fails+1)); echo "FAIL wcm $c: --help exit $rc, README row: ${row:-missing}"; continue
  fi
  missing=""
  for opt in $(printf '%s' "$row" | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u); do
    printf '%s' "$help" | grep -q -- "$opt" || missing="$missing $opt"
  done
  if [ -n "$missing" ]; then fails=$((fails+1)); echo "FAIL wcm $c: README shows$missing, --help does not"
  else echo "ok   wcm $c: --help works; README options $(printf '%s' "$row" | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u | tr '\n' ' ')all in --help"; fi
done
echo "cli_help: $((checks-fails)) passed, $fails failed"
[ $fails -eq 0 ]
