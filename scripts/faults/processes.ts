/**
 * The processes a fault-injection run breaks on purpose: the Postgres cluster
 * of a named stack (stopped fast or immediately, started again, paused with
 * SIGSTOP and resumed) and the functions gateway with its function workers
 * (started with a chosen environment, killed whole or in part).
 *
 * Only processes of the stack the run was given are touched: the Postgres
 * cluster of one data directory, and gateways this module started itself.
 *
 * @example
 * ```ts
 * import { PostgresCluster } from "./processes.ts";
 *
 * async function crashAndFreeze(dataDir: string) {
 *   const postgres = new PostgresCluster(dataDir);
 *   await postgres.stop("immediate");
 *   await postgres.start();
 *   const paused = postgres.pause(); // how many processes were frozen
 *   postgres.resume();
 *   return paused;
 * }
 * ```
 *
 * @module
 */

const PG_BIN = "/usr/lib/postgresql/15/bin";
const decoder = new TextDecoder();

/** The parent pid of `pid`, or null when it is gone (or a zombie). */
function parentOf(pid: number): number | null {
  let stat: string;
  try {
    stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch {
    return null;
  }
  // The command name may hold spaces; the fields resume after its last ")".
  const [state, ppid] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return state === "Z" ? null : Number(ppid);
}

/** Whether `pid` is a live process (not a zombie waiting to be reaped). */
export function alive(pid: number): boolean {
  return parentOf(pid) !== null;
}

/** The live children of `pid`. */
export function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const child = Number(entry.name);
    if (parentOf(child) === pid) children.push(child);
  }
  return children;
}

function commandLine(pid: number): string {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/cmdline`).replaceAll("\0", " ");
  } catch {
    return "";
  }
}

function signal(pid: number, sig: Deno.Signal): boolean {
  try {
    Deno.kill(pid, sig);
    return true;
  } catch {
    return false; // gone already
  }
}

/** Resolves after `ms`, or with `fallback` when `promise` takes longer. */
async function within<T>(promise: Promise<T>, ms: number, fallback: T): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<T>((resolve) => timer = setTimeout(() => resolve(fallback), ms));
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** The Postgres cluster of one data directory, driven with `pg_ctl` as its owner. */
export class PostgresCluster {
  readonly dataDir: string;
  #paused: number[] = [];

  constructor(dataDir: string) {
    this.dataDir = dataDir;
  }

  /** The postmaster's pid, from `postmaster.pid`; null when it is not running. */
  postmasterPid(): number | null {
    try {
      const pid = Number(Deno.readTextFileSync(`${this.dataDir}/postmaster.pid`).split("\n")[0]);
      return Number.isInteger(pid) && pid > 0 && alive(pid) ? pid : null;
    } catch {
      return null;
    }
  }

  /** Stops the server: `fast` rolls back open transactions, `immediate` crashes it. */
  async stop(mode: "fast" | "immediate"): Promise<void> {
    await this.#pgCtl(["-D", this.dataDir, "-m", mode, "-w", "-t", "60", "stop"]);
  }

  /** Starts the server and waits until it accepts connections (after crash recovery). */
  async start(): Promise<void> {
    await this.#pgCtl([
      "-D",
      this.dataDir,
      "-l",
      `${this.dataDir}/server.log`,
      "-w",
      "-t",
      "60",
      "start",
    ]);
  }

  /** Freezes the postmaster and every backend with SIGSTOP; answers how many processes. */
  pause(): number {
    const postmaster = this.postmasterPid();
    if (postmaster === null) throw new Error("Postgres is not running");
    // The postmaster first, so that it forks nothing new meanwhile.
    signal(postmaster, "SIGSTOP");
    this.#paused = [postmaster, ...childrenOf(postmaster)];
    for (const pid of this.#paused.slice(1)) signal(pid, "SIGSTOP");
    return this.#paused.length;
  }

  /** Lets every paused process run again. Safe to call when nothing is paused. */
  resume(): void {
    for (const pid of this.#paused) signal(pid, "SIGCONT");
    this.#paused = [];
  }

  async #pgCtl(args: string[]): Promise<void> {
    const asOwner = Deno.uid() === 0;
    const command = new Deno.Command(asOwner ? "runuser" : `${PG_BIN}/pg_ctl`, {
      args: asOwner ? ["-u", "postgres", "--", `${PG_BIN}/pg_ctl`, ...args] : args,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    });
    const { success, stderr } = await command.output();
    if (!success) throw new Error(`pg_ctl ${args.at(-1)} failed: ${decoder.decode(stderr)}`);
  }
}

/** How to start the functions gateway. */
export interface GatewayOptions {
  /** The checkout's root. */
  root: string;
  port: number;
  /** Added to this process's environment for the gateway, which hands it to its functions. */
  env: Record<string, string>;
  /** Where its output goes (appended). */
  logFile: string;
  /** Where its pid is written, for `scripts/stack down`. */
  pidFile: string;
}

/**
 * The functions gateway (scripts/gateway/main.ts) in a session of its own, so
 * that it and its function workers form one process group.
 */
export class Gateway {
  readonly #options: GatewayOptions;
  #child: Deno.ChildProcess | null = null;
  /** Every process group started, killed or not: cleaned up at the end. */
  readonly #groups = new Set<number>();

  constructor(options: GatewayOptions) {
    this.#options = options;
  }

  /** The gateway's pid (and process group), or null when not started. */
  get pid(): number | null {
    return this.#child?.pid ?? null;
  }

  /** Starts the gateway and waits until it answers its health check. */
  async start(timeoutMs = 30_000): Promise<void> {
    const { root, port, env, logFile, pidFile } = this.#options;
    const child = new Deno.Command("sh", {
      args: [
        "-c",
        'log=$1; shift; exec setsid "$@" >>"$log" 2>&1',
        "sh",
        logFile,
        Deno.execPath(),
        "run",
        "--allow-all",
        "--quiet",
        "scripts/gateway/main.ts",
      ],
      cwd: root,
      env: { ...env, GATEWAY_PORT: String(port) },
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    this.#child = child;
    this.#groups.add(child.pid);
    Deno.writeTextFileSync(pidFile, `${child.pid}\n`);
    let exited = false;
    child.status.then(() => exited = true);
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && !exited) {
      try {
        const response = await fetch(`http://127.0.0.1:${port}/functions/v1/_health`);
        await response.body?.cancel();
        if (response.ok) return;
      } catch {
        // Not listening yet.
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`the gateway did not start on port ${port} (see ${logFile})`);
  }

  /** The pids of the gateway's function workers. */
  workerPids(): number[] {
    const pid = this.pid;
    if (pid === null) return [];
    return childrenOf(pid).filter((child) => commandLine(child).includes("worker.ts"));
  }

  /**
   * Kills with SIGKILL the whole process group (gateway and workers), or the
   * gateway process alone (its workers are left behind, as when only the
   * gateway crashes). Waits until the gateway is reaped.
   */
  async kill(scope: "group" | "gateway"): Promise<void> {
    const child = this.#child;
    if (!child) return;
    signal(scope === "group" ? -child.pid : child.pid, "SIGKILL");
    await within(child.status, 5_000, undefined);
    this.#child = null;
  }

  /** Stops every gateway and worker this object started, politely first. */
  async stop(): Promise<void> {
    const child = this.#child;
    if (child) {
      signal(-child.pid, "SIGTERM");
      await within(child.status, 5_000, undefined);
    }
    this.#child = null;
    for (const group of this.#groups) signal(-group, "SIGKILL");
    this.#groups.clear();
  }

  /** What `stop()` does, at once and without waiting: for a run being interrupted. */
  killAll(): void {
    for (const group of this.#groups) signal(-group, "SIGKILL");
  }
}
