// SPDX-License-Identifier: MIT
/*
 * A small price server with a bug: lookup() does not check the index, so
 * "get 8" answers with the secret stored after the table and "get 100000000"
 * crashes it. examples/hotpatch/hotpatch.ts fixes it while it runs (a replace
 * program, bpf/hotpatch.bpf.c), with the server under `bpftime start`.
 *
 *   hotpatch_server [PORT]   listens on 127.0.0.1:PORT (0 or none: any), prints
 *   "listening PORT"; one client at a time, lines "get N" answered
 *   "value V" or "error: no entry N"
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hotpatch.h"

static struct price_table prices = {PRICES, {10, 20, 30, 40, 50, 60, 70, 80}, 0x5ec2e7};

/* BUG: index is never checked against t->len. */
__attribute__((noinline)) int lookup(const struct price_table *t, long index, long *out)
{
	*out = t->values[index];
	return 0;
}

static void serve(int fd)
{
	FILE *in = fdopen(dup(fd), "r");
	FILE *out = fdopen(fd, "w");
	if (!in || !out)
		return;
	char line[128];
	while (fgets(line, sizeof(line), in)) {
		long index, value;
		if (sscanf(line, "get %ld", &index) != 1) {
			fprintf(out, "error: unknown command\n");
		} else if (lookup(&prices, index, &value) == 0) {
			fprintf(out, "value %ld\n", value);
		} else {
			fprintf(out, "error: no entry %ld\n", index);
		}
		fflush(out);
	}
	fclose(in);
	fclose(out);
}

int main(int argc, char **argv)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	int one = 1;
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(argc > 1 ? atoi(argv[1]) : 0)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof(a);
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 4) < 0 ||
	    getsockname(s, (struct sockaddr *)&a, &len) < 0) {
		perror("hotpatch_server");
		return 1;
	}
	printf("listening %d\n", ntohs(a.sin_port));
	fflush(stdout);
	for (;;) {
		int c = accept(s, NULL, NULL);
		if (c >= 0)
			serve(c);
	}
}
