#!/usr/bin/env bash
# Builds build/wheelhouse: the project's wheel plus every dependency as a binary wheel for the
# image's Python (3.11, glibc Linux, this machine's architecture), downloaded here on the host
# so `docker build` never reaches a package registry.
# pip evaluates `python_full_version` markers with the host's interpreter even with
# --python-version, so the download runs with platform.python_version() reporting the image's
# version (IMAGE_PYTHON, default 3.11.0: the lowest 3.11, a superset for any 3.11 image).
# Otherwise a 3.11.7 host leaves out what a 3.11.2 image needs (async-timeout, for redis).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
out=build/wheelhouse
arch=$(uname -m)
rm -rf "$out"
mkdir -p "$out"

"$python" -m pip wheel --quiet --no-deps --wheel-dir "$out" .
mapfile -t requirements < <("$python" - <<'PY'
import tomllib
print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))
PY
)
platforms=()
for glibc in 2_36 2_35 2_34 2_31 2_28 2_24 2_17 2_12 2_5; do
  platforms+=(--platform "manylinux_${glibc}_${arch}")
done
image_python=${IMAGE_PYTHON:-3.11.0}
"$python" -c "import platform, runpy, sys
platform.python_version = lambda: '$image_python'
sys.argv = ['pip', *sys.argv[1:]]
runpy.run_module('pip', run_name='__main__')" download --quiet --dest "$out" --only-binary=:all: \
  --implementation cp --python-version "$image_python" --abi cp311 --abi abi3 --abi none \
  "${platforms[@]}" --platform "manylinux2014_${arch}" --platform any \
  "${requirements[@]}"
echo "wheelhouse: $(find "$out" -name '*.whl' | wc -l) wheels in $out"
