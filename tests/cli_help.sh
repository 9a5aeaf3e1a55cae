#!/usr/bin/env bash
# The CLI reference in README.md matches the tool: every command of
# `wcm help` has a working `--help` and a README row, and every option the
# README row shows for a command appears in that command's --help.
set -u
WCM="$1"
README="$(dirname "$0")/../README.md"
fails=0 checks=0
cmds=$("$WCM" help | awk '/^commands:/{on=1; next} on && /^  [a-z]/{print $1} /^$/{if(on) exit}' | grep -v '^help$')
# Both directions: an empty or shortened `wcm help`, or a README row naming a
# command the tool lacks, fails.
readme_cmds=$(grep -oE '^\| `wcm [a-z][a-z-]*' "$README" | awk '{print $3}' | sort -u)
checks=$((checks+1))
if [ "$(printf '%s\n' $cmds | grep -c .)" -lt 10 ]; then
  fails=$((fails+1)); echo "FAIL wcm help lists $(printf '%s\n' $cmds | grep -c .) commands (expected at least 10)"
else echo "ok   wcm help lists $(printf '%s\n' $cmds | grep -c .) commands"; fi
for c in $readme_cmds; do
  checks=$((checks+1))
  if printf '%s\n' $cmds | grep -qx "$c"; then echo "ok   README command wcm $c is listed by wcm help"
  else fails=$((fails+1)); echo "FAIL README documents wcm $c, which wcm help does not list"; fi
done
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
