# shellcheck shell=bash
# Shared by the setup scripts: the one way they get root, for apt-get and for the system
# services and files a package brings. As root a command runs as it is; otherwise through sudo
# (which asks for a password if it must); without sudo the script fails and says what needs
# root. Everything else the scripts do (downloads, venvs, caches) runs as the calling user.

# as_root COMMAND...: runs COMMAND as root.
as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        echo "${0##*/}: needs root for \`$*\`: run it as root, or install sudo" >&2
        return 1
    fi
}

# apt_install PACKAGE...: apt-get update, then a non-interactive install without recommends;
# apt-get's output goes to stderr (the setup scripts keep stdout for what they print).
apt_install() {
    if ! command -v apt-get >/dev/null; then
        echo "${0##*/}: $* missing and no apt-get here: install them with your package manager" >&2
        return 1
    fi
    # sudo drops DEBIAN_FRONTEND from the environment: pass it through env.
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 &&
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}
