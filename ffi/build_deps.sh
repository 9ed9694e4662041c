#!/usr/bin/env bash
# Build position-independent static zlib, libelf and libbpf from Debian 12
# sources, so the FFI shim .so can link them statically and need only libc.
# (Debian's own libbpf.a/libz.a are PIE code and libelf.a uses local-exec TLS:
# none of them can go into a shared object.)
#
# Usage: ffi/build_deps.sh OUT_DIR      (e.g. build/deps)
# Produces OUT_DIR/lib/{libbpf,libelf,libz}.a and OUT_DIR/include/ (bpf/*.h,
# linux/{bpf,bpf_common,btf}.h, libelf.h, gelf.h, zlib.h, ...).
# Work files go to OUT_DIR/src. Re-running with complete outputs is a no-op.
# Needs: cc, make, dpkg-source and deb-src entries; installs/adds them as root.
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 OUT_DIR" >&2; exit 2; }
OUT=$(realpath -m "$1")
LIB=$OUT/lib INC=$OUT/include SRC=$OUT/src
CFLAGS_PIC="-O2 -fPIC"
JOBS=$(nproc)
die() { echo "build_deps: error: $*" >&2; exit 1; }
log() { echo "build_deps: $*" >&2; }

# Fast path: everything already built.
all_there=1
for f in "$LIB/libbpf.a" "$LIB/libelf.a" "$LIB/libz.a" "$INC/bpf/libbpf.h" \
         "$INC/bpf/bpf_helpers.h" "$INC/libelf.h" "$INC/zlib.h"; do
  [ -e "$f" ] || all_there=0
done
[ "$all_there" = 1 ] && exit 0

# --- 1. Tools and deb-src entries (only touches the system if something lacks)
SRC_LIST=/etc/apt/sources.list.d/ebpf-server-src.sources
has_src() { apt-cache showsrc libbpf 2>/dev/null | grep -q '^Package: libbpf'; }
pkgs=()
command -v cc >/dev/null          || pkgs+=(gcc libc6-dev)
command -v make >/dev/null        || pkgs+=(make)
command -v dpkg-source >/dev/null || pkgs+=(dpkg-dev)   # apt-get source needs it
if [ ${#pkgs[@]} -gt 0 ] || ! has_src; then
  [ "$(id -u)" = 0 ] || die "need root to add deb-src entries / install: ${pkgs[*]:-nothing}"
  if ! has_src && [ ! -e "$SRC_LIST" ]; then
    log "adding $SRC_LIST (deb-src for bookworm)"
    cat >"$SRC_LIST" <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  fi
  apt-get update -qq || die "apt-get update failed"
  has_src || die "no Debian source index for libbpf even after adding $SRC_LIST"
  if [ ${#pkgs[@]} -gt 0 ]; then
    log "installing ${pkgs[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${pkgs[@]}" >/dev/null || die "apt-get install ${pkgs[*]} failed"
  fi
fi

# --- 2. Fetch and unpack (Debian patches applied) the three source packages.
if [ ! -e "$SRC/.fetched" ]; then
  rm -rf "$SRC" && mkdir -p "$SRC"
  log "fetching Debian sources: zlib elfutils libbpf"
  # Sandbox::User=root: the work dir is not readable by _apt; avoids a warning.
  # The newest version can be listed in an index whose pool the mirror does not serve
  # (bookworm-security's zlib here): then take the one of the bookworm release itself.
  for pkg in zlib elfutils libbpf; do
    (cd "$SRC" && { apt-get -qq -o APT::Sandbox::User=root source "$pkg" >/dev/null 2>&1 ||
       { log "newest $pkg source not served; trying $pkg/bookworm" &&
         apt-get -qq -o APT::Sandbox::User=root source "$pkg/bookworm" >/dev/null; }; }) ||
      die "apt-get source $pkg failed"
  done
  touch "$SRC/.fetched"
fi
srcdir() { set -- "$SRC"/$1-[0-9]*/; [ -d "$1" ] || die "no unpacked source for $1"; echo "${1%/}"; }
mkdir -p "$LIB" "$INC"

# --- 3. zlib (static only, PIC).
if [ ! -e "$LIB/libz.a" ] || [ ! -e "$INC/zlib.h" ]; then
  d=$(srcdir zlib); log "building zlib ($d)"
  (cd "$d" && CFLAGS="$CFLAGS_PIC" ./configure --static >/dev/null &&
     make -s -j"$JOBS" libz.a >/dev/null) || die "zlib build failed"
  cp "$d/zlib.h" "$d/zconf.h" "$INC/" && cp "$d/libz.a" "$LIB/"
fi

# --- 4. libelf only (not the rest of elfutils), PIC => global-dynamic TLS.
# Compiled against our zlib headers; no flex/bison/gawk/-dev packages needed.
if [ ! -e "$LIB/libelf.a" ] || [ ! -e "$INC/libelf.h" ]; then
  d=$(srcdir elfutils); log "building libelf ($d)"
  (cd "$d" && ./configure CFLAGS="$CFLAGS_PIC" CPPFLAGS="-I$INC" LDFLAGS="-L$LIB" \
       --disable-debuginfod --disable-libdebuginfod --disable-nls \
       --without-bzlib --without-lzma --without-zstd >config.out 2>&1 ||
     { tail -20 config.out >&2; exit 1; }) || die "elfutils configure failed (see $d/config.out)"
  make -s -C "$d/libelf" -j"$JOBS" libelf.a >/dev/null || die "libelf build failed"
  cp "$d/libelf/libelf.h" "$d/libelf/gelf.h" "$d/libelf/nlist.h" "$INC/"
  cp "$d/libelf/libelf.a" "$LIB/"
fi

# --- 5. libbpf (static only, PIC), headers into include/bpf and include/linux.
if [ ! -e "$LIB/libbpf.a" ] || [ ! -e "$INC/bpf/libbpf.h" ]; then
  d=$(srcdir libbpf); log "building libbpf ($d)"; mkdir -p "$SRC/obj-libbpf"
  mk=(make -s -C "$d/src" BUILD_STATIC_ONLY=y NO_PKG_CONFIG=1 OBJDIR="$SRC/obj-libbpf"
      CFLAGS="$CFLAGS_PIC -std=gnu89" EXTRA_CFLAGS="-I$INC"
      DESTDIR="$OUT" INCLUDEDIR=/include UAPIDIR=/include)
  "${mk[@]}" -j"$JOBS" >/dev/null || die "libbpf build failed"
  "${mk[@]}" install_headers install_uapi_headers >/dev/null || die "libbpf header install failed"
  cp "$SRC/obj-libbpf/libbpf.a" "$LIB/"
fi

# --- 6. Sanity check: every object of the archives must link into a .so
# (without the --exclude-libs crutch, no text relocations), needing only libc
# (+ ld-linux, which provides __tls_get_addr for libelf's PIC TLS).
# On failure the archives are removed so a re-run cannot take them as done.
t=$SRC/pic-check
echo '#include <bpf/libbpf.h>
int f(void) { return libbpf_major_version(); }' >"$t.c"
bad() { rm -f "$LIB"/lib{bpf,elf,z}.a; die "PIC check: $*"; }
cc -shared -fPIC -I"$INC" "$t.c" -Wl,--whole-archive "$LIB/libbpf.a" "$LIB/libelf.a" \
   "$LIB/libz.a" -Wl,--no-whole-archive -Wl,-z,text -o "$t.so" ||
  bad "archives do not link into a shared object"
extra=$(readelf -d "$t.so" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' |
        grep -vE '^(libc\.so\.6|ld-linux-x86-64\.so\.2)$' || true)
[ -z "$extra" ] || bad "unexpected dependencies: $extra"
log "done: $LIB/{libbpf,libelf,libz}.a, headers in $INC"
