#!/usr/bin/env bash
# Download the six KTH action archives into DIR/raw/<class>/ (the .avi files).
# Usage: bash svgvp/data/download_kth.sh DIR
# Each class is unpacked into a temporary folder and moved into place only when complete.
set -euo pipefail
if [ $# -ne 1 ]; then
  echo "usage: bash svgvp/data/download_kth.sh DIR" >&2
  exit 2
fi
DIR=$1
BASE=${KTH_URL:-http://www.csc.kth.se/cvap/actions}
mkdir -p "$DIR/raw"
for c in boxing handclapping handwaving jogging running walking; do
  if [ -d "$DIR/raw/$c" ]; then
    echo "$DIR/raw/$c exists; skipping"
    continue
  fi
  TMP=$(mktemp -d "$DIR/raw/.download-$c-XXXXXX")
  if ! curl -fL --retry 3 -o "$TMP/$c.zip" "$BASE/$c.zip"; then
    rm -rf "$TMP"
    echo "error: download of $BASE/$c.zip failed; $DIR/raw/$c was not created" >&2
    exit 1
  fi
  mkdir "$TMP/$c"
  if ! python -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" "$TMP/$c.zip" "$TMP/$c"; then
    rm -rf "$TMP"
    echo "error: $BASE/$c.zip is not a valid zip archive" >&2
    exit 1
  fi
  mv "$TMP/$c" "$DIR/raw/$c"
  rm -rf "$TMP"
done
echo "KTH videos in $DIR/raw; next: svg-convert-kth --data_dir $DIR --image_size 64"
