#!/usr/bin/env bash
# Provision the datasets fogsim's scenarios and tests use, without committing any.
#  - Fashion-MNIST: the Debian package dataset-fashion-mnist puts the IDX files
#    at /usr/share/datasets/fashion-mnist (one of the places fogsim looks).
#  - CIFAR-10 (JPEG zips): copied into the user cache from the shared folder
#    beside the checkout, when it is there ($FOGSIM_SHARED, default ../shared).
set -euo pipefail

FMNIST_DIR=/usr/share/datasets/fashion-mnist
if [ -f "$FMNIST_DIR/t10k-images-idx3-ubyte.gz" ]; then
  echo "fashion-mnist: found at $FMNIST_DIR"
elif command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "fashion-mnist: installing the Debian package dataset-fashion-mnist"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null
else
  echo "fashion-mnist: not found. Install it with" >&2
  echo "  sudo apt-get install dataset-fashion-mnist" >&2
  echo "or put the four IDX files in \$FOGSIM_DATA_DIR/fashion-mnist/." >&2
  exit 1
fi

CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/fogsim/datasets"
SHARED="${FOGSIM_SHARED:-../shared}"
if [ -f "$SHARED/datasets/cifar10-jpeg/test.zip" ]; then
  # Copied, not linked: a link would point into this checkout's ../shared,
  # which may be a temporary clone's and vanish, leaving the cache broken.
  mkdir -p "$CACHE/cifar10"
  copied=0
  for split in train test; do
    src="$SHARED/datasets/cifar10-jpeg/$split.zip"
    dst="$CACHE/cifar10/$split.zip"
    if [ -f "$dst" ] && [ ! -L "$dst" ] && cmp -s "$src" "$dst"; then
      continue
    fi
    cp "$src" "$dst.partial"
    mv -f "$dst.partial" "$dst"
    copied=$((copied + 1))
  done
  if [ "$copied" -gt 0 ]; then
    echo "cifar10: copied into $CACHE/cifar10 from $SHARED/datasets/cifar10-jpeg"
  else
    echo "cifar10: up to date in $CACHE/cifar10"
  fi
elif [ -f "$CACHE/cifar10/test.zip" ]; then
  echo "cifar10: found in $CACHE/cifar10"
else
  echo "cifar10: not provisioned (no $SHARED/datasets/cifar10-jpeg); CIFAR-10 scenarios will say how to get it."
fi
