/** Options shared by several commands, and the parsers of numbers on the command line. */
import { InvalidArgumentError, Option } from "commander";
import { ENGINES } from "../../mod.ts";

/**
 * `--vm interp|jit|llvm`. Without it the runtime decides: the JIT, or what
 * BPFTIME_DISABLE_JIT / BPFTIME_VM_NAME say.
 */
export function engineOption(): Option {
  return new Option("--vm <engine>", "execution engine (default: jit)").choices([...ENGINES]);
}

/**
 * A parser for an integer option or argument in min..max (decimal digits only). Commander
 * reports a refusal naming the option (or argument) and the value given.
 */
export function integer(min: number, max: number): (text: string) => number {
  return (text: string) => {
    const n = /^\s*\d+\s*$/.test(text) ? Number(text) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected an integer ${min}..${max}`);
    }
    return n;
  };
}

/** A parser for a number of seconds: decimal, greater than 0 and at most `max`. */
export function seconds(max: number): (text: string) => number {
  return (text: string) => {
    const n = /^\s*(\d+(\.\d*)?|\.\d+)\s*$/.test(text) ? Number(text) : NaN;
    if (!(n > 0 && n <= max)) {
      throw new InvalidArgumentError(
        `expected a number of seconds, more than 0 and at most ${max}`,
      );
    }
    return n;
  };
}

/** Object ids (maps, programs, links) as the segment numbers them. */
export const objectId = integer(1, 0x7fffffff);
/** Process ids: a positive pid_t (whether such a process exists is the command's to say). */
export const processId = integer(1, 0x7fffffff);
