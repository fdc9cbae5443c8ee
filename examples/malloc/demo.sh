#!/bin/bash
# The malloc demo (make demo): the tool counts malloc calls per process while
# two victims started with `bpftime start` run, then everything stops cleanly.
set -euo pipefail
cd "$(dirname "$0")/../.."
DENO=node_modules/deno/deno
[ -x "$DENO" ] || DENO=node_modules/.bin/deno
SECONDS_TO_RUN=${DEMO_SECONDS:-5}

$DENO run --allow-all examples/malloc/malloc.ts --duration "$SECONDS_TO_RUN" &
tool=$!
# Wait until the tool's uprobe link is in the segment, then start the victims.
for _ in $(seq 100); do
	bin/bpftime tool list 2>/dev/null | grep -q "link" && break
	sleep 0.2
done
victims=()
# Whatever happens to the tool, the victims do not outlive the demo.
trap 'kill -TERM "${victims[@]}" 2>/dev/null || true' EXIT
bin/bpftime start build/examples/malloc_victim &
victims+=($!)
bin/bpftime start build/examples/malloc_victim &
victims+=($!)
wait "$tool"
kill -TERM "${victims[@]}" 2>/dev/null || true
wait "${victims[@]}" 2>/dev/null || true
echo "demo finished: the tool removed its programs, maps and links; the victims were stopped"
