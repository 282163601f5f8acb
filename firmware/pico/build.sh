#!/usr/bin/env bash
# Builds the firmware ELF with Debian's rustc-web 1.96 unpacked by
# scripts/setup.d/40-firmware.sh, and copies it to build/firmware/.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
TC="$ROOT/build/toolchain/rustc-web/usr"
if [ ! -x "$TC/bin/rustc" ]; then
  echo "firmware/pico/build.sh: no compiler at $TC/bin/rustc; run scripts/setup.d/40-firmware.sh" >&2
  exit 1
fi
HOST_TRIPLE=x86_64-unknown-linux-gnu
LLD="$(rustc --print sysroot)/lib/rustlib/$HOST_TRIPLE/bin/rust-lld"
if [ ! -x "$LLD" ]; then
  LLD="$(command -v ld.lld || true)"
fi
if [ -z "$LLD" ]; then
  echo "firmware/pico/build.sh: no rust-lld in the rustup toolchain and no ld.lld" >&2
  exit 1
fi
export RUSTC="$TC/bin/rustc"
export RUSTDOC="$TC/bin/rustdoc"
export LD_LIBRARY_PATH="$TC/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_THUMBV6M_NONE_EABI_LINKER="$LLD"
# The workspace's RUSTFLAGS (if any) are for the host; the firmware's are in .cargo/config.toml.
unset RUSTFLAGS CARGO_BUILD_TARGET CARGO_TARGET_DIR
cd "$HERE"
locked=()
[ -e Cargo.lock ] && [ -z "${PERFKIT_FW_UNLOCKED:-}" ] && locked=(--locked)
mkdir -p "$ROOT/build/firmware"
# Two variants: instrumented (perfkit at every stage) and bare (no perfkit;
# whole messages timed with raw cycle reads). They share the target dir, so
# only perfkit, the stack and the firmware itself are built twice.
build() { # name, extra cargo args...
  local name="$1"
  shift
  cargo build --release "${locked[@]}" "$@"
  cp target/thumbv6m-none-eabi/release/perfkit-pico-fw "$ROOT/build/firmware/$name.tmp"
  mv "$ROOT/build/firmware/$name.tmp" "$ROOT/build/firmware/$name"
  echo "firmware: $ROOT/build/firmware/$name"
}
build perfkit-pico-fw.elf "$@"
build perfkit-pico-fw-bare.elf --features bare "$@"
