/**
 * `scripts/stack up` keeps a local database only while it still matches the
 * migration files: a migration edited after it was applied makes it rebuild
 * the database, a new migration is applied on top of the data already there,
 * and a database with no record of the files it was made from is made again.
 * A gateway started before the functions' code changed is restarted, and
 * one that cannot have its ports says which is taken. `destroy` deletes a
 * cluster kept outside a checkout the postgres user cannot enter, and
 * `scripts/start` stops nothing it found running.
 * Runs on a copy of the project, as a stack of its own (STACK_NAME=migrations,
 * ports 26322 and 26321, below the ephemeral port range), so the real migrations are never touched.
 */
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";

const root = fileURLToPath(new URL("../", import.meta.url));
const mayRun = Deno.permissions.querySync({ name: "run" }).state === "granted";
const stackEnv = { STACK_NAME: "migrations", DB_PORT: "26322", API_PORT: "26321", NO_COLOR: "1" };
const scoreMigration = "supabase/migrations/20261124000300_engagement_score_and_views.sql";

async function attempt(
  command: string,
  args: string[],
  cwd: string,
  env = {},
): Promise<{ code: number; output: string }> {
  const { code, stdout, stderr } = await new Deno.Command(command, {
    args,
    cwd,
    env,
    stdin: "null",
  })
    .output();
  return { code, output: new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr) };
}

async function run(command: string, args: string[], cwd: string, env = {}): Promise<string> {
  const { code, output } = await attempt(command, args, cwd, env);
  assert.equal(code, 0, `${command} ${args.join(" ")} failed:\n${output}`);
  return output;
}

/** Listens on `port` as soon as the processes just killed have let go of it. */
async function listenWhenFree(port: number): Promise<Deno.Listener> {
  for (let attempt = 0;; attempt++) {
    try {
      return Deno.listen({ hostname: "127.0.0.1", port });
    } catch (error) {
      if (!(error instanceof Deno.errors.AddrInUse) || attempt === 100) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

const COPY_PREFIX = "stack-migrations-";

/**
 * Destroys the stacks of copies an interrupted run left behind, and removes
 * the copies: their servers would hold this test's ports for good.
 */
async function removeLeftCopies(): Promise<void> {
  const tmp = Deno.env.get("TMPDIR") ?? "/tmp";
  for await (const entry of Deno.readDir(tmp)) {
    if (!entry.isDirectory || !entry.name.startsWith(COPY_PREFIX)) continue;
    const project = `${tmp}/${entry.name}/interaction tracking`;
    await attempt(`${project}/scripts/stack`, ["destroy"], project, stackEnv).catch(() => {});
    await Deno.remove(`${tmp}/${entry.name}`, { recursive: true }).catch(() => {});
  }
}

/**
 * A copy of the project's scripts, functions, migrations and test helpers, sharing its
 * installed packages, in a folder whose path has a space, as a checkout's may.
 * `private`: in a folder only its owner may enter, as a clone under /root.
 */
async function copyProject({ private: closed = false } = {}): Promise<string> {
  await removeLeftCopies();
  const parent = await Deno.makeTempDir({ prefix: COPY_PREFIX });
  await Deno.chmod(parent, closed ? 0o700 : 0o755);
  const copy = `${parent}/interaction tracking`;
  await Deno.mkdir(copy, { mode: 0o755 });
  await run(
    "cp",
    ["-R", "scripts", "supabase", "test_support", "deno.json", "deno.lock", copy],
    root,
  );
  await Deno.remove(`${copy}/supabase/.temp`, { recursive: true }).catch(() => {});
  for (const shared of ["node_modules", "package.json", "package-lock.json"]) {
    await Deno.symlink(`${root}${shared}`, `${copy}/${shared}`);
  }
  return copy;
}

Deno.test({
  name: "stack up: an edited migration rebuilds the database, a new one is applied in place",
  ignore: !mayRun,
  fn: async () => {
    const project = await copyProject();
    const stack = (command: string) =>
      run(`${project}/scripts/stack`, [command], project, stackEnv);
    const sql = (query: string) =>
      run(
        "psql",
        ["-X", "-tA", "-h", "127.0.0.1", "-p", stackEnv.DB_PORT, "-U", "postgres", "-c", query],
        project,
        {
          PGPASSWORD: "postgres",
        },
      ).then((out) => out.trim());
    const scoreComment =
      "select obj_description('public.engagement_score(integer, bigint)'::regprocedure)";
    try {
      await stack("up");
      await sql("create table public.made_by_hand (id int)");

      // A new migration: applied, and what was in the database stays.
      await Deno.writeTextFile(
        `${project}/supabase/migrations/20991231000000_added_later.sql`,
        "create table public.added_later (id int);\n",
      );
      const added = await stack("up");
      assert.doesNotMatch(added, /recreating/);
      assert.equal(await sql("select to_regclass('public.added_later') is not null"), "t");
      assert.equal(await sql("select to_regclass('public.made_by_hand') is not null"), "t");

      // Nothing changed: up leaves the database and the gateway alone.
      assert.doesNotMatch(await stack("up"), /recreating|applying migrations|gateway/);

      // The function's code changed: the gateway serving the old code is restarted.
      const gatewayPid = () => Deno.readTextFile(`${project}/.stack/migrations/gateway.pid`);
      const before = await gatewayPid();
      await Deno.writeTextFile(
        `${project}/supabase/functions/track/index.ts`,
        "\n// edited\n",
        { append: true },
      );
      assert.match(await stack("up"), /code changed since the gateway started: restarting it/);
      assert.notEqual(await gatewayPid(), before);
      assert.doesNotMatch(await stack("up"), /gateway/);

      // An applied migration edited in place: the database is made again from the files.
      await Deno.writeTextFile(
        `${project}/${scoreMigration}`,
        "\ncomment on function public.engagement_score(integer, bigint) is 'edited in place';\n",
        { append: true },
      );
      assert.match(await stack("up"), /recreating/);
      assert.equal(await sql(scoreComment), "edited in place");
      assert.equal(await sql("select to_regclass('public.made_by_hand') is null"), "t");
      assert.equal(await sql("select to_regclass('public.added_later') is not null"), "t");

      // A migration removed: its table goes with the rebuilt database.
      await Deno.remove(`${project}/supabase/migrations/20991231000000_added_later.sql`);
      assert.match(await stack("up"), /recreating/);
      assert.equal(await sql("select to_regclass('public.added_later') is null"), "t");
      assert.equal(await sql(scoreComment), "edited in place");

      // No record of the files (a database older than the record): made again, to be sure.
      await sql("create table public.made_by_hand (id int)");
      await Deno.remove(`${project}/.stack/${stackEnv.STACK_NAME}/migrations.sha256`);
      assert.match(await stack("up"), /no record of the migration files.*recreating/);
      assert.equal(await sql("select to_regclass('public.made_by_hand') is null"), "t");
      assert.doesNotMatch(await stack("up"), /recreating/);

      // The gateway died, and meanwhile something took its function port:
      // up says which port, and claims nothing is running.
      const pid = Number(await gatewayPid());
      Deno.kill(-pid, "SIGKILL");
      const squatter = await listenWhenFree(Number(stackEnv.API_PORT) + 100);
      try {
        const blocked = await attempt(`${project}/scripts/stack`, ["up"], project, stackEnv);
        assert.notEqual(blocked.code, 0);
        assert.match(
          blocked.output,
          new RegExp(`127.0.0.1:${Number(stackEnv.API_PORT) + 100} is in use`),
        );
        assert.match(await stack("status"), /gateway: stopped/);
      } finally {
        squatter.close();
      }
      assert.match(await stack("up"), /starting the functions gateway/);
      assert.match(await stack("status"), /gateway: running/);

      // The running stack named with other ports: up and reset refuse before
      // anything talks to those ports (another stack's database may be
      // there), and status tells where this one really runs.
      const otherPorts = {
        ...stackEnv,
        DB_PORT: String(Number(stackEnv.DB_PORT) + 5),
        API_PORT: String(Number(stackEnv.API_PORT) + 5),
      };
      for (const command of ["up", "reset"]) {
        const refused = await attempt(`${project}/scripts/stack`, [command], project, otherPorts);
        assert.notEqual(refused.code, 0, command);
        assert.match(
          refused.output,
          new RegExp(
            `Postgres runs on port ${stackEnv.DB_PORT}, not DB_PORT=${otherPorts.DB_PORT}`,
          ),
          command,
        );
      }
      const status = await run(`${project}/scripts/stack`, ["status"], project, otherPorts);
      assert.match(status, new RegExp(`postgres: running on 127.0.0.1:${stackEnv.DB_PORT}\n`));
      assert.match(
        status,
        new RegExp(`gateway: running on http://127.0.0.1:${stackEnv.API_PORT}\n`),
      );
    } finally {
      await stack("down").catch(() => {});
      await Deno.remove(dirname(project), { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name:
    "stack status and down make nothing: on a fresh machine they run before anything is installed",
  ignore: !mayRun,
  fn: async () => {
    const project = await copyProject();
    try {
      const status = await run(`${project}/scripts/stack`, ["status"], project, stackEnv);
      assert.match(status, /postgres: stopped/);
      assert.match(status, /gateway: stopped/);
      await run(`${project}/scripts/stack`, ["down"], project, stackEnv);
      // The data folder is made by `up` only, once the postgres user exists
      // to own it: made earlier, by root, it would lock that user out.
      const made = await Deno.lstat(`${project}/.stack`).then(() => true, () => false);
      assert.equal(made, false, "no .stack folder was made");
    } finally {
      await Deno.remove(dirname(project), { recursive: true });
    }
  },
});

Deno.test({
  name: "stack destroy: a cluster kept outside a checkout postgres cannot enter goes with it",
  // Only root runs Postgres as another user, and only that user can be shut out.
  ignore: !mayRun || Deno.uid() !== 0,
  fn: async () => {
    const project = await copyProject({ private: true });
    const stack = (command: string) =>
      run(`${project}/scripts/stack`, [command], project, stackEnv);
    const link = `${project}/.stack/${stackEnv.STACK_NAME}/pgdata`;
    try {
      await stack("up");
      const cluster = await Deno.realPath(link);
      assert.match(cluster, /^\/var\/lib\/postgresql\/interaction-tracking\/[0-9a-f]{12}$/);
      assert.equal((await Deno.lstat(link)).isSymlink, true);
      assert.match(await stack("destroy"), /destroyed/);
      const gone = (path: string) => Deno.lstat(path).then(() => false, () => true);
      assert.equal(await gone(cluster), true, `${cluster} is left behind`);
      assert.equal(await gone(`${project}/.stack/${stackEnv.STACK_NAME}`), true);
      assert.match(await stack("status"), /postgres: stopped/);
    } finally {
      await stack("destroy").catch(() => {});
      await Deno.remove(dirname(project), { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name: "start: Ctrl-C stops what it started only: the gateway, not the Postgres it found",
  ignore: !mayRun,
  fn: async () => {
    const project = await copyProject();
    const stack = (command: string) =>
      run(`${project}/scripts/stack`, [command], project, stackEnv);
    try {
      await stack("up");
      // Postgres up, the gateway not: as after a crash of the gateway alone.
      Deno.kill(
        -Number(await Deno.readTextFile(`${project}/.stack/migrations/gateway.pid`)),
        "SIGKILL",
      );
      assert.match(await stack("status"), /postgres: running[^]*gateway: stopped/);

      const start = new Deno.Command(`${project}/scripts/start`, {
        args: ["--summary-only"],
        cwd: project,
        env: stackEnv,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      let output = "";
      const serving = (async () => {
        const decoder = new TextDecoder();
        const reader = start.stdout.getReader();
        while (!output.includes("Serving;")) {
          const { value, done } = await reader.read();
          if (done) break;
          output += decoder.decode(value);
        }
        reader.releaseLock();
      })();
      const stderr = new Response(start.stderr).text();
      await serving;
      if (!output.includes("Serving;")) {
        await start.status;
        assert.fail(`scripts/start stopped early:\n${output}\n${await stderr}`);
      }
      start.kill("SIGINT");
      const { code } = await start.status;
      assert.equal(code, 0, await stderr);
      assert.match(await stderr, /stopping the gateway; leaving Postgres running/);
      assert.match(await stack("status"), /postgres: running.*\ngateway: stopped/);
    } finally {
      await stack("down").catch(() => {});
      await Deno.remove(dirname(project), { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name: "stack: a STACK_NAME that is not a plain name is refused before anything is touched",
  ignore: !mayRun,
  fn: async () => {
    const project = await copyProject();
    try {
      for (const name of ["../supabase", "/", ".", "a/b", "-x"]) {
        const { code, output } = await attempt(`${project}/scripts/stack`, ["destroy"], project, {
          ...stackEnv,
          STACK_NAME: name,
        });
        assert.equal(code, 2, name);
        assert.match(output, /STACK_NAME must be letters, digits, - and _/, name);
      }
      const left = await Deno.stat(`${project}/supabase/migrations`).then(() => true, () => false);
      assert.ok(left, "the project's own folders are where they were");
    } finally {
      await Deno.remove(dirname(project), { recursive: true });
    }
  },
});
