#!/usr/bin/env bash
# RP2040 firmware: fetches the thumbv6m compiler, installs the emulator's npm
# packages and builds the firmware ELFs that crates/pico's tests run.
#
# The compiler is Debian's rustc-web 1.96 with its standard-library source,
# downloaded with `apt-get download` and unpacked with `dpkg -x` into
# build/toolchain/rustc-web (never installed: the packages conflict with
# rustup). rustup's cargo drives it with -Zbuild-std=core and links with
# rustup's rust-lld. See firmware/pico/README.md.
#
# Outputs (stable paths the host crate looks for):
#   build/toolchain/rustc-web/usr/bin/rustc
#   firmware/pico/emulator/node_modules/
#   build/firmware/perfkit-pico-fw.elf       (instrumented)
#   build/firmware/perfkit-pico-fw-bare.elf  (no perfkit; see firmware/pico/README.md)
#
# Idempotent: each step is skipped when its output is already there and up to
# date; the firmware build is an incremental cargo build (about 1 s).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
TC="$ROOT/build/toolchain/rustc-web"
SYSROOT_BIN="$TC/usr/bin/rustc"

# --- 1. compiler ------------------------------------------------------------
if [ ! -x "$SYSROOT_BIN" ] || [ ! -e "$TC/.complete" ]; then
  export DEBIAN_FRONTEND=noninteractive
  # Stale package lists may still offer an older rustc-web (or a removed 1.96
  # build): refresh them when the candidate is not a 1.96.
  cand="$(apt-cache policy rustc-web 2>/dev/null | awk '/Candidate:/{print $2}')"
  case "$cand" in
    1.96.*) ;;
    *) apt-get update -qq ;;
  esac
  # The LLVM library's version changes with security updates: ask apt.
  llvm="$(apt-cache depends libstd-rust-web-1.96 | awk '/Depends: libllvm/{print $2; exit}')"
  if [ -z "$llvm" ]; then
    echo "40-firmware: cannot find the libllvm that libstd-rust-web-1.96 depends on" >&2
    exit 1
  fi
  # System libraries LLVM links against (not rust packages; no conflict).
  need=()
  for dep in $(apt-cache depends "$llvm" | awk '/Depends:/{print $2}'); do
    dpkg -s "$dep" >/dev/null 2>&1 || need+=("$dep")
  done
  if [ ${#need[@]} -gt 0 ]; then
    apt-get install -y -qq --no-install-recommends "${need[@]}"
  fi
  dl="$ROOT/build/toolchain/debs"
  rm -rf "$dl" "$TC"
  mkdir -p "$dl" "$TC"
  (cd "$dl" && apt-get -o APT::Sandbox::User=root download -qq rustc-web libstd-rust-web-1.96 libstd-rust-web-dev rust-web-src "$llvm")
  for deb in "$dl"/*.deb; do
    dpkg -x "$deb" "$TC"
  done
  rm -rf "$dl"
  touch "$TC/.complete"
fi

# --- 2. emulator packages ----------------------------------------------------
EMU="$ROOT/firmware/pico/emulator"
# rp2040js needs Node >= 18 (Debian 12's nodejs is 18).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends nodejs npm
fi
if [ ! -e "$EMU/node_modules/.package-lock.json" ] \
   || [ "$EMU/package-lock.json" -nt "$EMU/node_modules/.package-lock.json" ]; then
  (cd "$EMU" && npm ci --no-audit --no-fund --loglevel=error)
fi

# --- 3. firmware ------------------------------------------------------------
bash "$ROOT/firmware/pico/build.sh"
