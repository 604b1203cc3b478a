#!/usr/bin/env bash
# The project's virtualenv, cached by what goes into it, like the Go builds and images:
#   ~/.cache/synchro/venv/<hash of requirements.txt, requirements-runtime.txt and python3's version>
# and DIR/.venv a symlink to it. A fresh clone of an unchanged requirements.txt links it in 0.1 s; creating the
# venv and installing into it took 61 to 67 s here. A venv is marked complete (.complete) only after pip
# succeeded, under a lock, so two clones never build the same one at once. It is shared: install nothing into it
# by hand.
#
#   bash hack/venv.sh [DIR]    DIR: a checkout (default: this one); bench/ab.py links another ref's worktree
set -euo pipefail
dir="$(cd "${1:-$(dirname "$0")/..}" && pwd)"
cache="${SYNCHRO_CACHE:-$HOME/.cache/synchro}/venv"
key=$({ cat "$dir/requirements.txt" "$dir/requirements-runtime.txt"; python3 -VV; command -v python3; } |
  sha256sum | cut -c1-16)
venv="$cache/$key"
mkdir -p "$cache"
exec 9>"$venv.lock"
flock 9
if [ ! -f "$venv/.complete" ]; then
  rm -rf "$venv"  # a build that stopped half-way
  python3 -m venv "$venv"
  (cd "$dir" && "$venv/bin/pip" install -q -r requirements.txt)
  touch "$venv/.complete"
fi
exec 9>&-
# A .venv directory from before the cache (make deps made one in place) gives way to the link.
if [ -d "$dir/.venv" ] && [ ! -L "$dir/.venv" ]; then rm -rf "$dir/.venv"; fi
ln -sfn "$venv" "$dir/.venv"
echo "venv: $dir/.venv -> $venv"
