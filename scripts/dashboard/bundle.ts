/**
 * Builds the dashboard page's script, `page/app.ts` with Chart.js from npm,
 * into one minified browser module with `deno bundle`, so the page needs
 * nothing but the local server (no CDN).
 *
 * Usage: `deno run --allow-all scripts/dashboard/bundle.ts [outfile]` builds
 * the bundle, writes it to `outfile` when given, and prints its size. The
 * server builds it itself when the page is first asked for.
 *
 * @module
 */
import { fileURLToPath } from "node:url";

const here = new URL("./", import.meta.url);
const entry = new URL("page/app.ts", here);
const config = new URL("../../deno.json", here);

/** Bundles the page's script; rejects with deno's own message when that fails. */
export async function buildPageBundle(): Promise<Uint8Array<ArrayBuffer>> {
  const { success, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "bundle",
      "--quiet",
      "--config",
      fileURLToPath(config),
      "--platform",
      "browser",
      "--format",
      "esm",
      "--minify",
      fileURLToPath(entry),
    ],
    env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!success || stdout.length === 0) {
    throw new Error(
      `deno bundle ${fileURLToPath(entry)} failed:\n${new TextDecoder().decode(stderr)}`,
    );
  }
  return stdout;
}

let cached: Promise<Uint8Array<ArrayBuffer>> | undefined;

/** The page's script, built once per process (a failed build is tried again next time). */
export function pageBundle(): Promise<Uint8Array<ArrayBuffer>> {
  cached ??= buildPageBundle().catch((error) => {
    cached = undefined;
    throw error;
  });
  return cached;
}

if (import.meta.main) {
  if (Deno.args.includes("--help") || Deno.args.includes("-h")) {
    console.log(
      "Usage: deno run --allow-all scripts/dashboard/bundle.ts [outfile]\n\n" +
        "Bundles the dashboard page's script (Chart.js included) for the browser,\n" +
        "writes it to outfile when given, and prints its size.",
    );
    Deno.exit(0);
  }
  const code = await buildPageBundle();
  const outfile = Deno.args[0];
  if (outfile) await Deno.writeFile(outfile, code);
  console.log(
    `${outfile ?? fileURLToPath(entry)}: ${(code.length / 1024).toFixed(1)} KiB minified`,
  );
}
