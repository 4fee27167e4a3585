#!/usr/bin/env bash
# Composes the sample extensions.yaml in examples/demo/ for x86_64 and aarch64: builds the demo
# distro's RPMs, a base committed to OSTree, then runs the committed CLI bundle on it.
# Usage: scripts/demo.sh [WORKDIR]   (default: ./demo-output)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --system-only
work=$(realpath -m "${1:-demo-output}")
rm -rf "$work"
mkdir -p "$work"
export HOME="$work/home" SOURCE_DATE_EPOCH=1730000000
mkdir -p "$HOME"

for arch in x86_64 aarch64; do
  top="$work/rpmbuild-$arch"
  for spec in examples/demo/base.spec examples/demo/extras.spec; do
    rpmbuild --quiet --define "_topdir $top" --define 'use_source_date_epoch_as_buildtime 1' --target "$arch" -bb "$spec" 2>/dev/null
  done
  mkdir -p "$work/repo/$arch"
  find "$top/RPMS" -name '*.rpm' -exec cp {} "$work/repo/$arch/" \;
  createrepo_c --quiet "$work/repo/$arch"

  root="$work/rootfs-$arch"
  mkdir -p "$root/usr/lib/sysimage/rpm" "$root/usr/share" "$root/etc"
  ln -s ../lib/sysimage/rpm "$root/usr/share/rpm"
  printf 'NAME="Demo Linux"\nID=demo\nVERSION_ID=41\nVERSION="41.20261101.0"\n' > "$root/usr/lib/os-release"
  ln -s ../usr/lib/os-release "$root/etc/os-release"
  rpm --root "$root" --dbpath /usr/lib/sysimage/rpm --initdb 2>/dev/null
  rpm --root "$root" --dbpath /usr/lib/sysimage/rpm -i --justdb --nodeps --noscripts --ignorearch \
    "$top"/RPMS/*/{glibc,kernel,kernel-core,libqb}-[0-9]*.rpm 2>/dev/null
  [ -d "$work/ostree" ] || ostree --repo="$work/ostree" init --mode=archive
  ostree --repo="$work/ostree" commit --branch="demo/$arch/base" --tree=dir="$root" \
    --add-metadata-string=version=41.20261101.0 --owner-uid=0 --owner-gid=0 --no-xattrs >/dev/null
done

mkdir -p "$work/yum.repos.d"
printf '[demo]\nname=Demo\nbaseurl=file://%s/repo/$basearch\ngpgcheck=0\n' "$work" > "$work/yum.repos.d/demo.repo"

node dist/cli.js compose --config examples/demo/extensions.yaml \
  --ostree-repo "$work/ostree" --base-rev 'demo/${basearch}/base' \
  --arch x86_64 --arch aarch64 --repos-dir "$work/yum.repos.d" \
  --cache-dir "$work/cache" --output "$work/output"

echo
echo "Extension repos: $work/output/x86_64 and $work/output/aarch64"
echo "Metadata:        $work/output/x86_64/metadata.json and $work/output/aarch64/metadata.json"
