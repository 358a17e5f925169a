#!/usr/bin/env bash
# summary.sh: session11-slab's, over the runs here (or in DIR).
here=$(cd "$(dirname "$0")" && pwd)
DIR=${DIR:-$here} exec bash "$here/../session11-slab/summary.sh" "$@"
