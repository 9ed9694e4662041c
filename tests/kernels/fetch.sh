#!/usr/bin/env bash
# Downloads and unpacks the newest Debian kernel package of each kernel line the matrix tests,
# into a cache under build/kernels/, for tests/kernels/run.sh.
#
# Usage: tests/kernels/fetch.sh [LINE...]      LINE: 5.10, 6.1 or 6.12 (default: all three)
# Prints one line per kernel on stdout: "LINE RELEASE DIR", e.g.
#   6.1 6.1.0-41-amd64 /path/to/build/kernels/6.1.0-41-amd64
# where DIR holds vmlinuz and root/lib/modules/RELEASE (with the modules.dep that depmod wrote).
#
# The version is resolved from the package index: the newest `linux-image-amd64` metapackage of
# the line's suites names the image package it depends on. apt runs with a private sources list,
# lists, cache and an empty dpkg status, so the machine's own apt state is never touched (and
# nothing is installed). Re-running is cheap: the index is refreshed at most every
# KERNELS_INDEX_MAX_AGE seconds (default a day) and a kernel already unpacked is not fetched again.
# When the mirror cannot be reached, the kernels fetched last time are used (with a warning).
#
# Environment: KERNELS_DIR (default <repo>/build/kernels), KERNELS_MIRROR (default
# http://deb.debian.org/debian), KERNELS_SECURITY_MIRROR (default
# http://deb.debian.org/debian-security), KERNELS_INDEX_MAX_AGE (seconds; 0 refreshes now).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
KERNELS_DIR=${KERNELS_DIR:-$ROOT/build/kernels}
MIRROR=${KERNELS_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${KERNELS_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
INDEX_MAX_AGE=${KERNELS_INDEX_MAX_AGE:-86400}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
APT=$KERNELS_DIR/apt

log() { echo "fetch: $*" >&2; }
die() { echo "fetch: error: $*" >&2; exit 1; }

# Which suites carry each kernel line (FACTS.md, "Other kernels, in qemu"). The security suites
# usually have the newest build of a stable release's kernel.
suites_of() {
  case "$1" in
    5.10) echo "bullseye bullseye-security" ;;
    6.1) echo "bookworm bookworm-security" ;;
    6.12) echo "trixie trixie-security bookworm-backports" ;;
    *) die "unknown kernel line '$1' (known: 5.10, 6.1, 6.12)" ;;
  esac
}

lines=("$@")
[ ${#lines[@]} -gt 0 ] || lines=(5.10 6.1 6.12)
for line in "${lines[@]}"; do suites_of "$line" >/dev/null; done

for tool in apt-get apt-cache dpkg dpkg-deb depmod; do
  command -v "$tool" >/dev/null || die "$tool is missing (make test-kernels installs kmod and the rest)"
done

# --- The private apt configuration -------------------------------------------------------------
mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial" "$APT/sources.list.d" \
  "$APT/preferences.d" "$APT/debs"
[ -e "$APT/status" ] || : >"$APT/status" # an empty dpkg database: nothing is "installed"
{
  for s in bullseye bookworm bookworm-backports trixie; do
    echo "deb [signed-by=$KEYRING] $MIRROR $s main"
  done
  for s in bullseye-security bookworm-security trixie-security; do
    echo "deb [signed-by=$KEYRING] $SECURITY_MIRROR $s main"
  done
} >"$APT/sources.list.tmp"
# Replaced only when it changes: a newer sources.list makes apt rebuild its cache (~10 s).
if cmp -s "$APT/sources.list.tmp" "$APT/sources.list"; then
  rm "$APT/sources.list.tmp"
else
  mv "$APT/sources.list.tmp" "$APT/sources.list"
fi
APT_OPTS=(
  -o "Dir::Etc::SourceList=$APT/sources.list"
  -o "Dir::Etc::SourceParts=$APT/sources.list.d"
  -o "Dir::Etc::Preferences=$APT/preferences"
  -o "Dir::Etc::PreferencesParts=$APT/preferences.d"
  -o "Dir::State::Lists=$APT/lists"
  -o "Dir::State::status=$APT/status"
  -o "Dir::Cache=$APT/cache"
  # Docker-style images turn the binary cache off; without it every apt-cache call re-parses
  # seven suites' indexes (~3 s each).
  -o "Dir::Cache::pkgcache=pkgcache.bin"
  -o "Dir::Cache::srcpkgcache=srcpkgcache.bin"
  -o "APT::Architecture=amd64"
  -o "APT::Architectures=amd64"
  -o "Acquire::Languages=none"
  -o "Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false"
  # The private cache is root's, not _apt's: say so instead of warning on every download.
  -o "APT::Sandbox::User=root"
)

# --- The package index -------------------------------------------------------------------------
index_ok=1
stamp=$APT/lists/.updated
age=$INDEX_MAX_AGE
[ -e "$stamp" ] && age=$(($(date +%s) - $(stat -c %Y "$stamp")))
if [ ! -e "$stamp" ] || [ "$age" -ge "$INDEX_MAX_AGE" ]; then
  log "updating the private package index ($APT)"
  # A suite that fails only warns ("W: Failed to fetch"); a line whose suites all failed is
  # caught below, when no version is found for it.
  if apt-get "${APT_OPTS[@]}" -qq update >&2; then
    touch "$stamp"
  else
    index_ok=0
  fi
fi

# The newest version of the linux-image-amd64 metapackage in LINE's suites ("VERSION SUITE").
newest_meta() {
  local line=$1 suites best="" best_suite="" v s
  suites=" $(suites_of "$line") "
  # madison: " linux-image-amd64 | 6.1.158-1 | http://... bookworm-security/main amd64 Packages"
  while IFS='|' read -r _ v src; do
    v=${v// /}
    s=$(awk '{print $2}' <<<"$src")
    s=${s%%/*}
    [[ "$suites" == *" $s "* ]] || continue
    [[ "$v" == "$line".* ]] || continue
    if [ -z "$best" ] || dpkg --compare-versions "$v" gt "$best"; then
      best=$v best_suite=$s
    fi
  done < <(apt-cache "${APT_OPTS[@]}" madison linux-image-amd64 2>/dev/null || true)
  [ -n "$best" ] && echo "$best $best_suite"
}

# Unpacks image package PKG (version VER) into KERNELS_DIR/RELEASE; prints RELEASE.
unpack() {
  local pkg=$1 ver=$2 deb work release moddir dest
  deb=$(find "$APT/debs" -maxdepth 1 -name "${pkg}_*.deb" | head -n 1)
  if [ -z "$deb" ] || [ "$(dpkg-deb -f "$deb" Version)" != "$ver" ]; then
    rm -f "$APT/debs/${pkg}"_*.deb
    log "downloading $pkg $ver"
    (cd "$APT/debs" && apt-get "${APT_OPTS[@]}" -qq download "$pkg=$ver") >&2 ||
      die "apt-get download $pkg=$ver failed"
    deb=$(find "$APT/debs" -maxdepth 1 -name "${pkg}_*.deb" | head -n 1)
  fi
  work=$KERNELS_DIR/.unpack.$$
  rm -rf "$work" && mkdir -p "$work"
  dpkg -x "$deb" "$work"
  # bullseye and bookworm put modules under lib/modules, trixie (merged /usr) under usr/lib/modules.
  moddir=$(find "$work/lib/modules" "$work/usr/lib/modules" -mindepth 1 -maxdepth 1 -type d \
    2>/dev/null | head -n 1)
  [ -n "$moddir" ] || die "$deb holds no lib/modules/RELEASE"
  release=$(basename "$moddir")
  [ -e "$work/boot/vmlinuz-$release" ] || die "$deb holds no boot/vmlinuz-$release"
  dest=$KERNELS_DIR/$release
  rm -rf "$dest" && mkdir -p "$dest/root/lib/modules"
  mv "$work/boot/vmlinuz-$release" "$dest/vmlinuz"
  [ -e "$work/boot/config-$release" ] && mv "$work/boot/config-$release" "$dest/config"
  mv "$moddir" "$dest/root/lib/modules/$release"
  rm -rf "$work"
  # The packages ship no modules.dep (the postinst runs depmod): make it, so that the guest's
  # modprobe (this machine's kmod, which reads .ko.xz too) can load whatever the tests need.
  depmod -b "$dest/root" "$release"
  echo "$pkg $ver" >"$dest/package"
  rm -f "$deb" # the unpacked tree is the cache; the .deb (50-100 MB) is not needed again
  echo "$release"
}

for line in "${lines[@]}"; do
  current=$KERNELS_DIR/current-$line
  meta=""
  [ "$index_ok" = 1 ] && meta=$(newest_meta "$line" || true)
  if [ -z "$meta" ]; then
    # Offline (or the index lacks the line): fall back to what was fetched last time.
    if [ -e "$current" ] && [ -e "$KERNELS_DIR/$(cat "$current")/vmlinuz" ]; then
      log "warning: no package index for $line; using the cached $(cat "$current")"
      echo "$line $(cat "$current") $KERNELS_DIR/$(cat "$current")"
      continue
    fi
    die "no linux-image-amd64 $line.* in $(suites_of "$line") (mirror $MIRROR reachable?)"
  fi
  read -r meta_ver suite <<<"$meta"
  # "Depends: linux-image-6.1.0-41-amd64 (= 6.1.158-1)": the real image package and its version.
  dep=$(apt-cache "${APT_OPTS[@]}" show "linux-image-amd64=$meta_ver" 2>/dev/null |
    sed -n 's/^Depends: //p' | head -n 1 | tr ',' '\n' | grep -oE 'linux-image-[^ ]+-amd64( \(= [^)]+\))?' |
    head -n 1)
  pkg=${dep%% *}
  ver=$(sed -nE 's/.*\(= ([^)]+)\).*/\1/p' <<<"$dep")
  [ -n "$pkg" ] || die "cannot read the image package linux-image-amd64 $meta_ver depends on"
  [ -n "$ver" ] || ver=$(apt-cache "${APT_OPTS[@]}" madison "$pkg" | awk -F'|' 'NR==1{gsub(/ /,"",$2); print $2}')
  release=""
  if [ -e "$current" ] && [ -e "$KERNELS_DIR/$(cat "$current")/package" ] &&
    [ "$(cat "$KERNELS_DIR/$(cat "$current")/package")" = "$pkg $ver" ]; then
    release=$(cat "$current")
  else
    log "$line: $pkg $ver (from $suite)"
    release=$(unpack "$pkg" "$ver")
    # A newer build replaces the line's previous one in the cache (400-700 MB each).
    if [ -e "$current" ] && [ "$(cat "$current")" != "$release" ]; then
      rm -rf "${KERNELS_DIR:?}/$(cat "$current")"
    fi
    echo "$release" >"$current"
  fi
  echo "$line $release $KERNELS_DIR/$release"
done
