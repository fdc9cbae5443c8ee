#include "workloads.h"

/* Counts the primes below 10,000 by trial division. */
WORKLOAD(prime)
{
	(void)mem;
	(void)len;
	u64 count = 0;
	for (u64 n = 2; n < 10000; n++) {
		u64 is_prime = 1;
		for (u64 d = 2; d * d <= n; d++) {
			if (n % d == 0) {
				is_prime = 0;
				break;
			}
		}
		count += is_prime;
	}
	return count;
}
