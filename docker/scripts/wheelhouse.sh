#!/usr/bin/env bash
# Fill docker/wheelhouse with every wheel the image installs (docker/requirements.lock, torch,
# and the build backend of dendrite-lab itself), downloaded with this machine's pip and its
# configuration (its indexes and find-links), for `WHEEL_SOURCE=wheelhouse` builds that reach no
# network. Kept until the lock, TORCH_VERSION or this script changes (a stamp records them).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
DOCKER=$(dirname "$HERE")
OUT=${WHEELHOUSE:-$DOCKER/wheelhouse}
PIP=${PIP:-python3 -m pip}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
BUILD_BACKEND=(setuptools wheel)  # pyproject.toml's [build-system] requires

stamp=$( (cat "$DOCKER/requirements.lock" "$HERE/wheelhouse.sh"; echo "torch==$TORCH_VERSION") \
    | sha256sum | cut -c1-16)
if [ "${FORCE:-0}" != 1 ] && [ "$(cat "$OUT/.stamp" 2>/dev/null)" = "$stamp" ]; then
    echo "wheelhouse: up to date ($(find "$OUT" -name '*.whl' | wc -l) wheels in $OUT)" >&2
    exit 0
fi
mkdir -p "$OUT"
rm -f "$OUT"/*.whl "$OUT/.stamp"
# --no-deps: the lock is the whole closure; setuptools is pinned there, wheel is not
$PIP download --quiet --disable-pip-version-check --only-binary :all: --no-deps \
    --python-version 3.11 --implementation cp --platform manylinux_2_36_x86_64 \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform linux_x86_64 --platform any \
    -d "$OUT" -r "$DOCKER/requirements.lock" "torch==$TORCH_VERSION" "${BUILD_BACKEND[@]}" \
    > "$OUT/.pip.log" 2>&1 || { grep -v 'is neither a file nor a directory' "$OUT/.pip.log" >&2; exit 1; }
echo "$stamp" > "$OUT/.stamp"
echo "wheelhouse: $(find "$OUT" -name '*.whl' | wc -l) wheels, $(du -sh "$OUT" | cut -f1) in $OUT" >&2
