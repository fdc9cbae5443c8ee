# bpftime: C core (csrc/) built into shared libraries, driven by Deno (cli/, ffi/, mod.ts).
SHELL := /bin/bash
DENO := node_modules/.bin/deno
DENO_PERMS := --allow-all
CC := gcc
CLANG := clang-14
CFLAGS := -std=gnu11 -O2 -g -fPIC -fno-semantic-interposition -Wall -Wextra -Werror -fvisibility=hidden -Ibuild/gen
BPF_CFLAGS := -target bpf -D__TARGET_ARCH_x86 -g -O2 -Ibuild -Ibpf

# The layers of csrc/, bottom up (docs: /work/shared/ARCHITECTURE.md, "One direction of dependencies"):
# base <- vm; base <- shm <- maps; helpers + runtime on those; hook, agent, server on top.
BASE_SRCS := $(wildcard csrc/base/*.c)
VM_ONLY_SRCS := $(wildcard csrc/vm/*.c)
SHM_MAPS_SRCS := $(wildcard csrc/shm/*.c csrc/maps/*.c)
RUNTIME_SRCS := $(wildcard csrc/helpers/*.c csrc/runtime/*.c)
VM_SRCS := $(BASE_SRCS) $(VM_ONLY_SRCS) $(SHM_MAPS_SRCS) $(RUNTIME_SRCS)
GEN_HDRS := build/gen/syscall_nrs.h
VM_HDRS := $(wildcard csrc/base/*.h csrc/vm/*.h csrc/vm/*.def csrc/include/*.h csrc/shm/*.h csrc/maps/*.h csrc/helpers/*.h csrc/runtime/*.h) $(GEN_HDRS)
BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_OBJS := $(patsubst bpf/%.bpf.c,build/bpf/%.bpf.o,$(BPF_SRCS))
WORKLOAD_SRCS := $(wildcard bench/workloads/*.c)
N ?= 100000
LLVM_N ?=
SEED ?=

.PHONY: all setup build examples demo demo-vm test test-targets check fmt lint bench bench-vm bench-maps bench-attach bench-uprobe bench-server bench-syscall bench-check bench-proctrace bench-daemon fuzz-vm clean

all: build

setup:
	@scripts/setup.sh

build: setup build/libbpftime.so build/libbpftime-proctrace.so build/libbpftime-llvm.so build/libbpftime-agent.so build/bpftime-inject build/libbpftime-syscall-server.so $(BPF_OBJS) build/bench/workloads.bpf.o

# Syscall numbers by name, from the kernel headers (csrc/base/syscall_names.c includes it).
build/gen/syscall_nrs.h:
	@mkdir -p build/gen
	echo '#include <asm/unistd_64.h>' | $(CC) -dM -E - | \
		sed -n 's/^#define __NR_\([a-z0-9_]*\) \([0-9][0-9]*\)$$/SYSCALL_NR(\1, \2)/p' | sort -t, -k2 -n > $@.tmp
	test -s $@.tmp && mv $@.tmp $@

build/libbpftime.so: $(VM_SRCS) $(VM_HDRS)
	@mkdir -p build
	$(CC) $(CFLAGS) -shared -o $@ $(VM_SRCS) -ldl -lpthread -lrt

# Layering checks (tests/layering_test.ts): the VM, and the segment with its maps, each link on
# their own with the base and libc only. -O0: only the link matters here, and it is quicker.
LAYER_LINK = $(CC) $(CFLAGS) -O0 -g0 -shared -o $@ $(filter %.c,$^) -Wl,--no-undefined -ldl -lpthread -lrt
build/layering/vm.so: $(BASE_SRCS) $(VM_ONLY_SRCS) $(wildcard csrc/base/*.h csrc/include/*.h csrc/vm/*.h csrc/vm/*.def) $(GEN_HDRS)
	@mkdir -p build/layering
	$(LAYER_LINK)
build/layering/shm_maps.so: $(BASE_SRCS) $(SHM_MAPS_SRCS) $(wildcard csrc/base/*.h csrc/include/*.h csrc/shm/*.h csrc/maps/*.h) $(GEN_HDRS)
	@mkdir -p build/layering
	$(LAYER_LINK)

# The agent: the runtime plus inline hooks, LD_PRELOAD'ed into traced processes.
AGENT_SRCS := $(wildcard csrc/agent/*.c csrc/agent/*.S csrc/hook/*.c csrc/hook/*.S)
AGENT_HDRS := $(wildcard csrc/agent/*.h csrc/hook/*.h)
build/libbpftime-agent.so: $(VM_SRCS) $(VM_HDRS) $(AGENT_SRCS) $(AGENT_HDRS)
	@mkdir -p build
	$(CC) $(CFLAGS) -shared -Wl,-Bsymbolic -o $@ $(VM_SRCS) $(AGENT_SRCS) -lZydis -ldl -lpthread -lrt

# The syscall server: the runtime answering an unmodified libbpf application's eBPF calls (`bpftime load`).
SERVER_SRCS := $(wildcard csrc/server/*.c)
SERVER_HDRS := $(wildcard csrc/server/*.h)
# `bpftime attach`: a helper of its own (a ptrace tracer is one thread, apart from Deno's).
build/bpftime-inject: $(wildcard csrc/inject/*.c csrc/inject/*.h)
	@mkdir -p build
	$(CC) $(CFLAGS) -o $@ $(filter %.c,$^)

build/libbpftime-syscall-server.so: $(VM_SRCS) $(VM_HDRS) $(SERVER_SRCS) $(SERVER_HDRS)
	@mkdir -p build
	$(CC) $(CFLAGS) -shared -Wl,-Bsymbolic -o $@ $(VM_SRCS) $(SERVER_SRCS) -ldl -lpthread -lrt

# The process tracer's kernel-mode loader: its own library, so only it links Debian's libbpf.
PROCTRACE_SRCS := $(wildcard csrc/proctrace/*.c)
build/libbpftime-proctrace.so: $(PROCTRACE_SRCS) $(wildcard csrc/proctrace/*.h) bpf/proctrace.h
	@mkdir -p build
	$(CC) $(CFLAGS) -Ibpf -shared -Wl,--no-undefined -o $@ $(PROCTRACE_SRCS) -lbpf -lpthread

# The LLVM tier: its own library, dlopen'ed by libbpftime.so only when asked for.
LLVM_CONFIG := llvm-config-14
build/libbpftime-llvm.so: csrc/llvm/llvm_jit.c csrc/vm/program_shape.c $(VM_HDRS)
	@mkdir -p build
	$(CC) $(CFLAGS) $$($(LLVM_CONFIG) --cflags | sed 's/-std=[^ ]*//') -shared -o $@ \
		csrc/llvm/llvm_jit.c csrc/vm/program_shape.c $$($(LLVM_CONFIG) --ldflags) -lLLVM-14

# Kernel types for eBPF programs, from the running kernel's BTF.
build/vmlinux.h:
	@mkdir -p build
	bpftool btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

build/bpf/%.bpf.o: bpf/%.bpf.c build/vmlinux.h $(wildcard bpf/*.h)
	@mkdir -p build/bpf
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@
# proctrace reserves data pages with an atomic fetch-and-add (BPF ISA v3).
build/bpf/proctrace.bpf.o: BPF_CFLAGS += -mcpu=v3

# Benchmark workloads: one C source compiled to eBPF and to native code.
build/bench/workloads.bpf.o: $(WORKLOAD_SRCS) bench/workloads/workloads.h
	@mkdir -p build/bench
	$(CLANG) -target bpf -O2 -fno-builtin -c bench/workloads/all.c -o $@

build/bench/libnative.so: $(WORKLOAD_SRCS) bench/workloads/workloads.h bench/native_harness.c
	@mkdir -p build/bench
	$(CLANG) -O2 -fno-builtin -fPIC -shared -Wall -Wextra -Werror -o $@ bench/workloads/all.c bench/native_harness.c

# The README's main job: count malloc calls in processes started with `bpftime start`.
EXAMPLE_APPS := build/examples/malloc build/examples/bashreadline build/examples/opensnoop build/examples/syscount \
	build/examples/errinject build/examples/errinject_victim build/examples/hotpatch_server \
	build/examples/shared_count_kernel build/examples/shared_count_worker build/bpf/shared_count.bpf.o
examples: $(EXAMPLE_APPS) build/examples/malloc_victim

demo: build build/examples/malloc_victim
	examples/malloc/demo.sh

demo-vm: build
	$(DENO) run $(DENO_PERMS) examples/vm_demo/main.ts

fmt:
	$(DENO) fmt

lint:
	$(DENO) lint

check: setup
	$(DENO) fmt --check
	$(DENO) lint

# Traced programs and probes of the uprobe tests: PIE, non-PIE, and the asm in a shared library.
TEST_BPF_OBJS := $(patsubst tests/bpf/%.bpf.c,build/tests/%.bpf.o,$(wildcard tests/bpf/*.bpf.c))
TARGET_SRCS := tests/targets/probe_target.c tests/targets/probe_asm.S
TEST_TARGETS := build/tests/probe_target build/tests/probe_target_nopie build/tests/probe_target_lib \
	build/examples/malloc_victim build/tests/libbpf_insns build/tests/ring_consumer build/tests/bpf_bad_calls build/tests/live_target \
	build/tests/libprobe_asm.so build/tests/libctor_dlopen.so build/tests/open_target build/tests/segv_chain $(EXAMPLE_APPS)
test-targets: $(TEST_BPF_OBJS) $(TEST_TARGETS)

build/tests/%.bpf.o: tests/bpf/%.bpf.c build/vmlinux.h $(wildcard tests/bpf/*.h)
	@mkdir -p build/tests
	$(CLANG) $(BPF_CFLAGS) -Itests/bpf -c $< -o $@
build/tests/probe_target: $(TARGET_SRCS)
	@mkdir -p build/tests
	$(CC) -O2 -g -Wall -Wextra -Werror -pie -fPIE -o $@ $(TARGET_SRCS) -lpthread
build/tests/probe_target_nopie: $(TARGET_SRCS)
	@mkdir -p build/tests
	$(CC) -O2 -g -Wall -Wextra -Werror -no-pie -fno-pie -o $@ $(TARGET_SRCS) -lpthread
# The pid/tgid cache test's target (tests/pid_tgid_cache_test.ts).
test-targets: build/tests/pid_target
build/tests/pid_target: tests/targets/pid_target.c tests/targets/pid_xmm.S
	@mkdir -p build/tests
	$(CC) -O2 -g -Wall -Wextra -Werror -o $@ $^ -lpthread
build/tests/libprobe_asm.so: tests/targets/probe_asm.S
	@mkdir -p build/tests
	$(CC) -shared -fPIC -o $@ $<
build/tests/probe_target_lib: tests/targets/probe_target.c build/tests/libprobe_asm.so
	$(CC) -O2 -g -Wall -Wextra -Werror -o $@ $< -Lbuild/tests -lprobe_asm -Wl,-rpath,'$$ORIGIN' -lpthread
build/tests/ring_consumer: tests/targets/ring_consumer.c
	@mkdir -p build/tests
	$(CC) -O2 -g -Wall -Wextra -Werror -o $@ $< -lbpf
# A target with its own SIGSEGV handler that reads bad memory through the runtime (tests/safe_read_test.ts).
build/tests/segv_chain: tests/targets/segv_chain.c build/libbpftime.so
	@mkdir -p build/tests
	$(CC) -O2 -g -Wall -Wextra -Werror -o $@ $< -Lbuild -lbpftime -Wl,-rpath,'$$ORIGIN/..'

# Inline probe reads of bad memory in threads, signal handlers and a forked child
# (tests/probe_read_inline_test.ts).
test-targets: build/tests/inline_read_stress
build/tests/inline_read_stress: tests/targets/inline_read_stress.c build/libbpftime.so
	@mkdir -p build/tests
	$(CC) -O2 -g -Wall -Wextra -Werror -o $@ $< -Lbuild -lbpftime -Wl,-rpath,'$$ORIGIN/..' -lpthread

build/tests/open_target: tests/targets/open_target.c
	@mkdir -p build/tests
	$(CC) -O2 -g -Wall -Wextra -Werror -o $@ $<
build/tests/live_target: tests/targets/live_target.c
	@mkdir -p build/tests
	$(CC) -O2 -g -Wall -Wextra -Werror -o $@ $< -lpthread -ldl
build/tests/libctor_dlopen.so: tests/targets/ctor_dlopen.c
	@mkdir -p build/tests
	$(CC) -O2 -g -Wall -Wextra -Werror -shared -fPIC -o $@ $< -ldl
build/tests/bpf_pins_links: tests/targets/bpf_pins_links.c tests/targets/bpf_answers.h
	@mkdir -p build/tests
	$(CC) -O2 -g -Wall -Wextra -Werror -o $@ $<
build/tests/bpf_spin_locks: tests/targets/bpf_spin_locks.c tests/targets/bpf_answers.h
	@mkdir -p build/tests
	$(CC) -O2 -g -Wall -Wextra -Werror -o $@ $<
test-targets: build/tests/bpf_pins_links build/tests/bpf_spin_locks
build/tests/bpf_bad_calls: tests/targets/bpf_bad_calls.c tests/targets/bpf_answers.h
	@mkdir -p build/tests
	$(CC) -O2 -g -Wall -Wextra -Werror -o $@ $<
build/tests/libbpf_insns: tests/targets/libbpf_insns.c
	@mkdir -p build/tests
	$(CC) -O2 -g -Wall -Wextra -Werror -o $@ $< -lbpf
# The probe fast path test's target (tests/probe_fast_test.ts).
test-targets: build/tests/probe_fast_target
build/tests/probe_fast_target: tests/targets/probe_fast_target.c tests/targets/probe_fast_regs.S
	@mkdir -p build/tests
	$(CC) -O2 -g -Wall -Wextra -Werror -o $@ $^ -lpthread
# libbpf applications built the libbpf-bootstrap way: bpftool skeleton, Debian's libbpf.
build/examples/%.skel.h: build/bpf/%.bpf.o
	@mkdir -p build/examples
	bpftool gen skeleton $< name $*_bpf > $@.tmp && mv $@.tmp $@
LIBBPF_APP = $(CC) -O2 -g -Wall -Wextra -Werror -Ibuild/examples -Ibpf -o $@ $< -lbpf -lelf -lz
# shared_count: a kernel program and a userspace uprobe program counting into one kernel map.
build/examples/shared_count_kernel: examples/shared_count/kernel_side.c
	@mkdir -p build/examples
	$(CC) -O2 -g -Wall -Wextra -Werror -o $@ $< -lbpf -lelf -lz
build/examples/shared_count_worker: examples/shared_count/worker.c
	@mkdir -p build/examples
	$(CC) -O2 -g -Wall -Wextra -Werror -o $@ $<
# tests/shared_count_test.ts runs the example under `make test`.
test-targets: build/examples/shared_count_kernel build/examples/shared_count_worker
build/examples/malloc: examples/malloc/malloc.c build/examples/malloc.skel.h
	$(LIBBPF_APP)
build/examples/bashreadline: examples/bashreadline/bashreadline.c build/examples/bashreadline.skel.h bpf/bashreadline.h
	$(LIBBPF_APP)
build/examples/opensnoop: examples/opensnoop/opensnoop.c build/examples/opensnoop.skel.h bpf/opensnoop.h
	$(LIBBPF_APP)
# syscount's names: generated from the kernel headers' asm/unistd_64.h, never written by hand.
build/examples/syscall_names.h: scripts/gen_syscall_names.sh
	@mkdir -p build/examples
	scripts/gen_syscall_names.sh > $@.tmp && mv $@.tmp $@
build/examples/syscount: examples/syscount/syscount.c build/examples/syscount.skel.h bpf/syscount.h build/examples/syscall_names.h
	$(LIBBPF_APP)
build/examples/malloc_victim: examples/malloc/victim.c
	@mkdir -p build/examples
	$(CC) -O2 -g -Wall -Wextra -Werror -o $@ $<

test: build test-targets check
	$(DENO) test --allow-all tests/

bench: bench-vm bench-maps bench-uprobe bench-server bench-syscall bench-attach

bench-server: build test-targets
	$(DENO) run $(DENO_PERMS) bench/server_bench.ts

build/bench/uprobe_target: bench/uprobe/target.c
	@mkdir -p build/bench
	$(CC) -O2 -g -Wall -Wextra -Werror -o $@ $<
build/bench/uprobe_probes.bpf.o: bench/uprobe/probes.bpf.c build/vmlinux.h
	@mkdir -p build/bench
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@
build/bench/kernel_probe: bench/uprobe/kernel_probe.c
	@mkdir -p build/bench
	$(CC) -O2 -g -Wall -Wextra -Werror -o $@ $< -lbpf

# `bpftime attach` on redis-server: time to attach, and requests/s plain, with an idle agent, with
# our uprobe and with the same kernel uprobe (bench/attach/kernel_hold: libbpf).
build/bench/kernel_hold: bench/attach/kernel_hold.c
	@mkdir -p build/bench
	$(CC) -O2 -g -Wall -Wextra -Werror -o $@ $< -lbpf

bench-attach: build build/bench/uprobe_probes.bpf.o build/bench/kernel_hold
	$(DENO) run $(DENO_PERMS) bench/attach_bench.ts

bench-uprobe: build build/bench/uprobe_target build/bench/uprobe_probes.bpf.o build/bench/kernel_probe
	$(DENO) run $(DENO_PERMS) bench/uprobe_bench.ts

# Syscall tracepoints: getppid in a loop, programs on sys_enter_getppid and raw_syscalls/sys_enter.
build/bench/syscall_target: bench/syscall/target.c
	@mkdir -p build/bench
	$(CC) -O2 -g -Wall -Wextra -Werror -o $@ $<
build/bench/syscall_probes.bpf.o: bench/syscall/probes.bpf.c build/vmlinux.h
	@mkdir -p build/bench
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@
build/bench/kernel_tp: bench/syscall/kernel_tp.c
	@mkdir -p build/bench
	$(CC) -O2 -g -Wall -Wextra -Werror -o $@ $< -lbpf

bench-syscall: build build/bench/syscall_target build/bench/syscall_probes.bpf.o build/bench/kernel_tp
	$(DENO) run $(DENO_PERMS) bench/syscall_bench.ts

build/bench/libmapsbench.so: bench/maps_harness.c csrc/base/map_hash.h build/libbpftime.so
	@mkdir -p build/bench
	$(CC) -O2 -fPIC -shared -Wall -Wextra -Werror -o $@ bench/maps_harness.c -Lbuild -lbpftime -Wl,-rpath,'$$ORIGIN/..'

# The process tracer: N short processes traced in kernel mode, userspace mode and by bpftrace.
build/bench/proctrace_spawner: bench/proctrace/spawner.c
	@mkdir -p build/bench
	$(CC) -O2 -g -Wall -Wextra -Werror -o $@ $<

bench-proctrace: build build/bench/proctrace_spawner
	$(DENO) run $(DENO_PERMS) bench/proctrace_bench.ts

bench-maps: build build/bench/libmapsbench.so
	$(DENO) run $(DENO_PERMS) bench/maps_bench.ts

# Runs bench-vm, bench-uprobe and bench-maps and fails when a figure is >30% worse than bench/baseline.json
# (not part of `make test`). BENCH_WRITE=1 writes the baseline from this run instead.
bench-check: build build/bench/workloads.bpf.o build/bench/libnative.so build/bench/uprobe_target build/bench/uprobe_probes.bpf.o build/bench/kernel_probe build/bench/libmapsbench.so
	$(DENO) run $(DENO_PERMS) bench/check.ts $(if $(BENCH_WRITE),--write)

bench-vm: build build/bench/workloads.bpf.o build/bench/libnative.so
	$(DENO) run $(DENO_PERMS) bench/vm_bench.ts

fuzz-vm: build
	$(DENO) run $(DENO_PERMS) tests/fuzz/vm_fuzz.ts "$(N)" "$(LLVM_N)" "$(SEED)"

clean:
	rm -rf build

# Syscall hooks (csrc/hook/syscall_*): a target linking the hook module directly, and a library it dlopens.
SYSCALL_HOOK_SRCS := csrc/hook/syscall_hook.c csrc/hook/syscall_stubs.S csrc/hook/patch.c \
	csrc/hook/relocate.c csrc/hook/trampoline_alloc.c
build/tests/syscall_target: tests/targets/syscall_target.c tests/targets/syscall_regs.S $(SYSCALL_HOOK_SRCS) $(wildcard csrc/hook/*.h) \
		build/tests/libsyscall_dl.so
	@mkdir -p build/tests
	$(CC) -std=gnu11 -O2 -g -Wall -Wextra -Werror -fvisibility=hidden -o $@ tests/targets/syscall_target.c \
		tests/targets/syscall_regs.S $(SYSCALL_HOOK_SRCS) -lZydis -ldl -lpthread
build/tests/libsyscall_dl.so: tests/targets/syscall_dl.c
	@mkdir -p build/tests
	$(CC) -std=gnu11 -O2 -g -Wall -Wextra -Werror -shared -fPIC -o $@ $<
test-targets: build/tests/syscall_target

# Syscall tracepoints (agent/syscall_probes.c): a target run under the agent, and a libbpf application.
build/tests/tp_target: tests/targets/tp_target.c
	@mkdir -p build/tests
	$(CC) -std=gnu11 -O2 -g -Wall -Wextra -Werror -o $@ $< -ldl -lpthread
build/tests/%.skel.h: build/tests/%.bpf.o
	bpftool gen skeleton $< name $*_bpf > $@.tmp && mv $@.tmp $@
build/tests/tp_opens: tests/targets/tp_opens.c build/tests/tp_opens.skel.h
	$(CC) -O2 -g -Wall -Wextra -Werror -Ibuild/tests -o $@ $< -lbpf -lelf -lz
test-targets: build/tests/tp_target build/tests/tp_opens

# Map kill tests (tests/map_kill_test.ts): a process hammering one map, killed at random points.
build/tests/map_hammer: tests/targets/map_hammer.c build/libbpftime.so
	@mkdir -p build/tests
	$(CC) -std=gnu11 -O2 -g -Wall -Wextra -Werror -o $@ $< -Lbuild -lbpftime -Wl,-rpath,'$$ORIGIN/..'
test-targets: build/tests/map_hammer

# `bpftime attach` (tests/attach_test.ts): a target started without the agent, and a static one.
build/tests/attach_target: tests/targets/attach_target.c
	@mkdir -p build/tests
	$(CC) -std=gnu11 -O2 -g -Wall -Wextra -Werror -o $@ $< -lpthread
build/tests/attach_static: tests/targets/attach_target.c
	@mkdir -p build/tests
	$(CC) -std=gnu11 -O2 -g -Wall -Wextra -Werror -DATTACH_STATIC -static -o $@ $< -lpthread
build/tests/libslow_ctor.so: tests/targets/slow_ctor.c
	@mkdir -p build/tests
	$(CC) -std=gnu11 -O2 -g -Wall -Wextra -Werror -shared -fPIC -o $@ $<
test-targets: build/tests/attach_target build/tests/attach_static build/tests/libslow_ctor.so

# The sched tracepoint test (tests/sched_tracepoint_test.ts): a libbpf loader and a child with known exits.
test-targets: build/tests/sched_trace build/tests/proc_child
build/tests/sched_trace: tests/targets/sched_trace.c tests/bpf/sched_proc.h
	@mkdir -p build/tests
	$(CC) -O2 -g -Wall -Wextra -Werror -Itests/bpf -o $@ $< -lbpf
build/tests/proc_child: tests/targets/proc_child.c
	@mkdir -p build/tests
	$(CC) -O2 -g -Wall -Wextra -Werror -o $@ $< -lpthread

# USDT (tests/usdt_test.ts): a target with <sys/sdt.h> probes (one behind a semaphore), and a libbpf
# application attaching tests/bpf/usdt_args.bpf.c to them with bpf_program__attach_usdt.
# <bpf/usdt.bpf.h> includes <linux/errno.h>, whose <asm/errno.h> is under the multiarch directory.
build/tests/usdt_args.bpf.o: BPF_CFLAGS += -I/usr/include/$(shell $(CC) -dumpmachine) \
	-DUSDT_TARGET='"$(CURDIR)/build/tests/usdt_target"'
build/tests/usdt_target: tests/targets/usdt_target.c tests/targets/usdt_guarded.c
	@mkdir -p build/tests
	$(CC) -O2 -g -Wall -Wextra -Werror -o $@ $^
build/tests/usdt_events: tests/targets/usdt_events.c build/tests/usdt_args.skel.h tests/bpf/usdt_event.h
	$(CC) -O2 -g -Wall -Wextra -Werror -Ibuild/tests -Itests/bpf -o $@ $< -lbpf -lelf -lz
test-targets: build/tests/usdt_target build/tests/usdt_events

# Override and replace (tests/override_test.ts): a target whose compute() programs return for.
build/tests/override_target: tests/targets/override_target.c
	@mkdir -p build/tests
	$(CC) -O2 -g -Wall -Wextra -Werror -o $@ $<
build/tests/override_perf: tests/targets/override_perf.c
	@mkdir -p build/tests
	$(CC) -O2 -g -Wall -Wextra -Werror -o $@ $<
test-targets: build/tests/override_target build/tests/override_perf

# Error injection (examples/errinject): a libbpf application making malloc fail, and its target.
build/examples/errinject: examples/errinject/errinject.c build/examples/errinject.skel.h bpf/errinject.h
	$(LIBBPF_APP)
build/examples/errinject_victim: examples/errinject/victim.c
	@mkdir -p build/examples
	$(CC) -O2 -g -Wall -Wextra -Werror -o $@ $<
# Hot patching (examples/hotpatch): a server with an out-of-bounds bug; its fix is bpf/hotpatch.bpf.c.
build/examples/hotpatch_server: examples/hotpatch/server.c bpf/hotpatch.h
	@mkdir -p build/examples
	$(CC) -O2 -g -Wall -Wextra -Werror -Ibpf -o $@ $<

# bpftrace's /usr/sbin tools (tests/bpftrace_tools_test.ts): the scripted activity, one mode per tool.
build/tests/bt_tools_target: tests/targets/bt_tools_target.c
	@mkdir -p build/tests
	$(CC) -std=gnu11 -O2 -g -Wall -Wextra -Werror -o $@ $< -lpthread
test-targets: build/tests/bt_tools_target

# `bpftime daemon`: a process of its own (libbpf for the kernel tracer, the segment through
# libbpftime.so's API), run by cli/daemon.ts.
DAEMON_SRCS := $(wildcard csrc/daemon/*.c)
build/daemon/daemon_tracer.skel.h: build/bpf/daemon_tracer.bpf.o
	@mkdir -p build/daemon
	bpftool gen skeleton $< name daemon_tracer_bpf > $@.tmp && mv $@.tmp $@
build/bpftime-daemon: $(DAEMON_SRCS) $(wildcard csrc/daemon/*.h) bpf/daemon_tracer.h build/daemon/daemon_tracer.skel.h \
		build/libbpftime.so csrc/maps/kernel_map.h
	$(CC) $(CFLAGS) -Ibuild/daemon -Ibpf -o $@ $(DAEMON_SRCS) -Lbuild -lbpftime -Wl,-rpath,'$$ORIGIN' -lbpf -lelf -lz
build: build/bpftime-daemon
build/tests/daemon_tool: tests/targets/daemon_tool.c
	@mkdir -p build/tests
	$(CC) -O2 -g -Wall -Wextra -Werror -o $@ $< -lbpf -lelf -lz
test-targets: build/tests/daemon_tool build/bpftime-daemon
build/tests/daemon_events: tests/targets/daemon_events.c
	@mkdir -p build/tests
	$(CC) -O2 -g -Wall -Wextra -Werror -o $@ $< -lbpf -lelf -lz
test-targets: build/tests/daemon_events

# `bpftime daemon`: a tool's uprobe program on a kernel uprobe vs redirected to userspace, and
# kernel-fronting map operations (root).
build/bench/kring_harness: bench/kring_harness.c build/libbpftime.so
	@mkdir -p build/bench
	$(CC) -O2 -Wall -Wextra -Werror -o $@ $< -Lbuild -lbpftime -Wl,-rpath,'$$ORIGIN/..' -lpthread
bench-daemon: build test-targets build/bench/kring_harness
	$(DENO) run $(DENO_PERMS) bench/daemon_bench.ts
