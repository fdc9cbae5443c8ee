#!/bin/sh
# Writes a C table of x86-64 syscall names indexed by number, from the kernel
# headers' asm/unistd_64.h (`#define __NR_read 0`): syscount's names.
#   gen_syscall_names.sh [UNISTD_64_H] > syscall_names.h
set -e
header=${1:-$(echo '#include <asm/unistd_64.h>' | cc -E -M -x c - | tr ' \\' '\n\n' | grep 'unistd_64\.h$' | head -n 1)}
[ -r "$header" ] || { echo "gen_syscall_names.sh: no asm/unistd_64.h found" >&2; exit 1; }
echo "/* Generated from $header by scripts/gen_syscall_names.sh: do not edit. */"
echo "static const char *const syscall_names[] = {"
awk '$1 == "#define" && $2 ~ /^__NR_/ && $3 ~ /^[0-9]+$/ {
	printf "\t[%d] = \"%s\",\n", $3, substr($2, 6)
}' "$header"
echo "};"
