/*
 * Which implementation an IFUNC symbol selects: the library is opened in
 * this process (on the same machine, so the same CPU features decide) and
 * the symbol's resolved address is turned back into an address relative to
 * the library's load base, which the loader maps to a file offset.
 */
#define _GNU_SOURCE
#include "../base/error.h"
#include "../include/bpftime.h"

#include <dlfcn.h>
#include <errno.h>

int bpftime_ifunc_target(const char *path, const char *name, uint64_t *vaddr)
{
	void *lib = dlopen(path, RTLD_LAZY | RTLD_LOCAL);
	if (!lib) {
		set_error("%s: cannot open to resolve IFUNC '%s': %s", path, name, dlerror());
		return -ENOENT;
	}
	void *impl = dlsym(lib, name);
	Dl_info info;
	int rc = 0;
	if (!impl || !dladdr(impl, &info)) {
		set_error("%s: IFUNC '%s' does not resolve", path, name);
		rc = -ENOENT;
	} else {
		*vaddr = (uint64_t)((uintptr_t)impl - (uintptr_t)info.dli_fbase);
	}
	dlclose(lib);
	return rc;
}
