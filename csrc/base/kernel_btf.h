/*
 * The running kernel's BTF (/sys/kernel/btf/vmlinux, world-readable): struct
 * sizes and member offsets by name, for the objects the runtime lays out as
 * the kernel does (the synthetic task_struct, tracepoint records). Read once
 * by whoever needs a layout, kept only while the layout is computed (the file
 * is several MB): open, ask, close.
 */
#ifndef BPFTIME_KERNEL_BTF_H
#define BPFTIME_KERNEL_BTF_H

#include "base.h"

#include <stdint.h>

struct kbtf;

/* The BTF at `path` (NULL: /sys/kernel/btf/vmlinux), or NULL with the error set. */
HIDDEN struct kbtf *kbtf_open(const char *path);
HIDDEN void kbtf_close(struct kbtf *b);
/* The id of struct (or union) `name`, its size in *size; 0 when there is none. */
HIDDEN uint32_t kbtf_struct(const struct kbtf *b, const char *name, uint32_t *size);
/*
 * The byte offset of member `name` of struct/union `id`, looking into anonymous
 * struct and union members as C does; the member's size in *size (0 for a
 * flexible array) and its struct/union type id in *type_id (0 when it is none),
 * either may be NULL. -1 when there is no such member (or it is a bitfield).
 */
HIDDEN int64_t kbtf_member(const struct kbtf *b, uint32_t id, const char *name, uint32_t *size,
			   uint32_t *type_id);
/* kbtf_member along a path "a.b.c" from struct `name`; -1 when a step is missing. */
HIDDEN int64_t kbtf_offset(const struct kbtf *b, const char *name, const char *path, uint32_t *size);

#endif
