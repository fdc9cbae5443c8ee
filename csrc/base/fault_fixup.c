/*
 * The registry of fault_fixup.h: a fixed array of slots, each a small seqlock (an odd sequence
 * number while a writer changes it). The handler reads a slot's code extent and checks that the
 * sequence did not move; only when the faulting address lies inside that extent does it read
 * the table, which lives in the same mapping as the faulting code, so it stays mapped for as
 * long as that code runs (a slot is withdrawn before its code is unmapped). No lock, no call:
 * safe in a signal handler, in any thread, at any moment of a writer.
 */
#include "fault_fixup.h"

#include <stdatomic.h>

#define FAULT_FIXUP_SLOTS 1024

struct slot {
	_Atomic uint32_t claimed;
	_Atomic uint32_t seq;
	_Atomic uintptr_t code, len, table;
	_Atomic uint32_t n;
};

static struct slot slots[FAULT_FIXUP_SLOTS];
static _Atomic uint32_t slots_used; /* slots at or above this index were never claimed */

uint32_t fault_fixup_reserve(void)
{
	for (uint32_t i = 0; i < FAULT_FIXUP_SLOTS; i++) {
		uint32_t free_ = 0;
		if (atomic_compare_exchange_strong(&slots[i].claimed, &free_, 1)) {
			uint32_t used = atomic_load(&slots_used);
			while (used <= i && !atomic_compare_exchange_weak(&slots_used, &used, i + 1))
				;
			return i + 1;
		}
	}
	return 0;
}

static void write_slot(struct slot *s, uintptr_t code, size_t len, const struct fault_fixup *table,
		       uint32_t n)
{
	uint32_t seq = atomic_load_explicit(&s->seq, memory_order_relaxed);
	atomic_store_explicit(&s->seq, seq + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	atomic_store_explicit(&s->code, code, memory_order_relaxed);
	atomic_store_explicit(&s->len, len, memory_order_relaxed);
	atomic_store_explicit(&s->table, (uintptr_t)table, memory_order_relaxed);
	atomic_store_explicit(&s->n, n, memory_order_relaxed);
	atomic_store_explicit(&s->seq, seq + 2, memory_order_release);
}

void fault_fixup_publish(uint32_t slot, uintptr_t code, size_t len, const struct fault_fixup *table,
			 uint32_t n)
{
	if (slot == 0 || slot > FAULT_FIXUP_SLOTS)
		return;
	write_slot(&slots[slot - 1], code, len, table, n);
}

void fault_fixup_release(uint32_t slot)
{
	if (slot == 0 || slot > FAULT_FIXUP_SLOTS)
		return;
	write_slot(&slots[slot - 1], 0, 0, NULL, 0);
	atomic_store(&slots[slot - 1].claimed, 0);
}

uintptr_t fault_fixup_find(uintptr_t ip)
{
	uint32_t used = atomic_load_explicit(&slots_used, memory_order_acquire);
	for (uint32_t i = 0; i < used && i < FAULT_FIXUP_SLOTS; i++) {
		struct slot *s = &slots[i];
		uint32_t seq = atomic_load_explicit(&s->seq, memory_order_acquire);
		if (seq & 1)
			continue; /* being changed: not the code that is running here */
		uintptr_t code = atomic_load_explicit(&s->code, memory_order_relaxed);
		uintptr_t len = atomic_load_explicit(&s->len, memory_order_relaxed);
		uintptr_t table = atomic_load_explicit(&s->table, memory_order_relaxed);
		uint32_t n = atomic_load_explicit(&s->n, memory_order_relaxed);
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&s->seq, memory_order_relaxed) != seq || ip - code >= len)
			continue;
		const struct fault_fixup *t = (const struct fault_fixup *)table;
		uint32_t off = (uint32_t)(ip - code);
		for (uint32_t k = 0; k < n; k++)
			if (off >= t[k].start && off < t[k].end)
				return code + t[k].fixup;
		return 0; /* inside this code but not a read that may fault */
	}
	return 0;
}
