/*
 * BPF_PROG_LOAD and BPF_BTF_LOAD. A program arrives as libbpf left it after
 * its relocations: map references are fds, which become segment ids here;
 * then the program is validated like the kernel verifies it, and stored.
 * A refusal is written to the caller's log buffer, as the verifier's is.
 */
#include "server.h"

#include "../base/safe_copy.h"
#include "../runtime/runtime.h"
#include "raw_syscall.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>

struct insn {
	uint8_t code;
	uint8_t dst : 4, src : 4;
	int16_t off;
	int32_t imm;
};

/* The log buffer contract: all of buffer, size and level, or none of them. */
static long check_log(uint64_t buf, uint32_t size, uint32_t level)
{
	if (!buf && !size && !level)
		return 0;
	if (!buf || !size || size > (UINT32_MAX >> 2) || !level || level & ~7u)
		return -EINVAL;
	return 0;
}

/* Writes a line into the log; -ENOSPC when it did not fit (the kernel's answer for a short log). */
static long write_log(uint64_t buf, uint32_t size, const char *fmt, ...)
{
	if (!buf)
		return 0;
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	size_t len = strlen(line) + 1;
	if (len > size) {
		line[size - 1] = 0;
		len = size;
	}
	if (safe_write(buf, line, len) < 0)
		return -EFAULT;
	return (uint32_t)n + 1 > size ? -ENOSPC : 0;
}

static int add_unique(uint32_t *ids, uint32_t *n, uint32_t id)
{
	for (uint32_t i = 0; i < *n; i++)
		if (ids[i] == id)
			return 0;
	ids[(*n)++] = id;
	return 0;
}

/* lddw map references: fds (src 1, 2) or fd_array slots (src 5, 6) become segment map ids (src 1, 2). */
static long map_fds_to_ids(struct insn *insns, uint32_t n, uint64_t fd_array, uint32_t *maps,
			   uint32_t *nmaps, char *why, size_t whylen)
{
	for (uint32_t pc = 0; pc < n; pc++) {
		if (insns[pc].code != 0x18)
			continue;
		uint32_t src = insns[pc].src;
		if (src == 5 || src == 6) {
			int32_t fd;
			if (!fd_array || safe_read(&fd, fd_array + (uint64_t)(uint32_t)insns[pc].imm * 4, 4) < 0) {
				snprintf(why, whylen, "pc %u: fd_array[%d] cannot be read", pc, insns[pc].imm);
				return -EFAULT;
			}
			insns[pc].imm = fd;
			insns[pc].src = src == 5 ? 1 : 2;
			src = insns[pc].src;
		}
		if (src == 1 || src == 2) {
			int id = sfd_map_id(insns[pc].imm);
			if (id < 0) {
				snprintf(why, whylen, "pc %u: fd %d is not pointing to a valid bpf_map", pc,
					 insns[pc].imm);
				return id;
			}
			insns[pc].imm = id;
			add_unique(maps, nmaps, (uint32_t)id);
		}
		pc++; /* the second half of lddw */
	}
	return 0;
}

long bpf_prog_load(union bpf_attr *attr)
{
	char name[BPF_OBJ_NAME_LEN + 1] = {0};
	memcpy(name, attr->prog_name, BPF_OBJ_NAME_LEN);
	uint32_t n = attr->insn_cnt;
	long ret = check_log(attr->log_buf, attr->log_size, attr->log_level);
	if (ret < 0)
		return ret;
	if (n == 0 || n > BPFTIME_MAX_INSNS)
		return -E2BIG;
	if (attr->prog_type == 0 || attr->prog_type > BPF_PROG_TYPE_SYSCALL)
		return -EINVAL;
	if (attr->prog_type == BPF_PROG_TYPE_SYSCALL && !(attr->prog_flags & BPF_F_SLEEPABLE)) {
		write_log(attr->log_buf, attr->log_size, "Syscall programs can only be sleepable\n");
		return -EINVAL; /* as the kernel's verifier */
	}
	struct insn *insns = malloc((size_t)n * sizeof(*insns));
	uint32_t *maps = malloc((size_t)n * sizeof(*maps)), nmaps = 0;
	char why[512] = "";
	if (!insns || !maps) {
		ret = -ENOMEM;
		goto out;
	}
	if (safe_read(insns, attr->insns, (uint64_t)n * sizeof(*insns)) < 0) {
		ret = -EFAULT;
		goto out;
	}
	ret = map_fds_to_ids(insns, n, attr->fd_array, maps, &nmaps, why, sizeof(why));
	if (ret == 0) {
		/* Refused here as an agent would refuse it. */
		struct bpftime_vm *vm = runtime_vm_for_code(server_shm, insns, (uint64_t)n * 8, NULL);
		if (!vm) {
			snprintf(why, sizeof(why), "%s", bpftime_last_error());
			ret = -EINVAL;
		}
		bpftime_vm_destroy(vm);
	}
	if (ret < 0) {
		server_log("BPF_PROG_LOAD '%s' refused: %s", name, why);
		write_log(attr->log_buf, attr->log_size, "bpftime: %s\n", why);
		goto out;
	}
	int id = bpftime_prog_create(server_shm, name, attr->prog_type, insns, (uint64_t)n * 8);
	if (id < 0) {
		server_log("BPF_PROG_LOAD '%s': %s", name, bpftime_last_error());
		ret = id;
		goto out;
	}
	ref_created((uint32_t)id, maps, nmaps);
	ret = sfd_new(SFD_PROG, (uint32_t)id, NULL);
	if (ret < 0) {
		ref_put((uint32_t)id);
		goto out;
	}
	if (attr->log_level) {
		long bad = write_log(attr->log_buf, attr->log_size, "processed %u insns (bpftime: validated)\n", n);
		if (bad < 0) { /* the kernel refuses a load whose log did not fit */
			sfd_forget((int)ret);
			raw_syscall6(SYS_close, ret, 0, 0, 0, 0, 0);
			ret = bad;
		}
	}
out:
	free(insns);
	free(maps);
	return ret;
}

/*
 * BPF_PROG_TEST_RUN of a raw tracepoint program, as the kernel runs it: once,
 * here, on the arguments in ctx_in (up to 12 u64s). bpftrace runs its BEGIN and
 * END probes so. Other program types are not run here.
 */
long bpf_prog_test_run(union bpf_attr *attr)
{
	int id = sfd_prog_id((int)attr->test.prog_fd);
	if (id < 0)
		return id;
	uint32_t type;
	if (bpftime_prog_code(server_shm, (uint32_t)id, NULL, 0, &type) < 0)
		return -EBADF;
	if (type == BPF_PROG_TYPE_SYSCALL)
		return prog_test_run_syscall(attr, (uint32_t)id);
	if (type != BPF_PROG_TYPE_RAW_TRACEPOINT) {
		/* The kernel has no test run for kprobe, tracepoint and perf event programs: ENOTSUPP. */
		server_log("BPF_PROG_TEST_RUN of program type %u is not supported (only raw tracepoint programs)",
			   type);
		return -524; /* ENOTSUPP, the kernel's */
	}
	uint64_t args[12] = {0};
	uint32_t ctx_size = attr->test.ctx_size_in;
	if (attr->test.data_in || attr->test.data_out || attr->test.ctx_out || attr->test.duration ||
	    attr->test.repeat || attr->test.batch_size || attr->test.data_size_in || attr->test.data_size_out ||
	    ctx_size > sizeof(args) || (ctx_size && !attr->test.ctx_in) ||
	    (!(attr->test.flags & BPF_F_TEST_RUN_ON_CPU) && attr->test.cpu) ||
	    attr->test.flags & ~(uint32_t)BPF_F_TEST_RUN_ON_CPU)
		return -EINVAL;
	if (ctx_size && safe_read(args, attr->test.ctx_in, ctx_size) < 0)
		return -EFAULT;
	struct bpftime_vm *vm = runtime_program_vm(server_shm, (uint32_t)id, NULL);
	if (!vm) {
		server_log("BPF_PROG_TEST_RUN: program %d: %s", id, bpftime_last_error());
		return -EINVAL;
	}
	uint64_t r0 = 0;
	int rc = bpftime_vm_exec(vm, args, ctx_size, &r0);
	if (rc < 0)
		server_log("BPF_PROG_TEST_RUN: program %d faulted: %s", id, bpftime_last_error());
	bpftime_vm_destroy(vm);
	if (rc < 0)
		return -EFAULT;
	attr->test.retval = (uint32_t)r0;
	return 0;
}

/*
 * ---- BTF: kept in this process; programs and maps here do not need it to run ----
 * Id 1 is the kernel's own (vmlinux, read from /sys/kernel/btf/vmlinux when it is
 * first asked for), as on the kernel, where tools such as bpftrace find it by id;
 * the BTF an application loads gets the ids after it.
 */

struct btf_blob {
	uint32_t id;
	uint32_t size;
	uint8_t *data;
	const char *name; /* the kernel's: "vmlinux" */
	struct btf_blob *next;
};
static struct btf_blob *blobs;
static uint32_t next_btf_id = 2;
#define VMLINUX_BTF_ID 1
#define VMLINUX_BTF_PATH "/sys/kernel/btf/vmlinux"

/* The kernel's BTF as blob 1, read once; NULL (logged once) when the file cannot be read. */
static struct btf_blob *vmlinux_btf(void)
{
	static int tried;
	for (struct btf_blob *b = blobs; b; b = b->next)
		if (b->id == VMLINUX_BTF_ID)
			return b;
	if (tried)
		return NULL;
	tried = 1;
	uint8_t *data = NULL;
	size_t size = 0, cap = 0;
	/* Raw calls: we hold the server's lock, and close() of ours would take it again. */
	long fd = raw_syscall6(SYS_openat, AT_FDCWD, (long)VMLINUX_BTF_PATH, O_RDONLY | O_CLOEXEC, 0, 0, 0);
	while (fd >= 0) {
		if (size == cap) {
			uint8_t *more = realloc(data, cap = cap ? cap * 2 : 8u << 20);
			if (!more) {
				size = 0;
				break;
			}
			data = more;
		}
		long n = raw_syscall6(SYS_read, fd, (long)(data + size), (long)(cap - size), 0, 0, 0);
		if (n <= 0) {
			if (n < 0)
				size = 0;
			break;
		}
		size += (size_t)n;
	}
	if (fd >= 0)
		raw_syscall6(SYS_close, fd, 0, 0, 0, 0, 0);
	struct btf_blob *b = size ? calloc(1, sizeof(*b)) : NULL;
	if (!b) {
		server_log("the kernel's BTF (%s) cannot be read: BPF_BTF_GET_NEXT_ID does not list it",
			   VMLINUX_BTF_PATH);
		free(data);
		return NULL;
	}
	b->id = VMLINUX_BTF_ID;
	b->size = (uint32_t)size;
	b->data = data;
	b->name = "vmlinux";
	b->next = blobs;
	blobs = b;
	return b;
}

struct btf_header {
	uint16_t magic;
	uint8_t version, flags;
	uint32_t hdr_len, type_off, type_len, str_off, str_len;
};

long bpf_btf_load(union bpf_attr *attr)
{
	long ret = check_log(attr->btf_log_buf, attr->btf_log_size, attr->btf_log_level);
	if (ret < 0)
		return ret;
	uint32_t size = attr->btf_size;
	if (size > (16u << 20))
		return -E2BIG;
	struct btf_header h;
	if (size < sizeof(h))
		return -EINVAL;
	if (safe_read(&h, attr->btf, sizeof(h)) < 0)
		return -EFAULT;
	const char *why = NULL;
	if (h.magic != 0xeB9F)
		why = "magic is not 0xeB9F";
	else if (h.version != 1 || h.flags)
		why = "unsupported version or flags";
	else if (h.hdr_len < sizeof(h) || h.hdr_len > size)
		why = "header length out of range";
	else if ((uint64_t)h.hdr_len + h.type_off + h.type_len > size ||
		 (uint64_t)h.hdr_len + h.str_off + h.str_len > size || h.type_off % 4 || !h.str_len)
		why = "type or string section out of range";
	if (why) {
		write_log(attr->btf_log_buf, attr->btf_log_size, "bpftime: BTF: %s\n", why);
		return -EINVAL;
	}
	struct btf_blob *b = calloc(1, sizeof(*b));
	if (!b || !(b->data = malloc(size))) {
		free(b);
		return -ENOMEM;
	}
	if (safe_read(b->data, attr->btf, size) < 0) {
		free(b->data);
		free(b);
		return -EFAULT;
	}
	b->size = size;
	long special = btf_check_special_fields(b->data, size);
	if (special < 0) {
		write_log(attr->btf_log_buf, attr->btf_log_size, "bpftime: BTF: bad struct bpf_spin_lock use\n");
		free(b->data);
		free(b);
		return special;
	}
	b->id = next_btf_id++;
	int fd = sfd_new(SFD_BTF, b->id, NULL);
	if (fd < 0) {
		free(b->data);
		free(b);
		return fd;
	}
	b->next = blobs;
	blobs = b;
	return fd;
}

long bpf_btf_info(struct server_fd *e, union bpf_attr *attr)
{
	struct btf_blob *b = blobs;
	while (b && b->id != e->id)
		b = b->next;
	if (!b)
		return -ENOENT;
	struct bpf_btf_info info;
	memset(&info, 0, sizeof(info));
	uint32_t n = attr->info.info_len < sizeof(info) ? attr->info.info_len : sizeof(info);
	if (safe_read(&info, attr->info.info, n) < 0)
		return -EFAULT;
	if (info.btf && safe_write(info.btf, b->data, info.btf_size < b->size ? info.btf_size : b->size) < 0)
		return -EFAULT;
	info.btf_size = b->size;
	info.id = b->id;
	long ret = 0;
	if (b->name) { /* as the kernel: name_len is the name's length; a short buffer gets a prefix, -ENOSPC */
		uint32_t len = (uint32_t)strlen(b->name), room = info.name_len;
		if (info.name && room) {
			uint32_t copy = room > len ? len : room - 1;
			char zero = 0;
			if (safe_write(info.name, b->name, copy) < 0 || safe_write(info.name + copy, &zero, 1) < 0)
				return -EFAULT;
			if (copy < len)
				ret = -ENOSPC;
		}
		info.name_len = len;
		info.kernel_btf = 1;
	} else {
		info.name = 0;
		info.name_len = 0;
		info.kernel_btf = 0;
	}
	long out = server_info_out(attr, &info, sizeof(info));
	return out < 0 ? out : ret;
}

/* BPF_BTF_GET_NEXT_ID and BPF_BTF_GET_FD_BY_ID over the kernel's BTF (id 1) and this process's. */
long bpf_btf_by_id(int cmd, union bpf_attr *attr)
{
	vmlinux_btf();
	struct btf_blob *hit = NULL;
	for (struct btf_blob *b = blobs; b; b = b->next) {
		if (cmd == BPF_BTF_GET_FD_BY_ID ? b->id == attr->btf_id
						: b->id > attr->start_id && (!hit || b->id < hit->id))
			hit = b;
	}
	if (!hit)
		return -ENOENT;
	if (cmd == BPF_BTF_GET_NEXT_ID) {
		attr->next_id = hit->id;
		return 0;
	}
	return sfd_new(SFD_BTF, hit->id, NULL);
}

const uint8_t *server_btf_bytes(int fd, uint32_t *size)
{
	struct server_fd *e = sfd_get(fd);
	if (!e || e->kind != SFD_BTF)
		return NULL;
	if (e->id == VMLINUX_BTF_ID)
		vmlinux_btf();
	for (struct btf_blob *b = blobs; b; b = b->next)
		if (b->id == e->id) {
			*size = b->size;
			return b->data;
		}
	return NULL;
}
