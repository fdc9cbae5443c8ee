/*
 * Descendants keep the agent across exec. The kernel traces every process; a
 * program under `bpftime start` passes the agent on through LD_PRELOAD and the
 * segment's variables, which a program that clears its environment would drop
 * (`env -i CMD`, execve or posix_spawn with a short envp of its own). The exec
 * family is wrapped here: an environment with no LD_PRELOAD at all gets
 * LD_PRELOAD=agent and the segment's variables (BPFTIME_GLOBAL_SHM_NAME,
 * BPFTIME_SHM_FD, BPFTIME_SHM_GROUP) it lacks; nothing else changes. An
 * environment that names LD_PRELOAD itself (even empty: the way to run a
 * child without the agent) is passed as it is.
 *
 * These run in vfork children too (dash execs from one): no malloc and no
 * dlsym here, only the stack (the real functions are looked up at start).
 * Only for a preloaded agent: one loaded by `bpftime attach` leaves its
 * process's descendants alone, as it leaves its environment.
 */
#define _GNU_SOURCE
#include "agent.h"

#include <alloca.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

static bool ready;
/* "NAME=value" entries added when missing (empty: none to add). */
static char preload_var[PATH_MAX + 16], name_var[320], fd_var[40], group_var[320];

typedef int (*execve_fn)(const char *, char *const[], char *const[]);
typedef int (*fexecve_fn)(int, char *const[], char *const[]);
typedef int (*spawn_fn)(pid_t *, const char *, const posix_spawn_file_actions_t *, const posix_spawnattr_t *,
			char *const[], char *const[]);
static execve_fn real_execve, real_execvpe;
static fexecve_fn real_fexecve;
static spawn_fn real_spawn, real_spawnp;

static void keep(char *out, size_t len, const char *name)
{
	const char *v = getenv(name);
	if (v && *v)
		snprintf(out, len, "%s=%s", name, v);
}

/* The real functions, looked up before anything can exec (never in a vfork child). */
__attribute__((constructor)) static void find_real(void)
{
	real_execve = (execve_fn)dlsym(RTLD_NEXT, "execve");
	real_execvpe = (execve_fn)dlsym(RTLD_NEXT, "execvpe");
	real_fexecve = (fexecve_fn)dlsym(RTLD_NEXT, "fexecve");
	real_spawn = (spawn_fn)dlsym(RTLD_NEXT, "posix_spawn");
	real_spawnp = (spawn_fn)dlsym(RTLD_NEXT, "posix_spawnp");
}

void exec_env_keep_agent(void)
{
	Dl_info info;
	if (!dladdr((void *)exec_env_keep_agent, &info) || !info.dli_fname || strlen(info.dli_fname) >= PATH_MAX)
		return;
	snprintf(preload_var, sizeof(preload_var), "LD_PRELOAD=%s", info.dli_fname);
	keep(name_var, sizeof(name_var), "BPFTIME_GLOBAL_SHM_NAME");
	keep(fd_var, sizeof(fd_var), "BPFTIME_SHM_FD");
	keep(group_var, sizeof(group_var), "BPFTIME_SHM_GROUP");
	ready = true;
}

static bool named(const char *entry, const char *var)
{
	size_t n = strcspn(var, "=") + 1;
	return strncmp(entry, var, n) == 0;
}

/* The number of entries of envp, and whether one sets LD_PRELOAD. */
static size_t count(char *const *envp, bool *preload)
{
	size_t n = 0;
	*preload = false;
	for (; envp && envp[n]; n++)
		*preload |= strncmp(envp[n], "LD_PRELOAD=", 11) == 0;
	return n;
}

/* Fills out (room for n + 5 pointers) with envp, the agent's LD_PRELOAD and the missing segment variables. */
static char *const *with_agent(char *const *envp, size_t n, char **out)
{
	size_t k = 0;
	bool has_name = false, has_fd = false, has_group = false;
	for (size_t i = 0; i < n; i++) {
		has_name |= *name_var && named(envp[i], name_var);
		has_fd |= *fd_var && named(envp[i], fd_var);
		has_group |= *group_var && named(envp[i], group_var);
		out[k++] = envp[i];
	}
	out[k++] = preload_var;
	if (*name_var && !has_name)
		out[k++] = name_var;
	if (*fd_var && !has_fd)
		out[k++] = fd_var;
	if (*group_var && !has_group)
		out[k++] = group_var;
	out[k] = NULL;
	return out;
}

/* envp, or a copy on the caller's stack with the agent added (a macro: alloca is the caller's). */
#define AGENT_ENV(envp)                                                                            \
	({                                                                                         \
		char *const *e_ = (envp);                                                          \
		bool p_;                                                                           \
		size_t n_ = count(e_, &p_);                                                        \
		p_ ? e_ : with_agent(e_, n_, alloca((n_ + 5) * sizeof(char *)));                   \
	})

/* envp as the wrappers pass it on: with the agent when this process keeps it for its descendants. */
#define PASS_ENV(envp) (ready ? AGENT_ENV(envp) : (envp))

__attribute__((visibility("default"))) int execve(const char *path, char *const argv[], char *const envp[])
{
	if (!real_execve)
		return errno = ENOSYS, -1;
	char *const *env = PASS_ENV(envp);
	return real_execve(path, argv, env);
}

__attribute__((visibility("default"))) int execvpe(const char *file, char *const argv[], char *const envp[])
{
	if (!real_execvpe)
		return errno = ENOSYS, -1;
	char *const *env = PASS_ENV(envp);
	return real_execvpe(file, argv, env);
}

__attribute__((visibility("default"))) int execv(const char *path, char *const argv[])
{
	return execve(path, argv, environ);
}

__attribute__((visibility("default"))) int execvp(const char *file, char *const argv[])
{
	return execvpe(file, argv, environ);
}

__attribute__((visibility("default"))) int fexecve(int fd, char *const argv[], char *const envp[])
{
	if (!real_fexecve)
		return errno = ENOSYS, -1;
	char *const *env = PASS_ENV(envp);
	return real_fexecve(fd, argv, env);
}

__attribute__((visibility("default"))) int posix_spawn(pid_t *pid, const char *path,
							const posix_spawn_file_actions_t *fa,
							const posix_spawnattr_t *attr, char *const argv[],
							char *const envp[])
{
	if (!real_spawn)
		return ENOSYS;
	char *const *env = PASS_ENV(envp);
	return real_spawn(pid, path, fa, attr, argv, env);
}

__attribute__((visibility("default"))) int posix_spawnp(pid_t *pid, const char *file,
							 const posix_spawn_file_actions_t *fa,
							 const posix_spawnattr_t *attr, char *const argv[],
							 char *const envp[])
{
	if (!real_spawnp)
		return ENOSYS;
	char *const *env = PASS_ENV(envp);
	return real_spawnp(pid, file, fa, attr, argv, env);
}

/* execl, execlp, execle: the arguments gathered on the stack, then the wrappers above. */
#define GATHER(first, ap, argv)                                                                    \
	do {                                                                                       \
		va_list c_;                                                                        \
		va_copy(c_, ap);                                                                   \
		size_t n_ = 1;                                                                     \
		while (va_arg(c_, char *))                                                         \
			n_++;                                                                      \
		va_end(c_);                                                                        \
		argv = alloca((n_ + 1) * sizeof(char *));                                          \
		argv[0] = (char *)(first);                                                         \
		for (size_t i_ = 1; i_ <= n_; i_++)                                                \
			argv[i_] = va_arg(ap, char *);                                             \
	} while (0)

__attribute__((visibility("default"))) int execl(const char *path, const char *arg, ...)
{
	char **argv;
	va_list ap;
	va_start(ap, arg);
	GATHER(arg, ap, argv);
	va_end(ap);
	return execve(path, argv, environ);
}

__attribute__((visibility("default"))) int execlp(const char *file, const char *arg, ...)
{
	char **argv;
	va_list ap;
	va_start(ap, arg);
	GATHER(arg, ap, argv);
	va_end(ap);
	return execvpe(file, argv, environ);
}

__attribute__((visibility("default"))) int execle(const char *path, const char *arg, ...)
{
	char **argv;
	va_list ap;
	va_start(ap, arg);
	GATHER(arg, ap, argv);
	char *const *envp = va_arg(ap, char *const *);
	va_end(ap);
	return execve(path, argv, envp);
}
