#!/usr/bin/env bash
# Builds the initramfs that boots one kernel of the matrix into this machine's root (see init).
#
# Usage: tests/kernels/initramfs.sh KERNEL_DIR OUT.cpio.gz
#   KERNEL_DIR as fetch.sh leaves it: root/lib/modules/RELEASE with modules.dep and
#   modules.builtin.
#
# The archive holds static busybox, tests/kernels/init as /init, and the modules stage 1 needs
# to mount the host's root: virtio-pci (a module on 5.10), 9p over virtio, overlayfs, and
# virtio-rng (so that getrandom() does not wait for entropy), each with its dependencies, in
# load order, decompressed (busybox insmod reads plain .ko only). Everything else loads later in
# the real root through modprobe. Takes about a second: run.sh rebuilds it every run.
set -euo pipefail

[ $# -eq 2 ] || { echo "usage: $0 KERNEL_DIR OUT.cpio.gz" >&2; exit 2; }
KDIR=$(realpath "$1")
OUT=$(realpath -m "$2")
HERE=$(cd "$(dirname "$0")" && pwd)
BUSYBOX=${BUSYBOX:-/bin/busybox}
# What stage 1 needs; names as modprobe takes them.
WANTED=(virtio_pci virtio_rng 9pnet_virtio 9p overlay)

die() { echo "initramfs: error: $*" >&2; exit 1; }

moddir=$(find "$KDIR/root/lib/modules" -mindepth 1 -maxdepth 1 -type d | head -n 1)
[ -n "$moddir" ] && [ -e "$moddir/modules.dep" ] || die "no modules.dep under $KDIR/root/lib/modules"
# A dynamic busybox would find no libc in the initramfs (ldd fails on a static executable).
[ -x "$BUSYBOX" ] && ! ldd "$BUSYBOX" >/dev/null 2>&1 ||
  die "$BUSYBOX is not a static busybox (Debian package busybox-static)"

# modules.dep: "kernel/fs/9p/9p.ko: kernel/fs/netfs/netfs.ko kernel/net/9p/9pnet.ko"; the names
# in it use '_' or '-' as the source tree does, modprobe treats them alike.
declare -A path_of deps_of
while IFS= read -r line; do
  mod=${line%%:*}
  name=${mod##*/}
  name=${name%%.ko*}
  path_of[${name//-/_}]=$mod
  deps_of[$mod]=${line#*:}
done <"$moddir/modules.dep"
builtin=$(sed -E 's|.*/||; s|\.ko.*||; s|-|_|g' "$moddir/modules.builtin")

order=()
declare -A added
# Appends MOD's dependencies, then MOD. modules.dep lists a module's dependencies (all of them,
# transitively) with the ones loaded last first, so the list is walked backwards.
add() {
  local mod=$1 deps i
  [ -n "${added[$mod]:-}" ] && return
  read -r -a deps <<<"${deps_of[$mod]}"
  for ((i = ${#deps[@]} - 1; i >= 0; i--)); do add "${deps[i]}"; done
  added[$mod]=1
  order+=("$mod")
}
for want in "${WANTED[@]}"; do
  if [ -n "${path_of[$want]:-}" ]; then
    add "${path_of[$want]}"
  elif ! grep -qx "$want" <<<"$builtin"; then
    die "module $want is neither built in nor in $moddir"
  fi
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin" "$work/modules" "$work/dev"
cp "$BUSYBOX" "$work/bin/busybox"
ln -s busybox "$work/bin/sh"
cp "$HERE/init" "$work/init"
chmod 755 "$work/init"
: >"$work/modules/order"
for mod in "${order[@]}"; do
  base=$(basename "$mod")
  base=${base%%.ko*}.ko
  case "$mod" in
    *.ko.xz) xz -dc "$moddir/$mod" >"$work/modules/$base" ;;
    *.ko.zst) zstd -qdc "$moddir/$mod" >"$work/modules/$base" ;;
    *.ko.gz) gzip -dc "$moddir/$mod" >"$work/modules/$base" ;;
    *) cp "$moddir/$mod" "$work/modules/$base" ;;
  esac
  echo "$base" >>"$work/modules/order"
done
# The kernel opens /dev/console for init before anything is mounted.
mknod -m 600 "$work/dev/console" c 5 1

mkdir -p "$(dirname "$OUT")"
(cd "$work" && find . | cpio --quiet -o -H newc -R 0:0) | gzip -1 >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
