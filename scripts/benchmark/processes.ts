/**
 * Where CPU time and memory go while the benchmark runs, read from `/proc`:
 * the `track` function's Deno processes (the gateway's workers), the gateway
 * itself, the Postgres server (the postmaster and its children), this load
 * generator, and the whole machine. Other stacks on the same machine have
 * their own gateway and postmaster and are not counted.
 *
 * Postgres backends come and go with connections; the postmaster's
 * `cutime + cstime` holds the CPU time of the children it has reaped, so the
 * Postgres total stays exact across a backend's exit.
 *
 * @example
 * ```ts
 * import { cpuDelta, findProcesses, snapshot } from "./processes.ts";
 *
 * async function cpuOf(gatewayPid: number, postmasterPid: number, load: () => Promise<void>) {
 *   const watched = await findProcesses(gatewayPid, postmasterPid);
 *   const before = await snapshot(watched);
 *   await load();
 *   return cpuDelta(before, await snapshot(watched)); // seconds per process group
 * }
 * ```
 *
 * @module
 */
import { fileURLToPath } from "node:url";

const clockTicks = await (async () => {
  const { stdout } = await new Deno.Command("getconf", { args: ["CLK_TCK"] }).output();
  return Number(new TextDecoder().decode(stdout).trim()) || 100;
})();

const root = fileURLToPath(new URL("../../", import.meta.url)).replace(/\/$/, "");

async function pgrep(args: string[]): Promise<number[]> {
  const { stdout } = await new Deno.Command("pgrep", { args }).output();
  return new TextDecoder().decode(stdout).split("\n").filter(Boolean).map(Number);
}

function readText(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
}

interface ProcStat {
  ppid: number;
  /** utime + stime, in seconds. */
  own: number;
  /** cutime + cstime (reaped children), in seconds. */
  children: number;
}

function procStat(pid: number): ProcStat | undefined {
  const text = readText(`/proc/${pid}/stat`);
  if (!text) return undefined;
  // The command name may hold spaces; fields resume after its closing parenthesis.
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const n = (i: number) => Number(fields[i - 3]);
  return {
    ppid: n(4),
    own: (n(14) + n(15)) / clockTicks,
    children: (n(16) + n(17)) / clockTicks,
  };
}

/** Resident memory of a process, in MiB. */
export function rssMiB(pid: number): number | undefined {
  const match = readText(`/proc/${pid}/status`)?.match(/^VmRSS:\s+(\d+) kB/m);
  return match ? Number(match[1]) / 1024 : undefined;
}

/** The processes the benchmark watches. */
export interface Watched {
  /** The `track` function's worker processes. */
  functionPids: number[];
  /** The gateway in front of them (JWT check and proxy). */
  gatewayPids: number[];
  /** The Postgres server's postmaster. */
  postmasterPid: number;
}

/** The parent of a process, as `/proc` tells it. */
export function parentOf(pid: number): number | undefined {
  return procStat(pid)?.ppid;
}

/**
 * Finds the `track` function's processes that the gateway `gatewayPid`
 * started, and records which postmaster to count as Postgres.
 */
export async function findProcesses(gatewayPid: number, postmasterPid: number): Promise<Watched> {
  const gatewayPids = procStat(gatewayPid) ? [gatewayPid] : [];
  const entry = `${root}/supabase/functions/track/index.ts`;
  const workers = await pgrep(["-f", "scripts/gateway/worker.ts"]);
  const functionPids = workers.filter((pid) =>
    procStat(pid)?.ppid === gatewayPid &&
    (readText(`/proc/${pid}/cmdline`) ?? "").split("\0").includes(entry)
  );
  return { functionPids, gatewayPids, postmasterPid };
}

/** Cumulative CPU seconds of each group at one instant. */
export interface CpuSnapshot {
  at: number;
  function: number;
  gateway: number;
  postgres: number;
  loadGenerator: number;
  /** Busy and total jiffies of the whole machine, all cores. */
  machineBusy: number;
  machineTotal: number;
}

function machineTimes(): { busy: number; total: number } {
  const line = readText("/proc/stat")?.split("\n")[0] ?? "";
  const values = line.trim().split(/\s+/).slice(1).map(Number);
  const total = values.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = values[3] + values[4];
  return { busy: total - idle, total };
}

/** The fraction of all cores busy over the next `ms` milliseconds, 0..1. */
export async function machineBusyOver(ms: number): Promise<number> {
  const before = machineTimes();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const after = machineTimes();
  const total = after.total - before.total;
  return total > 0 ? (after.busy - before.busy) / total : 0;
}

async function postgresSeconds(postmasterPid: number): Promise<number> {
  const postmaster = procStat(postmasterPid);
  if (!postmaster) return 0;
  let seconds = postmaster.own + postmaster.children;
  for (const pid of await pgrep(["-P", String(postmasterPid)])) {
    seconds += procStat(pid)?.own ?? 0;
  }
  return seconds;
}

/** Reads every group's cumulative CPU time now. */
export async function snapshot(watched: Watched): Promise<CpuSnapshot> {
  const sum = (pids: number[]) => pids.reduce((total, pid) => total + (procStat(pid)?.own ?? 0), 0);
  const postgres = await postgresSeconds(watched.postmasterPid);
  const machine = machineTimes();
  return {
    at: performance.now(),
    function: sum(watched.functionPids),
    gateway: sum(watched.gatewayPids),
    postgres,
    loadGenerator: procStat(Deno.pid)?.own ?? 0,
    machineBusy: machine.busy,
    machineTotal: machine.total,
  };
}

/** CPU seconds each group used between two snapshots, and how busy the machine was. */
export interface CpuUsage {
  wallSeconds: number;
  function: number;
  gateway: number;
  postgres: number;
  loadGenerator: number;
  /** Fraction of all cores busy, 0..1. */
  machineBusy: number;
  /**
   * Fraction of all cores used by anything else (other processes, the
   * kernel's own work): a check that the measurement had the machine to itself.
   */
  background: number;
}

/** The difference between two snapshots. */
export function cpuDelta(before: CpuSnapshot, after: CpuSnapshot): CpuUsage {
  const total = after.machineTotal - before.machineTotal;
  const busy = after.machineBusy - before.machineBusy;
  const used = {
    function: after.function - before.function,
    gateway: after.gateway - before.gateway,
    postgres: after.postgres - before.postgres,
    loadGenerator: after.loadGenerator - before.loadGenerator,
  };
  const ours = (used.function + used.gateway + used.postgres + used.loadGenerator) * clockTicks;
  return {
    wallSeconds: (after.at - before.at) / 1000,
    ...used,
    machineBusy: total > 0 ? busy / total : 0,
    background: total > 0 ? Math.max(0, busy - ours) / total : 0,
  };
}

/** One reading of the function processes' memory. */
export interface RssSample {
  /** Seconds since sampling started. */
  t: number;
  /** Sum over the function processes, MiB. */
  functionMiB: number;
  /** The gateway process, MiB. */
  gatewayMiB: number;
}

/** Samples the function and gateway RSS every `intervalMs` until stopped. */
export function sampleRss(watched: Watched, intervalMs: number) {
  const samples: RssSample[] = [];
  const start = performance.now();
  const read = () => {
    const sum = (pids: number[]) => pids.reduce((total, pid) => total + (rssMiB(pid) ?? 0), 0);
    samples.push({
      t: (performance.now() - start) / 1000,
      functionMiB: sum(watched.functionPids),
      gatewayMiB: sum(watched.gatewayPids),
    });
  };
  read();
  const timer = setInterval(read, intervalMs);
  return {
    samples,
    stop(): RssSample[] {
      clearInterval(timer);
      read();
      return samples;
    },
  };
}

/**
 * The function processes' live JS heap after a forced full GC, summed over
 * them, at one moment of a run (see `GATEWAY_HEAP_REPORTS` in
 * scripts/gateway/main.ts).
 */
export interface HeapSample {
  /** Seconds since the reports started. */
  t: number;
  heapUsedMiB: number;
  heapTotalMiB: number;
  externalMiB: number;
  rssMiB: number;
  /** Function processes that reported. */
  processes: number;
}

/** One line a function process appends to its heap report (scripts/gateway/worker.ts). */
export interface HeapReportLine {
  /** `Date.now()` when it was made. */
  at: number;
  rssMiB: number;
  heapUsedMiB: number;
  heapTotalMiB: number;
  externalMiB: number;
}

/**
 * Sums the processes' report lines by the round of signals they answer:
 * `rounds` holds the `Date.now()` of each round, in order, and `reports` the
 * lines of each process. A line answers the last round sent at or before it;
 * a process's second line in one round (two rounds sent moments apart) is
 * left out, and so are lines before the first round and rounds nobody
 * answered.
 */
export function heapSeries(rounds: number[], reports: HeapReportLine[][]): HeapSample[] {
  const samples = rounds.map((at): HeapSample => ({
    t: (at - rounds[0]) / 1000,
    heapUsedMiB: 0,
    heapTotalMiB: 0,
    externalMiB: 0,
    rssMiB: 0,
    processes: 0,
  }));
  for (const lines of reports) {
    const answered = new Set<number>();
    for (const line of [...lines].sort((a, b) => a.at - b.at)) {
      let round = -1;
      while (round + 1 < rounds.length && rounds[round + 1] <= line.at) round++;
      if (round < 0 || answered.has(round)) continue;
      answered.add(round);
      const sample = samples[round];
      sample.heapUsedMiB += line.heapUsedMiB;
      sample.heapTotalMiB += line.heapTotalMiB;
      sample.externalMiB += line.externalMiB;
      sample.rssMiB += line.rssMiB;
      sample.processes++;
    }
  }
  return samples.filter((s) => s.processes > 0);
}

/** Whether a process handles SIGUSR2, which would otherwise end it. */
function handlesSigusr2(pid: number): boolean {
  const mask = readText(`/proc/${pid}/status`)?.match(/^SigCgt:\s+([0-9a-f]+)/m)?.[1];
  return mask !== undefined && (BigInt(`0x${mask}`) & (1n << 11n)) !== 0n;
}

/**
 * Every `intervalMs`, and once at the start and at the end, asks the
 * function processes (`pids`) for their live heap after a forced GC (SIGUSR2;
 * only processes that handle it are sent it) and reads their answers from
 * the `*.jsonl` reports in `dir`. Returns the series, or why there is none.
 */
export function collectHeapReports(dir: string | undefined, pids: number[], intervalMs: number) {
  const reporting = dir ? pids.filter(handlesSigusr2) : [];
  const missing = !dir
    ? "GATEWAY_HEAP_REPORTS was not set for the gateway"
    : reporting.length < pids.length
    ? `${
      pids.length - reporting.length
    } of ${pids.length} function processes do not report their heap`
    : undefined;
  const rounds: number[] = [];
  const ask = () => {
    rounds.push(Date.now());
    for (const pid of reporting) {
      try {
        Deno.kill(pid, "SIGUSR2");
      } catch { /* gone: its restart does not report until the next run */ }
    }
  };
  if (missing === undefined) ask();
  const timer = missing === undefined ? setInterval(ask, intervalMs) : undefined;
  return {
    async stop(): Promise<{ samples: HeapSample[]; missing?: string }> {
      clearInterval(timer);
      if (missing !== undefined) return { samples: [], missing };
      // A last round, unless the timer's came just now.
      if (Date.now() - rounds[rounds.length - 1] > intervalMs / 2) ask();
      // Time for the last collection and its line.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const reports: HeapReportLine[][] = [];
      for await (const entry of Deno.readDir(dir!)) {
        if (!entry.name.endsWith(".jsonl")) continue;
        const text = await Deno.readTextFile(`${dir}/${entry.name}`);
        reports.push(
          text.split("\n").filter((line) => line.trim()).map((line) => JSON.parse(line)),
        );
      }
      return { samples: heapSeries(rounds, reports) };
    },
  };
}
