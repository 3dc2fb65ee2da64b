#!/usr/bin/env bash
# What the browser test (tests/test_uppy_browser.py) needs, installed only when missing, so a
# fresh machine passes `make test`: Debian's chromium, node and npm, and the Uppy example page
# built from its locked dependencies (npm ci, then esbuild). Idempotent and quick when all is
# there. Where it cannot install (not root, no sudo) it says so and, outside CI, carries on:
# the test then skips with a message; in CI (CI set) that is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=()
command -v chromium >/dev/null 2>&1 || packages+=(chromium)
command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)
if [ ${#packages[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then
        as_root=()
    elif command -v sudo >/dev/null 2>&1; then
        as_root=(sudo)
    else
        echo "ensure-browser: cannot install ${packages[*]} (not root, no sudo)" >&2
        [ -z "${CI:-}" ] && exit 0
        exit 1
    fi
    echo "ensure-browser: installing ${packages[*]} from Debian" >&2
    "${as_root[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi

cd examples/uppy
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund --loglevel=error
fi
if [ ! -f dist/app.js ] || [ -n "$(find src index.html package-lock.json -newer dist/app.js -print -quit)" ]; then
    npm run --silent build
fi
