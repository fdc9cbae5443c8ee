# FNV-1a 64-bit hash of the memory block (r1 = data, r2 = length).
        lddw %r0, 0xcbf29ce484222325    # offset basis
        lddw %r3, 0x100000001b3         # FNV prime
        mov %r4, 0                      # index
loop:
        jge %r4, %r2, done
        mov %r5, %r1
        add %r5, %r4
        ldxb %r5, [%r5]
        xor %r0, %r5
        mul %r0, %r3
        add %r4, 1
        ja loop
done:
        exit
