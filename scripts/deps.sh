#!/usr/bin/env bash
# Installs the Debian packages the build and the tests need, only when something is missing.
# Sourced by the other scripts; works as root on a fresh Debian machine.
yt_need_pkgs() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq || true
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
}

YT_BUILD_PKGS=(build-essential cmake pkg-config zlib1g-dev libssl-dev libcunit1-dev libjansson-dev doxygen)
