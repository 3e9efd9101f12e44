#!/usr/bin/env bash
# Fetches the Python reference (yoton inside the Debian package pyzo 4.12.3) for the interop
# tests, without installing pyzo or any of its GUI dependencies: the .deb is downloaded and
# unpacked into a directory of its own. Prints the directory to put on PYTHONPATH
# (.../usr/share/pyzo/pyzo, where `import yoton` works) and nothing else on stdout.
#
#   scripts/fetch-reference.sh [DIR]     DIR defaults to $YT_PYZO_REF_DIR, else build/pyzo-ref
#
# Idempotent: once unpacked it only prints the path. Nothing of the reference is committed;
# `rm -rf build` removes it. Works as root on a fresh Debian machine (it installs python3, which
# the peers need, and refreshes the package lists when the download fails).
set -euo pipefail
cd "$(dirname "$0")/.."
want_version="4.12.3"
dest="${1:-${YT_PYZO_REF_DIR:-build/pyzo-ref}}"
mkdir -p "$dest"
dest="$(cd "$dest" && pwd)"
pydir="$dest/x/usr/share/pyzo/pyzo"

. scripts/deps.sh
yt_need_pkgs python3 >&2

if [ ! -f "$pydir/yoton/__init__.py" ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  apt_opts=()
  # As root apt downloads as the _apt user, which cannot write to most directories: it falls
  # back to root with a warning. Ask for that directly.
  [ "$(id -u)" -eq 0 ] && apt_opts=(-o APT::Sandbox::User=root)
  rm -f "$dest"/pyzo_*.deb
  if ! (cd "$dest" && apt-get "${apt_opts[@]}" download pyzo) >&2; then
    echo "== package lists look stale; running apt-get update" >&2
    $sudo apt-get update -qq >&2
    (cd "$dest" && apt-get "${apt_opts[@]}" download pyzo) >&2
  fi
  debs=("$dest"/pyzo_*.deb)
  deb="${debs[0]}"
  version="$(dpkg-deb -f "$deb" Version)"
  case "$version" in
    "$want_version"*) ;;
    *) echo "warning: fetched pyzo $version; the interop tests were written against $want_version" >&2 ;;
  esac
  rm -rf "$dest/x.tmp"
  dpkg-deb -x "$deb" "$dest/x.tmp"
  rm -rf "$dest/x"
  mv "$dest/x.tmp" "$dest/x"
  rm -f "$deb"
fi

if [ ! -f "$pydir/yoton/__init__.py" ]; then
  echo "error: $pydir/yoton not found after unpacking pyzo" >&2
  exit 1
fi
echo "$pydir"
