/**
 * The analysts' own Postgres logins, as the dashboard uses them: HTTP Basic
 * credentials are a Postgres user name and password, and the dashboard reads
 * the views connected as that login, so the database's grants and row level
 * security decide what each analyst sees. The server's own (superuser)
 * database credentials are never used for data: only the host, port and
 * database name of its URL are.
 *
 * Each request connects anew, so the database checks the login every time:
 * a password changed or a login revoked takes effect at once, not when a
 * cached connection happens to close. The dashboard's traffic is a few
 * requests a minute; a connection per request costs milliseconds.
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
  /** The database could not be reached, or stopped answering. */
  | "unavailable"
  /** A statement ran past the statement timeout and was cancelled. */
  | "too_slow"
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
  "53300", // too_many_connections
]);
// query_canceled: what the statement timeout raises. The database is up; the
// work asked of it is too much for the time it is given.
const tooSlowCode = "57014";

/** How long one statement of an analyst may run (default of {@link AnalystLoginsOptions}). */
export const statementTimeoutMs = 15_000;

/** More requests are waiting for a connection than the dashboard queues. */
export class DashboardBusy extends Error {
  constructor() {
    super("the dashboard is busy");
    this.name = "DashboardBusy";
  }
}

/** A request's work did not end in time: the database stopped answering, say. */
export class DashboardTimeout extends Error {
  constructor(ms: number) {
    super(`the database did not answer within ${ms} ms`);
    this.name = "DashboardTimeout";
  }
}

/** Sorts an error of postgres.js into a {@link LoginFailure}. */
export function classifyFailure(error: unknown): LoginFailure {
  if (error instanceof DashboardBusy || error instanceof DashboardTimeout) return "unavailable";
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== "string") return "failed";
  if (refusedCodes.has(code)) return "refused";
  if (code === "42501") return "forbidden";
  if (code === tooSlowCode) return "too_slow";
  if (unavailableCodes.has(code)) return "unavailable";
  return "failed";
}

/** Connection settings of every analyst's connections. */
const connectionOptions = {
  // The summary's queries run one after another, in one transaction.
  max: 1,
  connect_timeout: 5,
  // Its own query at connect, which would reject unhandled when a connection
  // is cut at the deadline; the summary reads no arrays of custom types.
  fetch_types: false,
  // Supavisor's transaction mode cannot keep prepared statements.
  prepare: false,
  onnotice: () => {},
  connection: {
    application_name: "dashboard",
    default_transaction_read_only: true,
    // Dates read as text are parsed as ISO: a login or database set to
    // another DateStyle (`SQL, DMY`) must not break the summary.
    DateStyle: "ISO, MDY",
    TimeZone: "UTC",
  },
} as const;

/** Limits of {@link AnalystLogins}. */
export interface AnalystLoginsOptions {
  /** Requests holding a connection at once (default 4). */
  maxConnections?: number;
  /** Requests waiting for one, in order (default 32); beyond, refused at once. */
  maxWaiting?: number;
  /** How long a request waits for a connection (default 10 s). */
  maxWaitMs?: number;
  /**
   * How long a request's work may take (default 30 s): a database that stops
   * answering, which its statement timeout cannot end, must not hold a
   * connection's turn for good.
   */
  deadlineMs?: number;
  /**
   * How long one statement may run (default {@link statementTimeoutMs});
   * past it the database cancels it and the request fails as "too_slow".
   */
  statementTimeoutMs?: number;
}

/**
 * Connects as the analysts who sign in, a connection per request, at most
 * `maxConnections` at once: the database's connections are shared with the
 * track function, which a burst of dashboard requests must not starve. More
 * requests wait their turn, in order, within limits; a request refused for
 * want of a turn fails with {@link DashboardBusy}, one whose work overran
 * its deadline with {@link DashboardTimeout}.
 */
export class AnalystLogins {
  readonly #host: string;
  readonly #port: number;
  readonly #database: string;
  readonly #maxConnections: number;
  readonly #maxWaiting: number;
  readonly #maxWaitMs: number;
  readonly #deadlineMs: number;
  readonly #statementTimeoutMs: number;
  #open = 0;
  readonly #waiting: Array<() => void> = [];

  /** `dbUrl` names the database; its user name and password are ignored. */
  constructor(dbUrl: string, options: AnalystLoginsOptions = {}) {
    const url = new URL(dbUrl);
    this.#host = url.hostname;
    this.#port = Number(url.port || "5432");
    this.#database = decodeURIComponent(url.pathname.slice(1)) || "postgres";
    this.#maxConnections = options.maxConnections ?? 4;
    this.#maxWaiting = options.maxWaiting ?? 32;
    this.#maxWaitMs = options.maxWaitMs ?? 10_000;
    this.#deadlineMs = options.deadlineMs ?? 30_000;
    this.#statementTimeoutMs = options.statementTimeoutMs ?? statementTimeoutMs;
  }

  /** Runs `work` connected as `credentials`, on a connection closed when it ends. */
  async run<T>(credentials: Credentials, work: (sql: postgres.Sql) => Promise<T>): Promise<T> {
    await this.#turn();
    try {
      return await this.#connected(credentials, work);
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#open--;
    }
  }

  // A connection of the allowed few: now, or when one is handed over.
  #turn(): Promise<void> {
    if (this.#open < this.#maxConnections) {
      this.#open++;
      return Promise.resolve();
    }
    if (this.#waiting.length >= this.#maxWaiting) return Promise.reject(new DashboardBusy());
    return new Promise((resolve, reject) => {
      const handOver = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#waiting.splice(this.#waiting.indexOf(handOver), 1);
        reject(new DashboardBusy());
      }, this.#maxWaitMs);
      this.#waiting.push(handOver);
    });
  }

  async #connected<T>(
    credentials: Credentials,
    work: (sql: postgres.Sql) => Promise<T>,
  ): Promise<T> {
    const sql = postgres({
      ...connectionOptions,
      connection: { ...connectionOptions.connection, statement_timeout: this.#statementTimeoutMs },
      host: this.#host,
      port: this.#port,
      database: this.#database,
      username: credentials.user,
      password: credentials.password,
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      // A promise even if `work` throws at once.
      const working = Promise.resolve().then(() => work(sql));
      // Past the deadline nobody awaits it; its failure, when the connection
      // is cut below, must not go unhandled.
      working.catch(() => {});
      const overrun = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new DashboardTimeout(this.#deadlineMs)), this.#deadlineMs);
      });
      return await Promise.race([working, overrun]);
    } finally {
      clearTimeout(timer);
      // At once: a connection to a database that stopped answering would
      // not close by itself.
      await sql.end({ timeout: 0 });
    }
  }
}
