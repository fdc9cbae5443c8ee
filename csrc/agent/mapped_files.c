/* Finding a file offset in this process's executable mappings (/proc/self/maps). */
#define _GNU_SOURCE
#include "agent.h"

#include <stdio.h>
#include <sys/sysmacros.h>

uint64_t mapped_address(dev_t dev, ino_t ino, uint64_t offset)
{
	FILE *f = fopen("/proc/self/maps", "re");
	if (!f)
		return 0;
	char line[4096];
	uint64_t found = 0;
	while (!found && fgets(line, sizeof(line), f)) {
		unsigned long long start, end, off, inode;
		unsigned major, minor;
		char perms[8];
		if (sscanf(line, "%llx-%llx %7s %llx %x:%x %llu", &start, &end, perms, &off, &major, &minor,
			   &inode) != 7)
			continue;
		if (perms[2] != 'x' || inode != (unsigned long long)ino || makedev(major, minor) != dev)
			continue;
		if (offset >= off && offset < off + (end - start))
			found = start + (offset - off);
	}
	fclose(f);
	return found;
}
