/* The malloc example's target: calls malloc in a loop, as in bpftime's Quick Start. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Keeps the compiler from eliding the malloc/free pair. */
void *volatile last;

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (;;) {
		void *p = malloc(1024);
		last = p;
		puts("continue malloc...");
		free(p);
		sleep(1);
	}
}
