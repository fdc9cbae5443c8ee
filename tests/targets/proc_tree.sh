#!/bin/sh
# A scripted process tree with known exits for tests/sched_tracepoint_test.ts; $1 is
# build/tests/proc_child. Each line is one case; the test knows what each must report.
child="$1"
/bin/true first
( exit 5 )
/bin/sh -c 'exit 3'
"$child" 7 &
wait $!
"$child" thread-exit 9
"$child" threads 11
"$child" underscore 12
"$child" forks 5 13
"$child" exec-thread
marker=$(mktemp -u)
"$child" sleep "$marker" &
victim=$!
while [ ! -e "$marker" ]; do sleep 0.05; done
rm -f "$marker"
kill -9 "$victim"
wait "$victim"
env -i "$child" 14
"$child" orphan 8
sleep 0.5
exit 4
