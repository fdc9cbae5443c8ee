/* Every workload in one translation unit (one eBPF object, one native library). */
#include "prime.c"
#include "memcmp.c"
#include "fib.c"
#include "bitops.c"
#include "helpers.c"
#include "probe_read.c"
