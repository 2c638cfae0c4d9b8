#!/usr/bin/env bash
# The Debian packages of `make install`, in one apt run (one `apt-get update`, one install;
# scripts/apt-install.sh waits for the dpkg lock, retries and checks the commands afterwards):
#   - prometheus (and promtool): the local platform runs a real Prometheus server;
#   - podman and runc, unless a Docker engine answers (scripts/install-podman.sh configures them);
#   - mmdebstrap, when BASE_TAG is given and no answering engine has that image yet
#     (scripts/base-image.sh makes the local base with it).
#
#   scripts/system-packages.sh [BASE_TAG]
#
# Only missing commands are installed: on a prepared machine this is a few checks. Debian starts
# the prometheus package's service: a freshly installed one is stopped (the platform starts its
# own servers). The later steps (install-podman.sh, base-image.sh) call apt-install.sh for their
# own packages too, which is then a no-op: each of them still works alone.
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
base_tag="${1:-}"

pairs=(prometheus=prometheus promtool=prometheus)
if ! { command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; }; then
  pairs+=(podman=podman runc=runc)
fi
if [ -n "$base_tag" ]; then
  engine="$("$here/container-engine.sh" 2>/dev/null)" || engine=
  if [ -z "$engine" ] || ! "$engine" image inspect "$base_tag" >/dev/null 2>&1; then
    pairs+=(mmdebstrap=mmdebstrap)
  fi
fi

command -v prometheus >/dev/null 2>&1 && had_prometheus=1 || had_prometheus=0
"$here/apt-install.sh" "${pairs[@]}" || exit 1

if [ "$had_prometheus" = 0 ]; then
  if [ "$(id -u)" = 0 ]; then sudo_cmd=(); else sudo_cmd=(sudo); fi
  "${sudo_cmd[@]}" systemctl disable --now prometheus >/dev/null 2>&1 || true
  "${sudo_cmd[@]}" pkill -x prometheus >/dev/null 2>&1 || true
fi
