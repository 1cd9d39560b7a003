#!/usr/bin/env bash
# Builds the Linux Hyper-V daemons hv_kvp_daemon and hv_vss_daemon from Debian's kernel source
# package WITH AddressSanitizer and UndefinedBehaviorSanitizer, and caches them. The conformance
# targets hv-daemon:kvp=asan / hv-daemon:vss=asan (sim/targets/hvdaemon/sanitized.ts) run them
# behind the same device bridge and sandbox as Debian's packaged daemons.
#
#   scripts/build-hv-daemons.sh          # prints the build directory on the last line of stdout
#
# Source: ${HVSIM_LINUX_SOURCE:-/usr/src/linux-source-6.1.tar.xz} (Debian package linux-source-6.1,
# installed by apt when missing and this runs as root). Only tools/hv/hv_kvp_daemon.c,
# tools/hv/hv_vss_daemon.c and include/uapi/linux/hyperv.h (the one header of the kernel tree they
# include, as <linux/hyperv.h>; every other header is the C library's) are extracted, into a
# temporary directory that is removed afterwards: the kernel sources are never kept or committed.
#
# Cache: ${HVSIM_CACHE:-$HOME/.cache/hvsim}/hv-daemons/<key>/{hv_kvp_daemon,hv_vss_daemon,BUILD-INFO}
# (hv-daemons-afl/<key>/ for the AFL++ variant)
# where <key> is a hash of every input: the tarball (path, size, mtime, Debian package version),
# the compiler (`cc --version`), the flags and this script. A complete build has a .complete
# marker and is published by renaming a finished temporary directory, so a concurrent reader never
# sees half a build; a build with the same key is reused at once (no tar, no compiler).
#
# Output: progress on stderr when stderr is a terminal (and CI is unset); otherwise quiet except
# for errors. The compiler output goes to <cache>/hv-daemons/build.log, whose tail is printed on
# failure. Exits non-zero with an "ERROR:" line on failure.
#
# Environment: HVSIM_CACHE (cache root), HVSIM_LINUX_SOURCE (the tarball), CC (compiler, default cc;
# CC=afl-clang-fast builds the AFL++-instrumented variant that `hvsim fuzz --engine afl` runs).
set -Eeuo pipefail

exec 3>&1 1>&2 </dev/null
export LC_ALL=C.UTF-8
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:${PATH:-}"

if [ -t 2 ] && [ -z "${CI:-}" ]; then VERBOSE=1; else VERBOSE=0; fi
log() { if [ "$VERBOSE" = 1 ]; then printf '[build-hv-daemons] %s\n' "$*" >&2; fi; }
die() { printf '[build-hv-daemons] ERROR: %s\n' "$*" >&2; exit 1; }

home="${HOME:-}"
if [ -z "$home" ]; then home="$(getent passwd "$(id -u)" | cut -d: -f6)"; fi
CACHE_ROOT="${HVSIM_CACHE:-$home/.cache/hvsim}/hv-daemons"
TARBALL="${HVSIM_LINUX_SOURCE:-/usr/src/linux-source-6.1.tar.xz}"
CC="${CC:-cc}"
# -O1: ASan's recommended level (readable stacks, still fast); -D_GNU_SOURCE as tools/hv/Makefile.
CFLAGS=(-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -D_GNU_SOURCE -Wall)
# An AFL++ compiler (CC=afl-clang-fast / afl-cc) makes the fuzzing variant: -rdynamic exports
# __afl_manual_init, which the shim's AFL mode starts the deferred fork server with (dlsym).
# It has its own cache folder, hv-daemons-afl/, so it can never stand in for the ASan build.
case "$(basename -- "$CC")" in afl-*) CFLAGS+=(-rdynamic); CACHE_ROOT="$CACHE_ROOT-afl" ;; esac
DAEMONS=(hv_kvp_daemon hv_vss_daemon)

LOG=""
TMP=""
on_err() {
  local rc=$? line=$1 cmd=$2
  printf '[build-hv-daemons] ERROR: command failed (exit %s) at line %s: %s\n' "$rc" "$line" "$cmd" >&2
  if [ -n "$LOG" ] && [ -s "$LOG" ]; then
    printf '[build-hv-daemons] last lines of %s:\n' "$LOG" >&2
    tail -n 30 "$LOG" | sed 's/^/    /' >&2
  fi
  exit "$rc"
}
trap 'on_err "$LINENO" "$BASH_COMMAND"' ERR
cleanup() { if [ -n "$TMP" ] && [ -d "$TMP" ]; then rm -rf -- "$TMP"; fi; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for tool in tar xz sha256sum stat flock; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found (install tar, xz-utils, coreutils, util-linux)"
done
command -v "$CC" >/dev/null 2>&1 || die "no C compiler '$CC' (install gcc and libc6-dev)"
cc_version="$("$CC" --version 2>/dev/null | head -n 1)" || true
[ -n "$cc_version" ] || die "'$CC --version' failed"

# ---- the source tarball (installing linux-source-6.1 when it is missing and we are root) ------
if [ ! -f "$TARBALL" ] && [ -z "${HVSIM_LINUX_SOURCE:-}" ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing linux-source-6.1 (Debian's kernel source tarball)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends linux-source-6.1 xz-utils >/dev/null \
      || die "apt-get install linux-source-6.1 failed"
  fi
fi
[ -f "$TARBALL" ] || die "$TARBALL not found: install Debian's linux-source-6.1 (apt-get install linux-source-6.1 xz-utils) or set HVSIM_LINUX_SOURCE"
pkg_version="$(dpkg-query -W -f='${Version}' linux-source-6.1 2>/dev/null || true)"

key="$(
  {
    printf 'tarball=%s size=%s mtime=%s package=%s\n' "$TARBALL" "$(stat -c %s "$TARBALL")" "$(stat -c %Y "$TARBALL")" "$pkg_version"
    printf 'cc=%s version=%s\n' "$CC" "$cc_version"
    printf 'cflags=%s\n' "${CFLAGS[*]}"
    cat "$0"
  } | sha256sum | cut -c1-16
)"
OUT="$CACHE_ROOT/$key"
complete() { [ -f "$OUT/.complete" ] && [ -x "$OUT/hv_kvp_daemon" ] && [ -x "$OUT/hv_vss_daemon" ]; }
if complete; then
  log "cached: $OUT"
  printf '%s\n' "$OUT" >&3
  exit 0
fi

mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/.lock"
if ! flock -n 9; then
  log "another build holds $CACHE_ROOT/.lock: waiting for it"
  flock 9
fi
if complete; then
  printf '%s\n' "$OUT" >&3
  exit 0
fi

LOG="$CACHE_ROOT/build.log"
: >"$LOG"
start=$SECONDS
TMP="$(mktemp -d "$CACHE_ROOT/.tmp-XXXXXX")"
log "extracting tools/hv and include/uapi/linux/hyperv.h from $TARBALL (about 15 s: xz is read to the end)"
top="$(tar -tJf "$TARBALL" 2>>"$LOG" | head -n 1 | cut -d/ -f1)" || true
[ -n "$top" ] || die "cannot list $TARBALL (see $LOG)"
tar -xJf "$TARBALL" -C "$TMP" --wildcards \
  "$top/tools/hv/hv_kvp_daemon.c" "$top/tools/hv/hv_vss_daemon.c" "$top/include/uapi/linux/hyperv.h" >>"$LOG" 2>&1 \
  || die "extracting the daemon sources from $TARBALL failed (see $LOG)"
src="$TMP/$top"
# <linux/hyperv.h> from this very kernel tree, every other header from the C library.
mkdir -p "$TMP/include/linux" "$TMP/out"
cp "$src/include/uapi/linux/hyperv.h" "$TMP/include/linux/hyperv.h"
for d in "${DAEMONS[@]}"; do
  log "compiling $d (${CFLAGS[*]})"
  printf '\n$ (cd %s && %s %s -I%s -o %s tools/hv/%s.c)\n' "$src" "$CC" "${CFLAGS[*]}" "$TMP/include" "$d" "$d" >>"$LOG"
  # -ffile-prefix-map: debug info names linux-source-6.1/tools/hv/..., not the temporary directory.
  # Compiled from the tree's top with a relative name, so that UBSan's locations read tools/hv/...
  (cd "$src" && "$CC" "${CFLAGS[@]}" -ffile-prefix-map="$src"="$top" -I"$TMP/include" -o "$TMP/out/$d" "tools/hv/$d.c") >>"$LOG" 2>&1 \
    || die "compiling $d failed (see $LOG)"
  chmod 755 "$TMP/out/$d"
done
{
  printf 'source: %s (linux-source-6.1 %s): tools/hv/{hv_kvp_daemon,hv_vss_daemon}.c, include/uapi/linux/hyperv.h\n' "$TARBALL" "${pkg_version:-unknown}"
  printf 'compiler: %s\n' "$cc_version"
  printf 'cflags: %s\n' "${CFLAGS[*]}"
  printf 'built: %s in %ss on %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$((SECONDS - start))" "$(uname -m)"
} >"$TMP/out/BUILD-INFO"
: >"$TMP/out/.complete"
chmod 755 "$TMP/out"
rm -rf -- "$OUT"
mv "$TMP/out" "$OUT"
log "built in $((SECONDS - start))s; cached at $OUT"
printf '%s\n' "$OUT" >&3
