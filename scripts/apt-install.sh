#!/usr/bin/env bash
# Install Debian packages for `make install`, robustly, and check that the commands they provide
# are really there afterwards.
#
#   scripts/apt-install.sh COMMAND=PACKAGE [COMMAND=PACKAGE ...]
#
# Only the packages whose COMMAND is missing are installed. On a fresh machine another apt (the
# image's first-boot upgrade, unattended-upgrades) often holds the dpkg lock: wait for it (up to
# APT_LOCK_WAIT_S seconds, default 600) instead of failing, retry a failed `apt-get update` or
# install a few times, and exit non-zero with a message naming the package when a command is
# still missing. Needs root, or sudo.
set -uo pipefail

wait_s="${APT_LOCK_WAIT_S:-600}"
missing=()
for pair in "$@"; do
  command_name="${pair%%=*}"
  package="${pair#*=}"
  command -v "$command_name" >/dev/null 2>&1 || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = 0 ]; then
  sudo_cmd=()
elif command -v sudo >/dev/null 2>&1; then
  sudo_cmd=(sudo)
else
  echo "apt-install: ${missing[*]} must be installed and this is not root (no sudo either):" \
       "install them by hand (apt-get install -y ${missing[*]})" >&2
  exit 1
fi

apt_get() {
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get -q -y \
    -o DPkg::Lock::Timeout="$wait_s" -o Acquire::Retries=3 "$@"
}

echo "apt-install: installing ${missing[*]} (waiting up to ${wait_s}s for another apt to finish)"
ok=0
for attempt in 1 2 3; do
  if apt_get update >/tmp/apt-install-update.log 2>&1 \
     && apt_get install --no-install-recommends "${missing[@]}" >/tmp/apt-install.log 2>&1; then
    ok=1
    break
  fi
  echo "apt-install: attempt $attempt failed:" >&2
  tail -n 5 /tmp/apt-install-update.log /tmp/apt-install.log >&2 2>/dev/null
  sleep $((attempt * 10))
done

status=0
for pair in "$@"; do
  command_name="${pair%%=*}"
  package="${pair#*=}"
  if ! command -v "$command_name" >/dev/null 2>&1; then
    echo "apt-install: '$command_name' is still missing after installing Debian's $package" \
         "(apt logs: /tmp/apt-install-update.log, /tmp/apt-install.log)" >&2
    status=1
  fi
done
[ "$ok" = 1 ] || status=1
exit "$status"
