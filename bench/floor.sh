#!/bin/bash
# The floor: the least any tool must do to produce the same repos. For every architecture at
# once (as compose-extensions runs them), copy exactly the given RPMs and run createrepo_c.
#
#   floor.sh OUT ARCH=LIST_FILE...    (LIST_FILE: one absolute RPM path per line)
set -euo pipefail
out=$1
shift
pids=()
for pair in "$@"; do
  arch=${pair%%=*} list=${pair#*=}
  (
    rm -rf "$out/$arch"
    mkdir -p "$out/$arch"
    xargs -d '\n' -a "$list" cp -t "$out/$arch"
    createrepo_c --quiet --no-database "$out/$arch"
  ) &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done
