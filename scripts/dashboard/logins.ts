/**
 * The analysts' own Postgres logins, as the dashboard uses them: HTTP Basic
 * credentials are a Postgres user name and password, and the dashboard reads
 * the views connected as that login, so the database's grants and row level
 * security decide what each analyst sees. The server's own (superuser)
 * database credentials are never used for data: only the host, port and
 * database name of its URL are.
 *
 * One small postgres.js pool per login, kept for reuse; a login the database
 * refuses is closed and forgotten at once.
 *
 * @example
 * ```ts
 * import { AnalystLogins, parseBasicAuth } from "./logins.ts";
 *
 * const logins = new AnalystLogins("postgresql://postgres:postgres@127.0.0.1:54322/postgres");
 *
 * async function handler(request: Request): Promise<Response> {
 *   const credentials = parseBasicAuth(request.headers.get("Authorization"));
 *   if (!credentials) return new Response(null, { status: 401 });
 *   const rows = await logins.run(credentials, (sql) => sql`select 1 as one`);
 *   return Response.json(rows);
 * }
 * ```
 *
 * @module
 */
import postgres from "postgres";

/** A Postgres login name and its password. */
export interface Credentials {
  user: string;
  password: string;
}

/**
 * Reads `Authorization: Basic base64(user:password)`; null when the header is
 * missing, of another scheme, or not decodable to a non-empty user name.
 *
 * @example
 * ```ts
 * import { parseBasicAuth } from "./logins.ts";
 * parseBasicAuth(`Basic ${btoa("analyst_reader:analyst")}`);
 * // { user: "analyst_reader", password: "analyst" }
 * ```
 */
export function parseBasicAuth(header: string | null): Credentials | null {
  const match = header?.match(/^Basic\s+([A-Za-z0-9+/]+={0,2})\s*$/i);
  if (!match) return null;
  let decoded: string;
  try {
    const bytes = Uint8Array.from(atob(match[1]), (char) => char.charCodeAt(0));
    decoded = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return null;
  }
  const colon = decoded.indexOf(":");
  if (colon <= 0) return null;
  const user = decoded.slice(0, colon);
  const password = decoded.slice(colon + 1);
  // Postgres names and passwords cannot hold NUL; refuse them before connecting.
  if (user.includes("\0") || password.includes("\0")) return null;
  return { user, password };
}

/** Why a login's query failed, as the HTTP layer answers it. */
export type LoginFailure =
  /** The database refused the user name or password (or the role may not log in). */
  | "refused"
  /** The login may not read what was asked. */
  | "forbidden"
  /** The database could not be reached or answered too slowly. */
  | "unavailable"
  /** Anything else. */
  | "failed";

// SQLSTATEs of the connection refusals: invalid_password and
// invalid_authorization_specification (no such role, or a NOLOGIN role).
const refusedCodes = new Set(["28P01", "28000"]);
const unavailableCodes = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "CONNECT_TIMEOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "57P01", // admin_shutdown
  "57P03", // cannot_connect_now
  "57014", // query_canceled (the statement timeout)
  "53300", // too_many_connections
]);

/** Sorts an error of postgres.js into a {@link LoginFailure}. */
export function classifyFailure(error: unknown): LoginFailure {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== "string") return "failed";
  if (refusedCodes.has(code)) return "refused";
  if (code === "42501") return "forbidden";
  if (unavailableCodes.has(code)) return "unavailable";
  return "failed";
}

/** Connection settings of every analyst pool. */
const poolOptions = {
  max: 2,
  idle_timeout: 60,
  connect_timeout: 5,
  // Supavisor's transaction mode cannot keep prepared statements.
  prepare: false,
  onnotice: () => {},
  connection: {
    application_name: "dashboard",
    statement_timeout: 15_000,
    default_transaction_read_only: true,
  },
} as const;

/**
 * The pools of the analysts who signed in, at most `maxLogins` at once (the
 * least recently used one is closed to make room).
 */
export class AnalystLogins {
  readonly #host: string;
  readonly #port: number;
  readonly #database: string;
  readonly #maxLogins: number;
  readonly #pools = new Map<string, postgres.Sql>();

  /** `dbUrl` names the database; its user name and password are ignored. */
  constructor(dbUrl: string, maxLogins = 8) {
    const url = new URL(dbUrl);
    this.#host = url.hostname;
    this.#port = Number(url.port || "5432");
    this.#database = decodeURIComponent(url.pathname.slice(1)) || "postgres";
    this.#maxLogins = maxLogins;
  }

  /**
   * Runs `work` connected as `credentials`. A login the database refuses is
   * dropped from the cache before the error is rethrown.
   */
  async run<T>(credentials: Credentials, work: (sql: postgres.Sql) => Promise<T>): Promise<T> {
    const key = `${credentials.user}\0${credentials.password}`;
    const sql = this.#pool(key, credentials);
    try {
      return await work(sql);
    } catch (error) {
      if (classifyFailure(error) === "refused" && this.#pools.get(key) === sql) {
        this.#pools.delete(key);
        void sql.end({ timeout: 0 });
      }
      throw error;
    }
  }

  /** Closes every pool. */
  async close(): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((sql) => sql.end({ timeout: 1 })));
  }

  #pool(key: string, credentials: Credentials): postgres.Sql {
    let sql = this.#pools.get(key);
    if (sql) {
      // Most recently used last, so the first entry is the one to evict.
      this.#pools.delete(key);
    } else {
      sql = postgres({
        ...poolOptions,
        host: this.#host,
        port: this.#port,
        database: this.#database,
        username: credentials.user,
        password: credentials.password,
      });
    }
    this.#pools.set(key, sql);
    while (this.#pools.size > this.#maxLogins) {
      const [oldestKey, oldest] = this.#pools.entries().next().value!;
      this.#pools.delete(oldestKey);
      void oldest.end({ timeout: 5 });
    }
    return sql;
  }
}
