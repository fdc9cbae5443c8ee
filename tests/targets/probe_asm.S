/*
 * Functions whose first instructions an inline hook must move with care,
 * in assembly so the compiler cannot change them. Each takes an int in edi.
 */
	.intel_syntax noprefix
	.text

/* RIP-relative load first: returns rip_value + x. */
	.globl rip_first
	.type rip_first, @function
rip_first:
	mov eax, dword ptr [rip + rip_value]
	add eax, edi
	ret
	.size rip_first, . - rip_first

/* A short jump first, over bytes that are never run: returns x + 1. */
	.globl jmp_first
	.type jmp_first, @function
jmp_first:
	jmp 1f
	int3
	int3
	int3
	int3
	int3
1:	lea eax, [rdi + 1]
	ret
	.size jmp_first, . - jmp_first

/* A call first: returns 2x + 1. */
	.globl call_first
	.type call_first, @function
call_first:
	call double_it
	add eax, 1
	ret
	.size call_first, . - call_first

double_it:
	lea eax, [rdi + rdi]
	ret

/* A conditional short jump among the first bytes: returns x + 10, or -1 for 0. */
	.globl jcc_first
	.type jcc_first, @function
jcc_first:
	test edi, edi
	je 1f
	lea eax, [rdi + 10]
	ret
1:	mov eax, -1
	ret
	.size jcc_first, . - jcc_first

/* Three bytes: too short for the 5-byte jump. */
	.globl too_short
	.type too_short, @function
too_short:
	mov eax, edi
	ret
	.size too_short, . - too_short

/* A loop that jumps back to offset 2, inside the bytes a hook would replace: returns x (x >= 1). */
	.globl loop_back
	.type loop_back, @function
loop_back:
	xor eax, eax
1:	add eax, 1
	cmp eax, edi
	jl 1b
	ret
	.size loop_back, . - loop_back

	.data
	.p2align 2
rip_value:
	.long 1000

	.section .note.GNU-stack, "", @progbits
