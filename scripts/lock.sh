#!/usr/bin/env bash
# Regenerate the hashed lock files the images install from (DEPLOYMENT.md, "The lock files"):
#
#   requirements.lock        the server's runtime dependencies, pyproject.toml's
#                            [project.dependencies] and everything they pull in
#   requirements-build.lock  the build backend ([build-system] requires), which builds Sidecar's
#                            own wheel in the images' builder stage
#
# Each pins one version of every package, with the sha256 of every file the package index has
# for it, for every platform and every Python that pyproject.toml allows (the images' Linux and
# Python 3.12 included): lines that apply elsewhere carry environment markers, which pip skips.
#
#   python3 -m pip install uv              # once
#   bash scripts/lock.sh                   # after a dependency changed; other pins are kept
#   bash scripts/lock.sh --upgrade         # every package at the newest version the floors allow
#   bash scripts/lock.sh --upgrade-package starlette
#
# Extra arguments go to `uv pip compile`. Commit the lock files with the change that needed them:
# tests/test_deploy_images.py fails while a dependency in pyproject.toml has no pin here.
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v uv > /dev/null 2>&1; then
    uv=(uv)
elif python3 -m uv --version > /dev/null 2>&1; then
    uv=(python3 -m uv)
else
    echo "lock.sh: needs uv (python3 -m pip install uv)" >&2
    exit 1
fi

# The lowest Python pyproject.toml's requires-python allows: a universal resolution from it
# holds for every newer one.
python_floor=$(python3 -c 'import re, tomllib
spec = tomllib.load(open("pyproject.toml", "rb"))["project"]["requires-python"]
print(re.fullmatch(r">=\s*(\d+\.\d+)", spec.strip()).group(1))')

compile() {
    "${uv[@]}" pip compile --universal --python-version "$python_floor" --generate-hashes \
        --custom-compile-command "bash scripts/lock.sh" --quiet "$@"
}

compile pyproject.toml --output-file requirements.lock "${@}"
python3 -c 'import tomllib
print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")' \
    | compile - --output-file requirements-build.lock "${@}"

echo "lock.sh: $(grep -c '^[A-Za-z0-9]' requirements.lock) packages in requirements.lock," \
     "$(grep -c '^[A-Za-z0-9]' requirements-build.lock) in requirements-build.lock"
