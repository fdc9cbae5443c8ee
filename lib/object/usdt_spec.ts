/**
 * USDT argument specs: the strings <sys/sdt.h> puts in a probe's note
 * ("-4@%edi", "8@-16(%rbp)", "4@$5"), parsed, and encoded as libbpf's
 * `struct __bpf_usdt_spec` (declared in <bpf/usdt.bpf.h>, which programs
 * include; its bpf_usdt_arg() computes each argument from pt_regs and memory
 * with what we write here). x86-64 only, like the rest of the runtime.
 *
 * SIZE@LOCATION: SIZE is the argument's byte size, negative when signed.
 * LOCATION is $IMM (a constant), %REG (a register or its low part), or
 * [OFF](%REG) (memory at a register plus an offset).
 */

export const USDT_ARG = { CONST: 0, REG: 1, REG_DEREF: 2 } as const;

export interface UsdtArg {
  type: number;
  /** CONST: the value; REG_DEREF: the offset added to the register. */
  valOff: bigint;
  /** Offset of the register in struct pt_regs. */
  regOff: number;
  signed: boolean;
  /** 64 - 8 * size: what bpf_usdt_arg shifts left then right to keep `size` bytes. */
  bitshift: number;
  /** The spec as written, for messages. */
  text: string;
}

/** struct pt_regs (x86-64) offsets by 64-bit register name. */
const PT_REGS: Record<string, number> = {
  r15: 0,
  r14: 8,
  r13: 16,
  r12: 24,
  rbp: 32,
  rbx: 40,
  r11: 48,
  r10: 56,
  r9: 64,
  r8: 72,
  rax: 80,
  rcx: 88,
  rdx: 96,
  rsi: 104,
  rdi: 112,
  rip: 128,
  rsp: 152,
};

/** Every name of a register's low part (eax, ax, al; r8d, r8w, r8b) -> its 64-bit name. */
const ALIASES: Record<string, string> = (() => {
  const out: Record<string, string> = {};
  for (const r of ["ax", "bx", "cx", "dx"]) {
    const l = r[0];
    Object.assign(out, {
      [`r${r}`]: `r${r}`,
      [`e${r}`]: `r${r}`,
      [r]: `r${r}`,
      [`${l}l`]: `r${r}`,
    });
  }
  for (const r of ["si", "di", "bp", "sp"]) {
    Object.assign(out, {
      [`r${r}`]: `r${r}`,
      [`e${r}`]: `r${r}`,
      [r]: `r${r}`,
      [`${r}l`]: `r${r}`,
    });
  }
  for (let n = 8; n <= 15; n++) {
    for (const s of ["", "d", "w", "b"]) out[`r${n}${s}`] = `r${n}`;
  }
  out.rip = "rip";
  return out;
})();

export const USDT_MAX_ARGS = 12;

function register(name: string, where: string): number {
  const full = ALIASES[name.toLowerCase()];
  if (!full) throw new Error(`${where}: unknown register '%${name}'`);
  return PT_REGS[full];
}

/** One argument spec; `where` names it in errors. */
export function parseUsdtArg(text: string, where: string): UsdtArg {
  const at = `${where}: argument '${text}'`;
  const m = /^(-?)(\d+)@(.+)$/.exec(text);
  if (!m) throw new Error(`${at}: expected SIZE@LOCATION`);
  const size = Number(m[2]);
  if (![1, 2, 4, 8].includes(size)) throw new Error(`${at}: size ${size} is not 1, 2, 4 or 8`);
  const base = { signed: m[1] === "-", bitshift: 64 - 8 * size, text };
  const loc = m[3];
  let r;
  if ((r = /^\$(-?(?:0x[0-9a-fA-F]+|\d+))$/.exec(loc))) {
    const v = BigInt.asUintN(64, r[1].startsWith("-") ? -BigInt(r[1].slice(1)) : BigInt(r[1]));
    return { ...base, type: USDT_ARG.CONST, valOff: v, regOff: 0 };
  }
  if ((r = /^%([a-z0-9]+)$/i.exec(loc))) {
    if (r[1].toLowerCase() === "rip") throw new Error(`${at}: %rip is not an argument`);
    return { ...base, type: USDT_ARG.REG, valOff: 0n, regOff: register(r[1], at) };
  }
  if (/\(%rip\)$/i.test(loc)) {
    throw new Error(`${at}: %rip-relative operands (a global's address) are not supported`);
  }
  if ((r = /^(-?(?:0x[0-9a-fA-F]+|\d+))?\(%([a-z0-9]+)\)$/i.exec(loc))) {
    const off = r[1] ?? "0";
    const v = off.startsWith("-") ? -BigInt(off.slice(1)) : BigInt(off);
    return {
      ...base,
      type: USDT_ARG.REG_DEREF,
      valOff: BigInt.asUintN(64, v),
      regOff: register(r[2], at),
    };
  }
  throw new Error(
    `${at}: location '${loc}' is none of $IMM, %REG, OFF(%REG) (index registers and symbols are not supported)`,
  );
}

/** A probe's whole argument string (space-separated specs; empty: no arguments). */
export function parseUsdtArgs(args: string, where: string): UsdtArg[] {
  const parts = args.trim() ? args.trim().split(/\s+/) : [];
  if (parts.length > USDT_MAX_ARGS) {
    throw new Error(`${where}: ${parts.length} arguments, at most ${USDT_MAX_ARGS} are supported`);
  }
  return parts.map((p) => parseUsdtArg(p, where));
}

/*
 * struct __bpf_usdt_arg_spec { u64 val_off; enum arg_type (u32); short reg_off; bool arg_signed;
 * char arg_bitshift; } = 16 bytes; struct __bpf_usdt_spec { arg_spec args[12]; u64 usdt_cookie;
 * short arg_cnt; } = 208 bytes (8-aligned).
 */
export const USDT_SPEC_SIZE = 16 * USDT_MAX_ARGS + 16;

/** The value of `__bpf_usdt_specs[id]` for a site with `args` and the user's `cookie`. */
export function encodeUsdtSpec(args: readonly UsdtArg[], cookie: bigint): Uint8Array {
  const out = new Uint8Array(USDT_SPEC_SIZE);
  const v = new DataView(out.buffer);
  args.forEach((a, i) => {
    const at = i * 16;
    v.setBigUint64(at, a.valOff, true);
    v.setUint32(at + 8, a.type, true);
    v.setInt16(at + 12, a.regOff, true);
    v.setUint8(at + 14, a.signed ? 1 : 0);
    v.setInt8(at + 15, a.bitshift);
  });
  v.setBigUint64(16 * USDT_MAX_ARGS, BigInt.asUintN(64, cookie), true);
  v.setInt16(16 * USDT_MAX_ARGS + 8, args.length, true);
  return out;
}
