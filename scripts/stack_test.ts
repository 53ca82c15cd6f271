/**
 * `scripts/stack up` keeps a local database only while it still matches the
 * migration files: a migration edited after it was applied makes it rebuild
 * the database, a new migration is applied on top of the data already there,
 * and a database with no record of the files it was made from is made again.
 * A gateway started before the functions' code changed is restarted, and
 * one that cannot have its ports says which is taken, showing only what that
 * start wrote. A gateway pid since taken by another stack's gateway is not
 * ours to report, keep or kill. `destroy` deletes a cluster kept outside a
 * checkout the postgres user cannot enter, and no stack's name reaches the
 * default stack's files. `scripts/start` stops nothing it found running.
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
/** The folder of this test's stack in a copy of the project. */
const stackDir = (project: string) => `${project}/.stack/named/${stackEnv.STACK_NAME}`;

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
      const gatewayPid = () => Deno.readTextFile(`${stackDir(project)}/gateway.pid`);
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
      await Deno.remove(`${stackDir(project)}/migrations.sha256`);
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
    const link = `${stackDir(project)}/pgdata`;
    try {
      await stack("up");
      const cluster = await Deno.realPath(link);
      assert.match(cluster, /^\/var\/lib\/postgresql\/interaction-tracking\/[0-9a-f]{12}$/);
      assert.equal((await Deno.lstat(link)).isSymlink, true);
      assert.match(await stack("destroy"), /destroyed/);
      const gone = (path: string) => Deno.lstat(path).then(() => false, () => true);
      assert.equal(await gone(cluster), true, `${cluster} is left behind`);
      assert.equal(await gone(stackDir(project)), true);
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
        -Number(await Deno.readTextFile(`${stackDir(project)}/gateway.pid`)),
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

/**
 * Starts a stand-in for a gateway that is not ours: its command line names
 * scripts/gateway/main.ts, as every stack's gateway does, and it leads a
 * process group of its own, as they do.
 */
function startDecoy(cwd: string, env: Record<string, string>): Deno.ChildProcess {
  return new Deno.Command("setsid", {
    args: ["sh", "-c", "sleep 600; :", "scripts/gateway/main.ts"],
    cwd,
    env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", ...env },
    clearEnv: true,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
}

Deno.test({
  name: "stack: a gateway pid now another stack's gateway is not ours to report, keep or kill",
  ignore: !mayRun,
  fn: async () => {
    const project = await copyProject();
    const stack = (...args: string[]) => run(`${project}/scripts/stack`, args, project, stackEnv);
    const pidFile = `${stackDir(project)}/gateway.pid`;
    // After a reboot the pid in the file may be another stack's gateway: one
    // of this checkout on this stack's port, or one of another checkout.
    const others: { cwd: string; env: Record<string, string> }[] = [
      {
        cwd: project,
        env: { STACK_DIR: `${project}/.stack/named/other`, GATEWAY_PORT: stackEnv.API_PORT },
      },
      { cwd: dirname(project), env: { GATEWAY_PORT: stackEnv.API_PORT } },
    ];
    try {
      await stack("up");
      // The same checkout reached through a symbolic link is the same stack.
      const link = `${dirname(project)}/linked`;
      await Deno.symlink(project, link);
      assert.match(
        await run(`${link}/scripts/stack`, ["status"], link, stackEnv),
        /gateway: running/,
      );
      await stack("down", "--gateway");
      for (const { cwd, env } of others) {
        const decoy = startDecoy(cwd, env);
        let exited = false;
        decoy.status.then(() => exited = true);
        const takePidFile = () => Deno.writeTextFile(pidFile, `${decoy.pid}\n`);
        try {
          await takePidFile();
          assert.match(await stack("status"), /gateway: stopped/);
          assert.match(await stack("up"), /starting the functions gateway/);
          assert.notEqual(Number(await Deno.readTextFile(pidFile)), decoy.pid);
          assert.match(await stack("status"), /gateway: running/);
          await stack("down", "--gateway");
          await takePidFile();
          await stack("down", "--gateway");
          await new Promise((resolve) => setTimeout(resolve, 200));
          assert.equal(exited, false, "down killed a gateway not its own");
        } finally {
          try {
            Deno.kill(-decoy.pid, "SIGKILL");
          } catch {
            // Killed already, by a down that took it for ours.
          }
          await decoy.status;
        }
      }

      // A start that fails shows its own error, not an earlier start's lines
      // from the log they share.
      const squatter = await listenWhenFree(Number(stackEnv.API_PORT));
      try {
        const failed = await attempt(`${project}/scripts/stack`, ["up"], project, stackEnv);
        assert.notEqual(failed.code, 0);
        assert.match(failed.output, new RegExp(`127.0.0.1:${stackEnv.API_PORT} is in use`));
        const log = await Deno.readTextFile(`${stackDir(project)}/gateway.log`);
        assert.match(log, /\[gateway\] serving/);
        assert.doesNotMatch(failed.output, /\[gateway\] serving/);
      } finally {
        squatter.close();
      }
    } finally {
      await stack("down").catch(() => {});
      await Deno.remove(dirname(project), { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name:
    "stack: no STACK_NAME reaches the default stack's files, and its destroy keeps named stacks",
  ignore: !mayRun,
  fn: async () => {
    const project = await copyProject();
    const destroy = (name: string) =>
      run(`${project}/scripts/stack`, ["destroy"], project, { ...stackEnv, STACK_NAME: name });
    const exists = (path: string) =>
      Deno.lstat(`${project}/.stack/${path}`).then(() => true, () => false);
    try {
      // The default stack's cluster, test logs and records, as up and
      // scripts/test leave them (no server runs: destroy has none to stop).
      await Deno.mkdir(`${project}/.stack/pgdata`, { recursive: true });
      await Deno.writeTextFile(`${project}/.stack/pgdata/PG_VERSION`, "15\n");
      await Deno.mkdir(`${project}/.stack/test-logs`);
      await Deno.writeTextFile(`${project}/.stack/test-logs/pgtap.log`, "ok\n");
      await Deno.writeTextFile(`${project}/.stack/env`, "SUPABASE_URL=http://127.0.0.1:54321\n");
      for (const name of ["pgdata", "test-logs", "env", "named"]) {
        await destroy(name);
        for (const path of ["pgdata/PG_VERSION", "test-logs/pgtap.log", "env"]) {
          assert.ok(await exists(path), `destroying stack ${name} deleted .stack/${path}`);
        }
      }

      // The default stack's destroy, in this copy: its own files go, a named
      // stack's folder stays, even one named like a folder of the default's.
      await Deno.mkdir(`${project}/.stack/named/test-logs`, { recursive: true });
      await Deno.writeTextFile(`${project}/.stack/named/test-logs/env`, "");
      await run(`${project}/scripts/stack`, ["destroy"], project, {
        NO_COLOR: "1",
        STACK_NAME: "",
      });
      assert.equal(await exists("pgdata"), false);
      assert.equal(await exists("test-logs"), false);
      assert.ok(await exists("named/test-logs/env"));
    } finally {
      await Deno.remove(dirname(project), { recursive: true });
    }
  },
});

Deno.test({
  name: "stack: a named stack made before .stack/named/ existed is still found where it is",
  ignore: !mayRun,
  fn: async () => {
    const project = await copyProject();
    const exists = (path: string) =>
      Deno.lstat(`${project}/.stack/${path}`).then(() => true, () => false);
    try {
      await Deno.mkdir(`${project}/.stack/old/pgdata`, { recursive: true });
      await run(`${project}/scripts/stack`, ["destroy"], project, {
        ...stackEnv,
        STACK_NAME: "old",
      });
      assert.equal(await exists("old"), false, "the old stack's folder was destroyed");
      assert.equal(await exists("named/old"), false, "no new folder was made for it");
    } finally {
      await Deno.remove(dirname(project), { recursive: true });
    }
  },
});
