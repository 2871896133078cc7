# shellcheck shell=bash disable=SC2034
# Shared by scripts/setup-cross, build-arm, test-arm and dist: where the cross toolchain lives
# and how to call it. Source it; it changes nothing on the machine by itself.
#
# Everything downloaded is cached under $RTC_CACHE (default ~/.cache/rtcollector-test):
#   cross/venv        Python venv with ziglang + cargo-zigbuild (from PyPI)
#   cross/zig-cache   zig's global cache (musl/libc++ builds per target; slow the first time)
#   cross/xdg-cache   cargo-zigbuild's wrapper scripts

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
RTC_CACHE="${RTC_CACHE:-$HOME/.cache/rtcollector-test}"
CROSS_HOME="$RTC_CACHE/cross"
CROSS_VENV="$CROSS_HOME/venv"
# Cargo's target directory (CARGO_TARGET_DIR is honoured, relative to the repository root).
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
[[ $TARGET_DIR == /* ]] || TARGET_DIR="$ROOT/$TARGET_DIR"

# Pinned so that CI and developers build with the same zig; override to try newer ones.
ZIGLANG_VERSION="${ZIGLANG_VERSION:-0.17.1}"
CARGO_ZIGBUILD_VERSION="${CARGO_ZIGBUILD_VERSION:-0.24.0}"

# The release targets, in the order scripts build them.
ALL_TARGETS=(aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf x86_64-unknown-linux-musl)
# Targets whose std rustup ships here; armv7's std download is refused on this machine kind,
# so armv7 builds std from source (-Zbuild-std, needs the rust-src component) unless
# `rustup target add armv7-unknown-linux-musleabihf` worked.
RUSTUP_TARGETS=(aarch64-unknown-linux-musl x86_64-unknown-linux-musl)
ARMV7=armv7-unknown-linux-musleabihf

# Size budget in bytes for the stripped release binary, per feature set, on the ARM targets
# (the boards with little flash). x86_64 code is ~15% larger and is reported, not budgeted.
BUDGET_DEFAULT="${BUDGET_DEFAULT:-4000000}"
BUDGET_MINIMAL="${BUDGET_MINIMAL:-1200000}"
# budget_for TRIPLE SET -> bytes, or nothing when that target has no budget
budget_for() {
    case "$1" in
        aarch64-*|armv7-*) if [[ $2 == minimal ]]; then echo "$BUDGET_MINIMAL"; else echo "$BUDGET_DEFAULT"; fi ;;
        *) ;;
    esac
}

if [[ -t 2 ]]; then _B=$'\e[1m' _R=$'\e[31m' _G=$'\e[32m' _Y=$'\e[33m' _N=$'\e[0m'; else _B='' _R='' _G='' _Y='' _N=''; fi
say()  { printf '%s==>%s %s\n' "$_B" "$_N" "$*" >&2; }
ok()   { printf '%s ok%s %s\n' "$_G" "$_N" "$*" >&2; }
warn() { printf '%swarning:%s %s\n' "$_Y" "$_N" "$*" >&2; }
die()  { printf '%serror:%s %s\n' "$_R" "$_N" "$*" >&2; exit 1; }

# Puts the venv's zig and cargo-zigbuild on PATH and points their caches into $CROSS_HOME.
cross_env() {
    export PATH="$CROSS_VENV/bin:$PATH"
    export ZIG_GLOBAL_CACHE_DIR="$CROSS_HOME/zig-cache"
    export ZIG_LOCAL_CACHE_DIR="$CROSS_HOME/zig-cache"
    # cargo-zigbuild keeps its zig wrapper scripts under $XDG_CACHE_HOME/cargo-zigbuild.
    export XDG_CACHE_HOME="$CROSS_HOME/xdg-cache"
    cd "$ROOT" || return 1
}

# Fails with a pointer to setup-cross when a piece is missing.
require_cross() {
    cross_env
    local missing=()
    command -v cargo-zigbuild >/dev/null 2>&1 || missing+=("cargo-zigbuild (venv $CROSS_VENV)")
    "$CROSS_VENV/bin/python" -c 'import ziglang' 2>/dev/null || missing+=("ziglang (venv $CROSS_VENV)")
    local installed
    installed="$(rustup target list --installed)"
    local t
    for t in "${RUSTUP_TARGETS[@]}"; do
        grep -qx "$t" <<<"$installed" || missing+=("rustup target $t")
    done
    rustup component list --installed | grep -q '^rust-src' || missing+=("rustup component rust-src (for -Zbuild-std)")
    if ((${#missing[@]})); then
        die "cross toolchain incomplete: ${missing[*]}. Run scripts/setup-cross first."
    fi
}

require_qemu() {
    local q
    for q in qemu-aarch64-static qemu-arm-static; do
        command -v "$q" >/dev/null 2>&1 || die "$q not found: run scripts/setup-cross (installs qemu-user-static)"
    done
}

# True when armv7's std must be built from source.
armv7_needs_build_std() {
    ! rustup target list --installed | grep -qx "$ARMV7"
}

# cargo-zigbuild with the right extra flags for target $1; the rest are cargo arguments.
#   zigbuild TARGET build --release ...   /   zigbuild TARGET test --lib ...
zigbuild() {
    local target="$1" sub="$2"
    shift 2
    local cmd=(cargo-zigbuild "$sub" --target "$target")
    if [[ "$target" == "$ARMV7" ]] && armv7_needs_build_std; then
        # Release builds abort on panic (Cargo.toml), so they need panic_abort; tests unwind.
        local std=-Zbuild-std
        [[ "$sub" == build ]] && std=-Zbuild-std=std,panic_abort
        RUSTC_BOOTSTRAP=1 RUSTDOCFLAGS="${RUSTDOCFLAGS:-} -C link-self-contained=no" \
            "${cmd[@]}" "$std" "$@"
    elif [[ "$target" == aarch64-* && "$sub" == build ]]; then
        # The shipped aarch64 binary builds std too, with the release profile (opt-level z,
        # LTO across std): 70 KB less than rustup's prebuilt std, which keeps the minimal
        # build within its 1.2 MB budget. Tests use the prebuilt std (faster to build).
        RUSTC_BOOTSTRAP=1 "${cmd[@]}" -Zbuild-std=std,panic_abort "$@"
    else
        "${cmd[@]}" "$@"
    fi
}

# The package version from Cargo.toml (first `version =` line, which is [package]'s).
pkg_version() {
    sed -n 's/^version *= *"\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -n1
}

# Where build-arm keeps each target × feature-set binary (cargo overwrites its own copy).
out_bin() { echo "$TARGET_DIR/cross-out/$1/$2/rtcollector"; }

# human-readable size: 1234567 -> 1.23 MB
human() { awk -v b="$1" 'BEGIN { if (b >= 1e6) printf "%.2f MB", b/1e6; else printf "%.0f KB", b/1e3 }'; }
