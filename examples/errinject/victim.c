// SPDX-License-Identifier: MIT
/*
 * errinject's target: reads commands from stdin.
 *   alloc N   N calls of malloc(100) (each freed), then "alloc N failed=F" (F returned NULL)
 */
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	char line[64];
	int n;
	printf("victim ready\n");
	while (fgets(line, sizeof(line), stdin)) {
		if (sscanf(line, "alloc %d", &n) != 1)
			continue;
		int failed = 0;
		for (int i = 0; i < n; i++) {
			void *volatile p = malloc(100);
			if (!p)
				failed++;
			free(p);
		}
		printf("alloc %d failed=%d\n", n, failed);
	}
	return 0;
}
