#!/usr/bin/env bash
# deps.sh: installs what pgtimefs needs to build and test on Debian 12, when it is missing.
# Sourced by demo.sh and test.sh. Needs root (or sudo) only when something must be installed.
pgt_deps() {
	local pkgs=(build-essential cmake pkg-config libfuse3-dev fuse3 libssl-dev libzstd-dev
		libsqlite3-dev libpq-dev libcmocka-dev python3 postgresql-15)
	local missing=() p
	for p in "${pkgs[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "installing: ${missing[*]}" >&2
	local sudo=
	[ "$(id -u)" = 0 ] || sudo=sudo
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# pgt_build DIR [CMAKE ARGS...]: configures and builds into DIR
pgt_build() {
	local dir=$1
	shift
	cmake -S "$PGT_TOP" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPGTIMEFS_TESTS=ON "$@" >/dev/null
	cmake --build "$dir" -j "$(nproc)" >/dev/null
}
