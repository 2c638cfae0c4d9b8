#!/usr/bin/env bash
# Copy the Grafana dashboards (dashboards/*.json, the source of truth) into the chart, which
# ships them as ConfigMaps. A symlink would not survive `helm package`. Called by `make chart`;
# tests/chart checks that the copies equal the sources.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$here/../dashboards"
dst="$here/aitbc-testnet/dashboards"
shopt -s nullglob
sources=("$src"/*.json)
if [ ${#sources[@]} -eq 0 ]; then
  echo "sync-dashboards: no dashboards in $src" >&2
  exit 1
fi
mkdir -p "$dst"
# Drop copies whose source is gone, then copy every source.
for copy in "$dst"/*.json; do
  [ -e "$src/$(basename "$copy")" ] || rm -f "$copy"
done
cp "${sources[@]}" "$dst/"
echo "sync-dashboards: ${#sources[@]} dashboard(s) -> ${dst#"$here/"}"
