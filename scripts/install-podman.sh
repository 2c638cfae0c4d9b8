#!/usr/bin/env bash
# The container engine part of `make install`: nothing when a Docker engine answers; otherwise
# podman + runc from Debian (scripts/apt-install.sh; needs root or sudo) with the settings that
# work on hosts like CI's, kept in /etc/containers/containers.conf.d/50-aitbc.conf:
#   - runtime runc: crun fails on the cgroup layout of such hosts (issue 11, found by trying);
#   - cgroup manager cgroupfs: there is no systemd to ask for cgroups;
#   - no default ulimits: podman raises RLIMIT_NOFILE for every container by default, which the
#     host does not permit ("error setting rlimit type 7: operation not permitted").
# A drop-in, so an administrator's containers.conf is left alone; plain `podman` and
# `podman system service` (the Docker Engine API that orchestrator/external/container_engine.py uses) both
# read it. Idempotent.
set -uo pipefail

if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  exit 0  # a real Docker engine: leave the machine as it is
fi
here="$(cd "$(dirname "$0")" && pwd)"
"$here/apt-install.sh" podman=podman runc=runc || exit 1

dropin_dir=/etc/containers/containers.conf.d
dropin="$dropin_dir/50-aitbc.conf"
settings='# Written by AITBC Testnet'"'"'s `make install` (scripts/install-podman.sh): settings that work on
# hosts without systemd and with a hybrid cgroup v1 layout. Delete this file to undo.
[containers]
default_ulimits = []

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"'
if [ "$(cat "$dropin" 2>/dev/null)" != "$settings" ]; then
  if [ "$(id -u)" = 0 ]; then sudo_cmd=(); else sudo_cmd=(sudo); fi
  { "${sudo_cmd[@]}" mkdir -p "$dropin_dir" \
    && printf '%s\n' "$settings" | "${sudo_cmd[@]}" tee "$dropin" >/dev/null; } || exit 1
  echo "install-podman: wrote $dropin (runtime runc, cgroupfs, no default ulimits)"
fi
if ! out="$(podman info 2>&1 >/dev/null)"; then
  echo "install-podman: podman is installed but 'podman info' fails: $(printf '%s\n' "$out" | tail -n 1)" >&2
  exit 1
fi
