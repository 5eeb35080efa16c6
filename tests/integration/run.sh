#!/usr/bin/env bash
# Runs every tests/integration/test_*.sh (or those named) and summarises.
# A test exits 0 on pass, 77 when it cannot run here (skip), anything else on failure.
set -uo pipefail
cd "$(dirname "$0")"
pass=0 fail=0 skip=0 failed=()
tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=(test_*.sh)
for t in "${tests[@]}"; do
  echo "== $t"
  start=$SECONDS
  bash "$t"
  rc=$?
  case $rc in
    0)  pass=$((pass + 1)) ;;
    77) skip=$((skip + 1)) ;;
    *)  fail=$((fail + 1)); failed+=("$t") ;;
  esac
  echo "== $t: $([ $rc = 0 ] && echo pass || { [ $rc = 77 ] && echo skip || echo FAIL; }) ($((SECONDS - start)) s)"
done
echo "integration: $pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ] || { echo "failed: ${failed[*]}"; exit 1; }
