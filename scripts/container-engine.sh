#!/usr/bin/env bash
# Print the container engine CLI that works on this machine: `docker` when its engine answers
# (`docker info`), else `podman` when it answers (`podman info`). Exit 1 with a message saying
# what failed and what to do when neither does. Used by `make image` and `make base-image`.
set -uo pipefail

failures=()
for cli in docker podman; do
  if ! command -v "$cli" >/dev/null 2>&1; then
    failures+=("$cli: not installed")
    continue
  fi
  if out="$("$cli" info 2>&1 >/dev/null)"; then
    echo "$cli"
    exit 0
  fi
  last="$(printf '%s\n' "$out" | grep -v '^ *$' | tail -n 1)"
  failures+=("$cli info failed: ${last:-no output}")
done
{
  echo "no container engine answers on this machine:"
  printf '  %s\n' "${failures[@]}"
  echo "start Docker, or run 'make install' as root (installs and configures podman)"
} >&2
exit 1
