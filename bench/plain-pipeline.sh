#!/bin/bash
# The plain dnf pipeline a user would script instead of compose-extensions (the baseline of the
# benchmark). For each architecture in turn: copy the base rpmdb out of the OSTree commit, one
# `dnf install --downloadonly` of every os-extension package with the base locked (its names
# excluded from the repos), one `dnf download` of the development packages pinned to the base's
# kernel EVR, then createrepo_c. No per-extension closures, no metadata.
#
#   plain-pipeline.sh OSTREE_REPO REF_TEMPLATE REPOS_DIR REPO_IDS WORK OUT CACHE \
#       ARCHES DEV_PACKAGES -- OS_EXTENSION_PACKAGES...
# REF_TEMPLATE contains ${basearch}; REPO_IDS, ARCHES and DEV_PACKAGES are comma-separated.
set -euo pipefail

ostree_repo=$1 ref_template=$2 repos_dir=$3 repo_ids=$4 work=$5 out=$6 cache=$7 arches=$8 dev_packages=$9
shift 9
[ "$1" = -- ] && shift
IFS=, read -r -a repo_list <<<"$repo_ids"
IFS=, read -r -a arch_list <<<"$arches"
IFS=, read -r -a dev_list <<<"$dev_packages"

mkdir -p "$work" "$out" "$cache"
: >"$work/empty.conf"
dbpath=/usr/lib/sysimage/rpm

for arch in "${arch_list[@]}"; do
  ref=${ref_template//'${basearch}'/$arch}
  root=$work/$arch/root home=$work/$arch/home dest=$out/$arch
  rm -rf "$root" "$dest"
  mkdir -p "$root/usr/lib/sysimage" "$home" "$dest" "$work/$arch/log"
  ostree --repo="$ostree_repo" checkout --user-mode --subpath="$dbpath" "$ref" "$root$dbpath"
  # Debian's rpm defaults %_dbpath to ~/.rpmdb: point it at the base copy.
  printf '%%_dbpath %s\n' "$dbpath" >"$home/.rpmmacros"
  releasever=$(ostree --repo="$ostree_repo" cat "$ref" /usr/lib/os-release | sed -n 's/^VERSION_ID="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p')
  base_names=$(HOME=$home rpm --root "$root" -qa --qf '%{NAME}\n' | sort -u | paste -sd, -)
  kernel_evr=$(HOME=$home rpm --root "$root" -q --qf '%{EPOCH}:%{VERSION}-%{RELEASE}\n' kernel | head -n1)
  kernel_evr=${kernel_evr#(none):}

  dnf=(dnf -q -y -c "$work/empty.conf" --installroot="$root" --forcearch="$arch" --releasever="$releasever"
    --setopt=reposdir="$repos_dir" --setopt=cachedir="$cache/$arch" --setopt=logdir="$work/$arch/log"
    --setopt=persistdir="$work/$arch/persist" --setopt=skip_if_unavailable=False)
  # The base is locked: no package sharing a name with a base package may come from the repos.
  lock=()
  for id in "${repo_list[@]}"; do lock+=(--setopt="$id.excludepkgs=$base_names"); done

  HOME=$home "${dnf[@]}" "${lock[@]}" install --downloadonly --downloaddir="$dest" "$@"
  pinned=()
  for p in "${dev_list[@]}"; do pinned+=("$p-$kernel_evr.$arch"); done
  HOME=$home "${dnf[@]}" download --destdir="$dest" "${pinned[@]}"
  createrepo_c --quiet --no-database "$dest"
done
