#!/usr/bin/env bash
# Checks one architecture's composed output (as downloaded from the workflow artifact) for the
# fixture of scripts/integration-fixture.sh: dnf reads the repo and finds exactly the extensions'
# packages, and metadata.json names them per extension.
# Usage: scripts/integration-check.sh DIR ARCH
set -euo pipefail
dir=$(realpath "$1")
arch=$2

expected=$(printf '%s\n' "it-devel.$arch" it-docs.noarch "it-tool-lib.$arch" "it-tool.$arch" | sort)
# --forcearch: the repo holds another architecture's packages, which dnf would otherwise hide. A real
# newline in the format: dnf5 prints it as given, dnf4 adds its own (the blank lines go).
found=$(dnf repoquery -q --releasever=1 --setopt=reposdir=/nonexistent --repofrompath="it,$dir" --repo=it \
  --forcearch="$arch" --queryformat $'%{name}.%{arch}\n' | grep -v '^$' | sort -u)
if [ "$found" != "$expected" ]; then
  printf 'dnf repoquery found:\n%s\nexpected:\n%s\n' "$found" "$expected" >&2
  exit 1
fi

python3 - "$dir/metadata.json" "$arch" <<'EOF'
import json, sys
meta = json.load(open(sys.argv[1]))
arch = sys.argv[2]
want = {
    'tool': [f'it-tool-1.0-1.{arch}', f'it-tool-lib-1.0-1.{arch}'],
    'docs': ['it-docs-1.0-1.noarch'],
    'devel': [f'it-devel-1.0-1.{arch}'],
}
got = {name: ext['packages'] for name, ext in meta['extensions'].items()}
if meta['arch'] != arch or got != want:
    sys.exit(f'metadata.json: arch {meta["arch"]}, extensions {got}; expected {arch}, {want}')
EOF
echo "$arch: $(echo "$found" | wc -l) packages, as expected"
