/* Finding a file offset in this process's executable mappings (/proc/self/maps), and the file's own bytes there. */
#define _GNU_SOURCE
#include "agent.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* Where file offset `offset` of (dev, ino) is mapped with permission `perm` ('x', 'w'), 0 when it is not. */
static uint64_t mapped_with(dev_t dev, ino_t ino, uint64_t offset, char perm)
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
		if (strchr(perms, perm) == NULL || inode != (unsigned long long)ino || makedev(major, minor) != dev)
			continue;
		if (offset >= off && offset < off + (end - start))
			found = start + (offset - off);
	}
	fclose(f);
	return found;
}

int file_code(const char *path, dev_t dev, ino_t ino, uint64_t offset, uint8_t *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct stat st;
	size_t got = 0;
	if (fstat(fd, &st) == 0 && st.st_dev == dev && st.st_ino == ino) {
		while (got < len) {
			ssize_t n = pread(fd, buf + got, len - got, (off_t)(offset + got));
			if (n <= 0)
				break;
			got += (size_t)n;
		}
	}
	close(fd);
	if (got == 0)
		return -1;
	memset(buf + got, 0, len - got); /* past the end of the file */
	return 0;
}

uint64_t mapped_address(dev_t dev, ino_t ino, uint64_t offset)
{
	return mapped_with(dev, ino, offset, 'x');
}

uint64_t mapped_writable_address(dev_t dev, ino_t ino, uint64_t offset)
{
	return mapped_with(dev, ino, offset, 'w');
}
