#!/usr/bin/env bash
# Runs every test: type check, unit tests and the end-to-end tests on fixture distros built with the
# real rpmbuild, createrepo_c, ostree and dnf. Installs what it needs first (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npx tsc --noEmit -p .
mkdir -p .cache
status=0
NODE_OPTIONS=--experimental-vm-modules npx jest --json --outputFile=.cache/jest-results.json "$@" || status=$?
# One plain closing line, whatever the reporter printed above it.
node -e '
  const r = JSON.parse(require("fs").readFileSync(".cache/jest-results.json", "utf8"));
  console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests} skipped`);
'
exit $status
