/**
 * Builds the browser client: one minified ES module,
 * `client/dist/interaction-tracking.min.js`, and reports its size gzipped.
 *
 * esbuild (from npm) does the bundling. It does not know Deno's import map
 * or npm cache, so the packages the import map names, and what they depend
 * on, are linked into a `node_modules` folder under `client/dist/` that
 * esbuild searches like any other (`nodePaths`). The packages come from
 * Deno's own npm cache, filled by `deno cache` from the npm registry.
 *
 * The bundle holds the client and the shared contract (with `zod/mini`) and
 * nothing else: the app passes in its own supabase-js client.
 *
 * Usage: `deno run --allow-all client/build.ts` (`--help` says what it does)
 *
 * @module
 */
import * as esbuild from "esbuild";
import { gzipSync } from "node:zlib";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const clientDir = dirname(fileURLToPath(import.meta.url));
const rootDir = dirname(clientDir);

/** Where builds go (git-ignored). */
export const distDir = join(clientDir, "dist");

/** The client's entry point and its bundle. */
export const clientEntry = join(clientDir, "src", "mod.ts");
export const clientBundle = join(distDir, "interaction-tracking.min.js");

/** A finished bundle and its size. */
export interface BundleReport {
  path: string;
  bytes: number;
  gzipBytes: number;
  /** The npm packages inside the bundle. */
  packages: string[];
}

/** Bundles `entry` (and what it imports) into the minified ES module `outfile`. */
export async function bundle(entry: string, outfile: string): Promise<BundleReport> {
  await denoCache(entry);
  const nodeModules = await linkPackages();
  const result = await esbuild.build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    minify: true,
    sourcemap: "linked",
    legalComments: "none",
    nodePaths: [nodeModules],
    conditions: ["browser", "import", "default"],
    metafile: true,
    logLevel: "warning",
  });
  const code = await Deno.readFile(outfile);
  const packages = new Set<string>();
  for (const input of Object.keys(result.metafile!.inputs)) {
    const match = input.match(/registry\.npmjs\.org\/((?:@[^/]+\/)?[^/]+)\/([^/]+)\//);
    if (match) packages.add(`${match[1]}@${match[2]}`);
  }
  return {
    path: outfile,
    bytes: code.length,
    gzipBytes: gzipSync(code, { level: 9 }).length,
    packages: [...packages].sort(),
  };
}

/** Builds the client bundle. */
export async function buildClient(): Promise<BundleReport> {
  return await bundle(clientEntry, clientBundle);
}

/** Stops esbuild's service, so the process can exit. */
export async function stopBundler(): Promise<void> {
  await esbuild.stop();
}

// Fills Deno's npm cache with what `entry` imports (a no-op when it is there).
async function denoCache(entry: string): Promise<void> {
  const { success, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["cache", "--quiet", entry],
    cwd: rootDir,
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!success) throw new Error(`deno cache ${entry} failed:\n${new TextDecoder().decode(stderr)}`);
}

// Links every npm package of deno.lock, at its locked version, into one
// node_modules folder. A name locked at two versions keeps the newer one.
async function linkPackages(): Promise<string> {
  const lock = JSON.parse(await Deno.readTextFile(join(rootDir, "deno.lock")));
  const info = JSON.parse(
    new TextDecoder().decode(
      (await new Deno.Command(Deno.execPath(), { args: ["info", "--json"] }).output()).stdout,
    ),
  );
  const registry = join(info.npmCache, "registry.npmjs.org");
  const versions = new Map<string, string>();
  for (const id of Object.keys(lock.npm ?? {})) {
    const at = id.lastIndexOf("@");
    const name = id.slice(0, at);
    const version = id.slice(at + 1).split("_")[0];
    const known = versions.get(name);
    if (known === undefined || compareVersions(version, known) > 0) versions.set(name, version);
  }
  const nodeModules = join(distDir, ".packages", "node_modules");
  for (const [name, version] of versions) {
    const target = join(registry, name, version);
    const link = join(nodeModules, name);
    try {
      await Deno.stat(target);
    } catch {
      continue; // Locked for another platform or not needed by any entry built.
    }
    await Deno.mkdir(dirname(link), { recursive: true });
    await Deno.remove(link).catch(() => {});
    await Deno.symlink(target, link);
  }
  return nodeModules;
}

function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.-]/).map((part) => Number.parseInt(part, 10) || 0);
  const pb = b.split(/[.-]/).map((part) => Number.parseInt(part, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    if ((pa[i] ?? 0) !== (pb[i] ?? 0)) return (pa[i] ?? 0) - (pb[i] ?? 0);
  }
  return 0;
}

/** What the build prints of `report`, its path relative to `from` (the repository by default). */
export function describeBundle(report: BundleReport, from: string = rootDir): string {
  return `${relative(from, report.path)}: ${kib(report.bytes)} minified, ${
    kib(report.gzipBytes)
  } gzipped (packages: ${report.packages.join(", ") || "none"})`;
}

function kib(bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} KiB`;
}

const usage = `Usage: deno run --allow-all client/build.ts

Bundles client/src/mod.ts into client/dist/interaction-tracking.min.js (git-ignored)
and prints its size, minified and gzipped, and the npm packages inside it.`;

if (import.meta.main) {
  const [arg] = Deno.args;
  if (arg === "-h" || arg === "--help") {
    console.log(usage);
    Deno.exit(0);
  }
  if (arg !== undefined) {
    console.error(`build: unexpected argument ${arg}\n`);
    console.error(usage);
    Deno.exit(2);
  }
  try {
    console.log(describeBundle(await buildClient(), Deno.cwd()));
  } finally {
    await stopBundler();
  }
}
