#!/usr/bin/env bash
# Make the local base image of the node image: Debian 12 (bookworm, minbase) with Python 3.11,
# venv and ca-certificates, for machines that reach no image registry (`make base-image`).
#
#   scripts/base-image.sh ENGINE TAG        e.g. scripts/base-image.sh podman localhost/aitbc-base:bookworm
#
# Skipped when ENGINE already has TAG. mmdebstrap (installed through scripts/apt-install.sh when
# missing; needs root) writes the root file system as a tar stream straight into `ENGINE import`:
# about 30 s here, where debootstrap + tar took about 80 s. Documentation, manual pages and
# locales are left out (copyright files stay). Debian packages come from the machine's Debian
# mirror as mmdebstrap chooses it; set AITBC_BASE_MIRROR to a mirror URL to pick another.
set -euo pipefail

engine="${1:?usage: scripts/base-image.sh ENGINE TAG}"
tag="${2:?usage: scripts/base-image.sh ENGINE TAG}"
here="$(cd "$(dirname "$0")" && pwd)"

if "$engine" image inspect "$tag" >/dev/null 2>&1; then
  echo "base-image: $tag exists ($engine), skipping"
  exit 0
fi
"$here/apt-install.sh" mmdebstrap=mmdebstrap || {
  echo "base-image: making $tag needs Debian's mmdebstrap (root or sudo to install it); with an" \
       "image registry, build on the official image instead: make image BASE_IMAGE=python:3.11-slim" >&2
  exit 1
}

mirror=()
[ -n "${AITBC_BASE_MIRROR:-}" ] && mirror=("$AITBC_BASE_MIRROR")
echo "base-image: building $tag with mmdebstrap (Debian 12 minbase + python3 python3-venv ca-certificates)"
started=$SECONDS
mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,ca-certificates \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-include=/usr/share/locale/locale.alias' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --format=tar bookworm - "${mirror[@]}" \
  | "$engine" import --change 'CMD ["python3"]' - "$tag" >/dev/null
"$engine" run --rm --network none "$tag" python3 -c 'import ssl, sys, venv; assert sys.version_info[:2] == (3, 11), sys.version' \
  || { echo "base-image: $tag was built but python3.11 with venv and ssl does not run in it" >&2; exit 1; }
echo "base-image: $tag built in $((SECONDS - started)) s"
