#!/usr/bin/env bash
# Mutation spot-check of the rule modules with cosmic-ray (docs/claims.md). Not in CI.
#
#   bash bench/mutation/run.sh [MINUTES_PER_MODULE] [config ...]      (make mutation)
#   bash bench/mutation/run.sh --retest [config ...]                  (make mutation-retest)
#
# cosmic-ray writes each mutant into the file and runs the tests named in the module's
# config as a fresh process, so every run has its own test database; it works in a scratch
# clone of HEAD, never in this checkout. Each module gets a bounded time; what ran by then is
# reported (killed / survived), and the survivors' diffs are in the session files under $OUT
# (cr-report --show-diff FILE). --retest tries the last run's survivors again against the
# tests as they are now (after new tests were written to kill them).
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
mode=run
if [ "${1:-}" = "--retest" ]; then mode=retest; shift; minutes=0; else minutes="${1:-20}"; shift || true; fi
configs=("$@")
[ ${#configs[@]} -gt 0 ] || configs=(dispatch access limits lifecycle)

out="${OUT:-/tmp/homeservices-mutation}"
tools="$out/tools"
work="$out/checkout"
rm -rf "$work" && mkdir -p "$out"
[ -x "$tools/bin/cosmic-ray" ] || { python3 -m venv "$tools" && "$tools/bin/pip" install -q cosmic-ray==8.7.0 2>/dev/null; }
git clone -q "$here" "$work"
ln -s "$here/.venv" "$work/.venv"

cd "$work"
export PATH="$work/.venv/bin:$PATH:$tools/bin" PYTHONDONTWRITEBYTECODE=1
# Rate limits are taken from Redis when it is there; its own database number keeps it apart.
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/7}"
for name in "${configs[@]}"; do
  config="$here/bench/mutation/$name.toml"
  session="$out/$name.sqlite"
  if [ "$mode" = retest ]; then
    "$tools/bin/python" "$here/bench/mutation/retest.py" "$session" "$config"
    continue
  fi
  rm -f "$session"
  "$tools/bin/cosmic-ray" init "$config" "$session"
  "$tools/bin/cr-filter-operators" "$session" "$config"  # what the config's filter leaves out
  "$tools/bin/cosmic-ray" baseline "$config" >/dev/null
  timeout "$((minutes * 60))" "$tools/bin/cosmic-ray" exec "$config" "$session" || true
  git checkout -q -- .  # a run stopped mid-mutant leaves it in the file
  echo "== $name ($(grep module-path "$config" | cut -d'=' -f2-))"
  "$tools/bin/cr-report" "$session" --show-pending | tail -n 4
done
echo "sessions (cr-report --show-diff <file> lists every survivor's diff): $out/*.sqlite"
