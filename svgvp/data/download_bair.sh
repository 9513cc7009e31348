#!/usr/bin/env bash
# Download and unpack the BAIR robot pushing dataset into DIR (DIR/softmotion30_44k/{train,test}).
# Usage: bash svgvp/data/download_bair.sh DIR
# The archive is unpacked into a temporary folder and moved into place only when complete.
set -euo pipefail
if [ $# -ne 1 ]; then
  echo "usage: bash svgvp/data/download_bair.sh DIR" >&2
  exit 2
fi
DIR=$1
URL=${BAIR_URL:-http://rail.eecs.berkeley.edu/datasets/bair_robot_pushing_dataset_v0.tar}
mkdir -p "$DIR"
if [ -d "$DIR/softmotion30_44k" ]; then
  echo "$DIR/softmotion30_44k already exists; nothing to do"
  exit 0
fi
TMP=$(mktemp -d "$DIR/.download-XXXXXX")
trap 'rm -rf "$TMP"' EXIT
if ! curl -fL --retry 3 -o "$TMP/bair.tar" "$URL"; then
  echo "error: download of $URL failed; nothing was unpacked" >&2
  exit 1
fi
if ! tar -xf "$TMP/bair.tar" -C "$TMP"; then
  echo "error: $URL is not a valid tar archive; nothing was unpacked" >&2
  exit 1
fi
mv "$TMP/softmotion30_44k" "$DIR/softmotion30_44k"
echo "BAIR data in $DIR/softmotion30_44k; next: svg-convert-bair --data_dir $DIR"
