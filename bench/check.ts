/**
 * `make bench-check`: runs bench-vm and bench-uprobe, and compares every figure with the
 * committed bench/baseline.json: the VM's ratios to native (each workload on each engine, and
 * the geometric means) and the uprobe rows' ns per hit. Fails when one is more than 30% worse
 * than the baseline (for figures in ns, also more than 1 ns worse: a 3 ns row moves by 30% with
 * the noise of this shared machine). Prints the table.
 *
 * Noise: on 2 cores shared with other jobs, one figure moves by 30-70% between two runs of the
 * same code. A figure counts as worse only if it stays worse: while some are, the benchmarks
 * that gave them run again (up to RUNS times) and each figure keeps its best run. The uprobe
 * figures are measured against an unprobed twin function in the same run of the target. The baseline is written the same
 * way, from the best of WRITE_RUNS runs.
 *
 *   deno run -A bench/check.ts            run, compare
 *   deno run -A bench/check.ts --no-run   compare bench/out/*.json as they are
 *   deno run -A bench/check.ts --write    run, and write the baseline from this run
 */
const root = new URL("..", import.meta.url).pathname;
const args = new Set(Deno.args);
const TOLERANCE = 1.3, NS_SLACK = 1, RUNS = 3, WRITE_RUNS = 2;

async function run(script: string, pin: boolean) {
  const cmd = pin ? "taskset" : Deno.execPath();
  const argv = ["run", "-A", `${root}bench/${script}`];
  const out = await new Deno.Command(cmd, {
    args: pin ? ["-c", "1", Deno.execPath(), ...argv] : argv,
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (out.code !== 0) throw new Error(`bench/${script} failed (${out.code})`);
}

type Figures = Record<string, number>;
/** Runs the benchmarks (those whose figures start with a name in `only`, else all) and reads them. */
async function measure(only?: Set<string>): Promise<Figures> {
  if (!args.has("--no-run")) {
    // in-process: pinned here; uprobe_bench pins its targets itself
    if (!only || only.has("vm")) await run("vm_bench.ts", true);
    if (!only || only.has("uprobe")) await run("uprobe_bench.ts", false);
  }
  const figures: Figures = {};
  const vm = JSON.parse(await Deno.readTextFile(`${root}bench/out/vm.json`));
  for (const row of vm.rows) {
    for (const engine of ["interp", "jit", "llvm"]) {
      figures[`vm ${row.workload} ${engine} ratio`] = row[`${engine}_ratio`];
    }
  }
  for (const engine of ["interp", "jit", "llvm"]) {
    figures[`vm geomean ${engine} ratio`] = vm.summary[`${engine}_geomean_ratio`];
  }
  const uprobe = JSON.parse(await Deno.readTextFile(`${root}bench/out/uprobe.json`));
  for (const row of uprobe) figures[`uprobe ${row.probe} ${row.program} ns`] = row.ours_ns;
  return figures;
}
/* Each figure's best (lowest) of the runs so far. */
function best(a: Figures, b: Figures): Figures {
  const out: Figures = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = out[k] === undefined ? v : Math.min(out[k], v);
  return out;
}
const isWorse = (name: string, was: number, now: number) =>
  now > was * TOLERANCE && (!name.endsWith(" ns") || now - was > NS_SLACK);

const baselinePath = `${root}bench/baseline.json`;
if (args.has("--write")) {
  let figures = await measure();
  for (let i = 1; i < WRITE_RUNS && !args.has("--no-run"); i++) {
    figures = best(figures, await measure());
  }
  const note = Deno.env.get("BENCH_NOTE") ?? "";
  await Deno.writeTextFile(
    baselinePath,
    JSON.stringify({ written: new Date().toISOString(), note, figures }, null, 2) + "\n",
  );
  console.log(`baseline written to ${baselinePath}`);
  Deno.exit(0);
}

const baseline: Figures = JSON.parse(await Deno.readTextFile(baselinePath)).figures;
let figures = await measure();
for (let i = 1; i < RUNS && !args.has("--no-run"); i++) {
  const worse = Object.keys(baseline).filter((k) =>
    figures[k] !== undefined && isWorse(k, baseline[k], figures[k])
  );
  if (!worse.length) break;
  console.log(
    `worse than the baseline: ${worse.join(", ")}; measuring again (run ${i + 1} of ${RUNS})`,
  );
  // Only the benchmarks that have a worse figure run again.
  figures = best(figures, await measure(new Set(worse.map((k) => k.split(" ")[0]))));
}
const table = [];
let worse = 0;
for (const name of new Set([...Object.keys(baseline), ...Object.keys(figures)])) {
  const was = baseline[name], now = figures[name];
  let status = "ok";
  if (was === undefined) status = "new";
  else if (now === undefined) status = "missing";
  else if (isWorse(name, was, now)) status = "WORSE";
  if (status === "WORSE" || status === "missing") worse++;
  table.push({
    figure: name,
    baseline: was ?? null,
    now: now ?? null,
    change: was && now ? `${((now / was - 1) * 100).toFixed(0)}%` : "",
    status,
  });
}
console.table(table);
if (worse) {
  console.log(
    `${worse} figure(s) more than ${
      Math.round((TOLERANCE - 1) * 100)
    }% worse than bench/baseline.json`,
  );
  Deno.exit(1);
}
console.log(`every figure within ${Math.round((TOLERANCE - 1) * 100)}% of bench/baseline.json`);
