/* The shared_count example's target: calls work() N times (default 100), then exits. */
#include <stdio.h>
#include <stdlib.h>

/* Long enough for the agent's 5-byte patch. */
volatile long done;

__attribute__((noinline)) int work(int i)
{
	done += i;
	return i * 2;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 100;
	long sum = 0;
	for (int i = 0; i < n; i++)
		sum += work(i);
	printf("called work() %d times (sum %ld)\n", n, sum);
	return 0;
}
