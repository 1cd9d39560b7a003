#!/usr/bin/env bash
# Builds qemu-system-x86_64 WITH the qtest accelerator from Debian's own source package and caches
# it. Debian's qemu-system-x86 ships without the qtest accelerator module, so the qtest target of
# the bench (sim/targets/qtest) needs this build.
#
#   scripts/build-qemu-qtest.sh          # prints the binary's path on the last line of stdout
#
# Cache: ${HVSIM_CACHE:-$HOME/.cache/hvsim}/qemu-qtest/<debian-version>/qemu-system-x86_64, where
# <debian-version> is the source version of the installed qemu-system-x86 without its epoch
# (e.g. 7.2+dfsg-7+deb12u18, as in Debian's file names: no ':' in the path). The build is made
# from the same source version as the installed package, whose data files (-L /usr/share/qemu)
# and SeaBIOS it is run with.
#
# Idempotent: when the cached binary exists and answers the qtest protocol under `-accel qtest`
# (see has_qtest: `-accel help` never lists qtest), the script prints its path and exits 0 at once
# (no apt, no network). Otherwise (needs root, or password-less sudo):
#   1. installs qemu-system-x86 if it is missing (runtime data files, SeaBIOS, the version key);
#   2. adds a deb-src entry for the Debian suites already configured, in its own file
#      /etc/apt/sources.list.d/hvsim-deb-src.sources (only when no deb-src entry exists), and runs
#      apt-get update;
#   3. installs the build dependencies that are missing;
#   4. `apt-get source qemu=<version>` into <cache>/qemu-qtest/<version>/build, configures a
#      minimal x86_64-softmmu build, builds the one binary with ninja, checks it lists qtest,
#      moves it into the cache and removes the build tree (also on failure).
# Progress goes to stderr; the full output of apt/configure/ninja goes to
# <cache>/qemu-qtest/<version>/build.log (its tail is printed on failure). Non-interactive
# (stdin is ignored). Exits non-zero with an "ERROR:" line on failure.
#
# Environment: HVSIM_CACHE (cache root), HVSIM_BUILD_JOBS (ninja -j, default 2),
# HVSIM_KEEP_BUILD=1 (keep the build tree, for debugging).
set -Eeuo pipefail

# Everything but the final path goes to stderr; fd 3 is the real stdout.
exec 3>&1 1>&2 </dev/null
export DEBIAN_FRONTEND=noninteractive
export LC_ALL=C.UTF-8

log() { printf '[build-qemu-qtest] %s\n' "$*" >&2; }
die() { printf '[build-qemu-qtest] ERROR: %s\n' "$*" >&2; exit 1; }

# Debian's tools first: a pyenv/venv python3 or a pip meson earlier on PATH must not be picked up.
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:${PATH:-}"

home="${HOME:-}"
if [ -z "$home" ]; then home="$(getent passwd "$(id -u)" | cut -d: -f6)"; fi
CACHE_ROOT="${HVSIM_CACHE:-$home/.cache/hvsim}/qemu-qtest"
JOBS="${HVSIM_BUILD_JOBS:-2}"
DEB_SRC_FILE=/etc/apt/sources.list.d/hvsim-deb-src.sources
APT_OPTS=(-y -q -o DPkg::Lock::Timeout=600 -o APT::Sandbox::User=root)

LOG=""
BUILD_DIR=""
on_err() {
  local rc=$? line=$1 cmd=$2
  printf '[build-qemu-qtest] ERROR: command failed (exit %s) at line %s: %s\n' "$rc" "$line" "$cmd" >&2
  if [ -n "$LOG" ] && [ -s "$LOG" ]; then
    printf '[build-qemu-qtest] last lines of %s:\n' "$LOG" >&2
    tail -n 40 "$LOG" | sed 's/^/    /' >&2
  fi
  exit "$rc"
}
trap 'on_err "$LINENO" "$BASH_COMMAND"' ERR
cleanup() {
  if [ -n "$BUILD_DIR" ] && [ -d "$BUILD_DIR" ] && [ "${HVSIM_KEEP_BUILD:-0}" != 1 ]; then
    log "removing build tree $BUILD_DIR"
    rm -rf -- "$BUILD_DIR"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Runs a command with its output appended to the build log.
run_logged() {
  printf '\n$ %s\n' "$*" >>"$LOG"
  "$@" >>"$LOG" 2>&1
}

# QEMU's `-accel help` never lists qtest (softmmu/vl.c omits it on purpose: "used for tests only"),
# so probe it: start the binary with -accel qtest and ask for `clock_step 7`, which only the qtest
# accelerator answers with `OK 7` (TCG answers FAIL, a binary without qtest does not start).
has_qtest() { # BINARY
  local bin=$1 line="" pid in out
  [ -f "$bin" ] && [ -x "$bin" ] || return 1
  coproc QTEST_PROBE { exec timeout -k 5 60 "$bin" -machine none -accel qtest -display none -nodefaults \
    -qtest stdio -qtest-log /dev/null 2>/dev/null; }
  pid=$QTEST_PROBE_PID; out=${QTEST_PROBE[0]}; in=${QTEST_PROBE[1]}
  printf 'clock_step 7\n' >&"$in" 2>/dev/null || true
  read -r -t 30 line <&"$out" || true
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  [ "$line" = "OK 7" ]
}

installed_source_version() { # prints the source version of the installed qemu-system-x86, or nothing
  local st
  st="$(dpkg-query -W -f='${db:Status-Status} ${source:Version}' qemu-system-x86 2>/dev/null || true)"
  case "$st" in installed\ ?*) printf '%s' "${st#installed }" ;; esac
}

SUDO=()
need_root() {
  if [ "$(id -u)" -eq 0 ]; then return 0; fi
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO=(sudo -n); return 0; fi
  die "building needs root (apt-get install/update, a deb-src entry): run as root or with password-less sudo"
}
apt_get() { run_logged "${SUDO[@]}" apt-get "${APT_OPTS[@]}" "$@"; }

pkg_installed() { [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = installed ]; }

for tool in dpkg-query apt-get apt-cache flock timeout; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found: this script needs a Debian (bookworm) system"
done

# ---- 1. the version key (installing qemu-system-x86 if missing) and the fast path -------------
mkdir -p "$CACHE_ROOT"
LOG="$CACHE_ROOT/build.log"   # until the version is known
version="$(installed_source_version)"
if [ -z "$version" ]; then
  need_root
  : >"$LOG"
  log "qemu-system-x86 is not installed: installing it (runtime data files, SeaBIOS)"
  apt_get update
  apt_get install --no-install-recommends qemu-system-x86 seabios
  version="$(installed_source_version)"
  [ -n "$version" ] || die "qemu-system-x86 still not installed after apt-get install"
fi
vdir="$CACHE_ROOT/${version#*:}"
BIN="$vdir/qemu-system-x86_64"
if has_qtest "$BIN"; then
  printf '%s\n' "$BIN" >&3
  exit 0
fi

# ---- serialize builds; another process may have finished one while we waited ----------------
exec 9>"$CACHE_ROOT/.lock"
if ! flock -n 9; then
  log "another build holds $CACHE_ROOT/.lock: waiting for it"
  flock 9
fi
if has_qtest "$BIN"; then
  printf '%s\n' "$BIN" >&3
  exit 0
fi

need_root
mkdir -p "$vdir"
LOG="$vdir/build.log"
: >"$LOG"
start=$SECONDS
log "building qemu-system-x86_64 with the qtest accelerator from Debian source qemu $version (log: $LOG)"

# ---- 2. deb-src entry ----------------------------------------------------------------------
codename="$(. /etc/os-release && printf '%s' "${VERSION_CODENAME:-}")"
[ -n "$codename" ] || codename=bookworm
if apt-get indextargets --format '$(RELEASE)' 'Identifier: Sources' 2>/dev/null | grep -q "^${codename}"; then
  log "a deb-src entry for $codename already exists"
elif [ -e "$DEB_SRC_FILE" ]; then
  log "using existing $DEB_SRC_FILE"
else
  tmp="$(mktemp)"
  # Copy every enabled deb822 stanza whose Suites name $codename (main, -updates, -security) with
  # Types: deb-src; then the one-line format's `deb` lines for $codename.
  shopt -s nullglob
  for f in /etc/apt/sources.list.d/*.sources; do
    awk -v cn="$codename" '
      function flush() {
        if (buf != "" && suites ~ ("(^|[ \t])" cn "([- \t]|$)") && types ~ /(^|[ \t])deb([ \t]|$)/ && enabled !~ /^[ \t]*no/) {
          print buf; print ""
        }
        buf = ""; suites = ""; types = ""; enabled = ""
      }
      /^[ \t]*$/ { flush(); next }
      /^#/ { next }
      tolower($1) == "types:" { types = $0; buf = buf (buf == "" ? "" : "\n") "Types: deb-src"; next }
      { buf = buf (buf == "" ? "" : "\n") $0 }
      tolower($1) == "suites:" { suites = $0 }
      tolower($1) == "enabled:" { enabled = substr($0, index($0, ":") + 1) }
      END { flush() }
    ' "$f" >>"$tmp"
  done
  shopt -u nullglob
  if [ ! -s "$tmp" ]; then
    # One-line format: turn each enabled `deb URI codename[-x] comps` into a deb822 stanza.
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
      [ -f "$f" ] || continue
      awk -v cn="$codename" '
        $1 == "deb" {
          i = 2; opts = ""
          if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) { opts = opts " " $i; i++ } opts = opts " " $i; i++ }
          uri = $i; suite = $(i + 1); comps = ""
          for (j = i + 2; j <= NF; j++) comps = comps (comps == "" ? "" : " ") $j
          if (suite !~ ("^" cn "([-/]|$)")) next
          signed = ""
          if (match(opts, /signed-by=[^] ]+/)) signed = substr(opts, RSTART + 10, RLENGTH - 10)
          print "Types: deb-src"; print "URIs: " uri; print "Suites: " suite; print "Components: " comps
          if (signed != "") print "Signed-By: " signed
          print ""
        }
      ' "$f" >>"$tmp"
    done
  fi
  if [ ! -s "$tmp" ]; then
    printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: %s %s-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$codename" "$codename" >"$tmp"
  fi
  { printf '# Added by hvsim scripts/build-qemu-qtest.sh: source packages (apt-get source qemu).\n'; cat "$tmp"; } \
    | "${SUDO[@]}" tee "$DEB_SRC_FILE" >/dev/null
  rm -f "$tmp"
  "${SUDO[@]}" chmod 644 "$DEB_SRC_FILE"
  log "added deb-src entries for $codename in $DEB_SRC_FILE"
fi
log "apt-get update"
apt_get update

# ---- 3. build dependencies --------------------------------------------------------------------
deps=(build-essential dpkg-dev xz-utils python3 ninja-build meson libglib2.0-dev libpixman-1-dev
      flex bison pkg-config libfdt-dev zlib1g-dev)
missing=()
for p in "${deps[@]}"; do pkg_installed "$p" || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing build dependencies: ${missing[*]}"
  apt_get install --no-install-recommends "${missing[@]}"
else
  log "build dependencies already installed"
fi

# ---- 4. source -------------------------------------------------------------------------------
BUILD_DIR="$vdir/build"
rm -rf -- "$BUILD_DIR"
mkdir -p "$BUILD_DIR"
log "apt-get source qemu=$version"
if ! (cd "$BUILD_DIR" && apt_get source --only-source "qemu=$version"); then
  # The archive keeps only its newest version: move the installed package to it (its data files
  # must match the binary) and build that.
  candidate="$(apt-cache policy qemu-system-x86 | awk '$1 == "Candidate:" { print $2 }')"
  installed="$(dpkg-query -W -f='${Version}' qemu-system-x86)"
  if [ -n "$candidate" ] && [ "$candidate" != "(none)" ] && [ "$candidate" != "$installed" ]; then
    log "source $version is no longer in the archive: upgrading qemu-system-x86 $installed -> $candidate"
    apt_get install --no-install-recommends qemu-system-x86
    version="$(installed_source_version)"
    old_vdir="$vdir"
    vdir="$CACHE_ROOT/${version#*:}"
    BIN="$vdir/qemu-system-x86_64"
    mkdir -p "$vdir"
    mv "$LOG" "$vdir/build.log"; LOG="$vdir/build.log"
    rm -rf -- "$BUILD_DIR" "$old_vdir"
    if has_qtest "$BIN"; then
      BUILD_DIR=""
      printf '%s\n' "$BIN" >&3
      exit 0
    fi
    BUILD_DIR="$vdir/build"
    mkdir -p "$BUILD_DIR"
    log "apt-get source qemu=$version"
    (cd "$BUILD_DIR" && apt_get source --only-source "qemu=$version") \
      || die "apt-get source qemu=$version failed (see $LOG)"
  else
    die "apt-get source qemu=$version failed and no other qemu-system-x86 version is available (see $LOG)"
  fi
fi
src=""
for d in "$BUILD_DIR"/qemu-*/; do [ -f "$d/configure" ] && src="${d%/}"; done
[ -n "$src" ] || die "no unpacked qemu source tree with a configure script under $BUILD_DIR"
log "source tree: $src"

# The dfsg tarball has no pc-bios/edk2-*.fd.bz2; meson unpacks them whenever bzip2 is found (even
# with --disable-install-blobs), which fails at configure time. Tie the unpacking to install_blobs.
edk2_line="    unpack_edk2_blobs = bzip2.found()"
if grep -qxF "$edk2_line" "$src/meson.build"; then
  sed -i "s/^    unpack_edk2_blobs = bzip2.found()\$/    unpack_edk2_blobs = bzip2.found() and get_option('install_blobs')/" "$src/meson.build"
  grep -qF "unpack_edk2_blobs = bzip2.found() and get_option('install_blobs')" "$src/meson.build" \
    || die "could not patch meson.build (unpack_edk2_blobs)"
  log "patched meson.build: EDK2 blobs are unpacked only with install_blobs"
elif grep -q 'unpack_edk2_blobs' "$src/meson.build"; then
  die "meson.build sets unpack_edk2_blobs differently than expected; check it before building this version"
fi

# ---- 5. configure and build ------------------------------------------------------------------
obj="$src/build-qtest"
mkdir -p "$obj"
log "configure (x86_64-softmmu, no default features)"
(cd "$obj" && run_logged ../configure \
  --target-list=x86_64-softmmu --without-default-features --enable-fdt=system \
  --disable-docs --disable-werror --disable-tools --disable-user --disable-install-blobs) \
  || die "configure failed (see $LOG)"
if grep -q 'edk2-.*\.fd' "$obj/build.ninja"; then
  die "the build would unpack EDK2 blobs the dfsg tarball lacks (unpack_edk2_blobs is true)"
fi
log "ninja -j$JOBS qemu-system-x86_64 (a few minutes)"
run_logged ninja -C "$obj" -j"$JOBS" qemu-system-x86_64 || die "ninja failed (see $LOG)"
built="$obj/qemu-system-x86_64"
[ -x "$built" ] || die "ninja finished but $built is missing"
has_qtest "$built" || die "the built binary does not answer the qtest protocol under -accel qtest"

# ---- 6. install into the cache atomically ----------------------------------------------------
cp "$built" "$BIN.tmp.$$"
chmod 755 "$BIN.tmp.$$"
mv -f "$BIN.tmp.$$" "$BIN"
{
  printf 'debian-source: qemu %s\n' "$version"
  printf 'built: %s in %ss on %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$((SECONDS - start))" "$(uname -m)"
  printf 'configure: --target-list=x86_64-softmmu --without-default-features --enable-fdt=system --disable-docs --disable-werror --disable-tools --disable-user --disable-install-blobs\n'
  printf 'run with: -L /usr/share/qemu -bios /usr/share/seabios/bios-256k.bin\n'
} >"$vdir/BUILD-INFO"
log "built in $((SECONDS - start))s; cached at $BIN"
cleanup
BUILD_DIR=""
printf '%s\n' "$BIN" >&3
