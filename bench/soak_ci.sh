#!/usr/bin/env bash
# Steadiness under load: run the whole suite N times in a row (default 3) while a CPU hog keeps
# every core busy, and print one line per run. A test that fails only here waits on time instead
# of on its event: that is a bug in the test.
#
#   bash bench/soak_ci.sh            # 3 runs of `make pytest`
#   bash bench/soak_ci.sh 1 -m "not (browser or docker)"
#
# The hogs are this script's own children, ended by PID when it exits (never by name).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
shift || true
cores=$(nproc)
hogs=()
stop_hogs() {
  for pid in "${hogs[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${hogs[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_hogs EXIT
for _ in $(seq "$cores"); do
  python3 -c 'while True: pass' &
  hogs+=("$!")
done
echo "soak: ${runs} run(s) of the suite with ${cores} CPU hog(s) (PIDs ${hogs[*]})"
failed=0
for run in $(seq "$runs"); do
  log=$(mktemp -t soak-run-XXXX.log)
  start=$(date +%s)
  if CI=${CI:-true} .venv/bin/pytest -p no:cacheprovider -q "$@" >"$log" 2>&1; then status=passed; else status=FAILED; failed=$((failed + 1)); fi
  summary=$(grep -E '^[0-9]+ (passed|failed)|^=+ .*(passed|failed|error)' "$log" | tail -n 1)
  echo "run ${run}: ${status} in $(( $(date +%s) - start )) s: ${summary} (log ${log})"
  [ "$status" = passed ] || grep -E '^(FAILED|ERROR) ' "$log" || true
done
echo "soak: ${failed} of ${runs} run(s) failed"
[ "$failed" -eq 0 ]
