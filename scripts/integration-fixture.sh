#!/usr/bin/env bash
# Builds the small distro that .github/workflows/integration.yml composes from, with the real
# rpmbuild, rpm and createrepo_c (as test/fixtures does):
#   DIR/repo/              a repo with every package for ARCH (plus noarch)
#   DIR/rootfs/            the base: os-release and an rpmdb holding it-base-lib.ARCH
#   DIR/repos.d/           empty: the repo comes from `repos: fixture=DIR/repo`
#   DIR/extensions.yaml    three extensions over that repo (id `fixture`)
# Usage: scripts/integration-fixture.sh DIR ARCH
set -euo pipefail
dir=$(realpath -m "$1")
arch=$2
mkdir -p "$dir"/{rpmbuild,repo,rootfs,repos.d}

cat >"$dir/rpmbuild/it.spec" <<'EOF'
Name: it-fixture
Version: 1.0
Release: 1
Summary: compose-extensions integration fixture
License: MIT
%description
Packages for the compose-extensions integration workflow.

%package -n it-base-lib
Summary: in the base
%description -n it-base-lib
In the base.

%package -n it-tool
Summary: an extension that needs the base and a library
Requires: it-base-lib
Requires: it-tool-lib
%description -n it-tool
An extension.

%package -n it-tool-lib
Summary: the tool's library
%description -n it-tool-lib
A library.

%package -n it-docs
Summary: a noarch extension
BuildArch: noarch
%description -n it-docs
Documentation.

%package -n it-devel
Summary: a development package pinned to the base
Requires: it-base-lib = %{version}-%{release}
%description -n it-devel
Development files.

%files -n it-base-lib
%files -n it-tool
%files -n it-tool-lib
%files -n it-docs
%files -n it-devel
EOF

# Reproducible: no build time or host in the headers. No debuginfo (Fedora's macros would look for
# sources these empty packages do not have).
HOME="$dir/rpmbuild" SOURCE_DATE_EPOCH=1700000000 rpmbuild --quiet \
  --define "_topdir $dir/rpmbuild" --define 'debug_package %{nil}' --define '_build_id_links none' \
  --define 'use_source_date_epoch_as_buildtime 1' --define '_buildhost fixture.invalid' \
  --target "$arch" -bb "$dir/rpmbuild/it.spec"
find "$dir/rpmbuild/RPMS" -name '*.rpm' -exec cp {} "$dir/repo/" \;
createrepo_c --quiet --no-database "$dir/repo"

# The base: an rpmdb where Fedora keeps it (usr/share/rpm links to it, as on rpm-ostree systems).
mkdir -p "$dir/rootfs/usr/lib/sysimage/rpm" "$dir/rootfs/usr/share" "$dir/rootfs/etc"
ln -sfn ../lib/sysimage/rpm "$dir/rootfs/usr/share/rpm"
printf 'NAME="Integration Linux"\nID=fedora\nVERSION_ID=%s\n' "$(. /etc/os-release && echo "${VERSION_ID:-40}")" >"$dir/rootfs/usr/lib/os-release"
ln -sfn ../usr/lib/os-release "$dir/rootfs/etc/os-release"
HOME="$dir/rootfs" rpm --root "$dir/rootfs" --dbpath /usr/lib/sysimage/rpm --initdb
HOME="$dir/rootfs" rpm --root "$dir/rootfs" --dbpath /usr/lib/sysimage/rpm -i --justdb --nodeps --noscripts --notriggers \
  --ignorearch --nosignature "$dir/repo/it-base-lib-1.0-1.$arch.rpm"

cat >"$dir/extensions.yaml" <<'EOF'
repos: [fixture]
extensions:
  tool:
    packages: [it-tool]
  docs:
    packages: [it-docs]
  devel:
    kind: development
    match-base-evr: it-base-lib
    packages: [it-devel]
EOF

rm -rf "$dir/rpmbuild"
