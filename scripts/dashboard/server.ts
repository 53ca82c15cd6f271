/**
 * The analysts' dashboard, served by the local stack's gateway under
 * `/dashboard`:
 *
 * | route                         | what                                               |
 * |-------------------------------|----------------------------------------------------|
 * | `GET /dashboard`              | the page (it asks for a Postgres login)            |
 * | `GET /dashboard/app.js`       | its script, Chart.js included (see `bundle.ts`)    |
 * | `GET /dashboard/dashboard.css`| its styles                                         |
 * | `GET /dashboard/api/summary`  | the data, as `summary.ts` reads it; `?days=1..366` |
 *
 * The data endpoint takes HTTP Basic credentials that are a Postgres login
 * (locally `analyst_reader` / `analyst`, a member of the read-only `analyst`
 * role) and reads the views connected as that login: missing or refused
 * credentials answer 401 with `WWW-Authenticate: Basic realm="dashboard"`, a
 * login without the grants 403, an unreachable database 503, and a summary
 * whose queries outlast the statement timeout (15 s) 504 `too_slow`.
 *
 * @example
 * ```sh
 * curl -u analyst_reader:analyst 'http://127.0.0.1:54321/dashboard/api/summary?days=7'
 * ```
 *
 * @module
 */
import {
  AnalystLogins,
  classifyFailure,
  DashboardBusy,
  parseBasicAuth,
  statementTimeoutMs,
} from "./logins.ts";
import { pageBundle } from "./bundle.ts";
import { maxDays, readSummary } from "./summary.ts";

const pageDir = new URL("page/", import.meta.url);

/** The realm of the Basic challenge. */
export const realm = "dashboard";

// The page loads nothing but its own script and styles, and talks only to this server.
const pageHeaders = {
  "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; " +
    "img-src 'self' data:; connect-src 'self'; form-action 'none'; base-uri 'none'; " +
    "frame-ancestors 'none'",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
};

let logins: AnalystLogins | undefined;
let loginsDbUrl: string | undefined;

function error(status: number, code: string, message: string, headers: HeadersInit = {}) {
  return Response.json({ error: { code, message } }, {
    status,
    headers: { ...headers, "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff" },
  });
}

async function file(name: string, type: string): Promise<Response> {
  return new Response(await Deno.readFile(new URL(name, pageDir)), {
    headers: { ...pageHeaders, "Content-Type": type, "Cache-Control": "no-cache" },
  });
}

async function summary(request: Request, dbUrl: string): Promise<Response> {
  const challenge = { "WWW-Authenticate": `Basic realm="${realm}"` };
  const credentials = parseBasicAuth(request.headers.get("Authorization"));
  if (!credentials) {
    return error(401, "unauthorized", "sign in with a Postgres login (HTTP Basic)", challenge);
  }
  const daysParam = new URL(request.url).searchParams.get("days") ?? "30";
  const days = /^\d{1,3}$/.test(daysParam) ? Number(daysParam) : NaN;
  if (!(days >= 1 && days <= maxDays)) {
    return error(400, "invalid_days", `days must be an integer from 1 to ${maxDays}`);
  }
  if (!logins || loginsDbUrl !== dbUrl) {
    logins = new AnalystLogins(dbUrl);
    loginsDbUrl = dbUrl;
  }
  try {
    const data = await logins.run(credentials, (sql) => readSummary(sql, days));
    return Response.json(data, { headers: { "Cache-Control": "no-store" } });
  } catch (failure) {
    if (failure instanceof DashboardBusy) {
      return error(503, "busy", "the dashboard is busy; try again shortly", { "Retry-After": "5" });
    }
    switch (classifyFailure(failure)) {
      case "refused":
        return error(401, "unauthorized", "the database refused this login", challenge);
      case "forbidden":
        return error(403, "forbidden", "this login may not read the analysts' views");
      case "unavailable":
        return error(503, "unavailable", "the database is unavailable; try again shortly", {
          "Retry-After": "5",
        });
      case "too_slow":
        // Asking again asks for the same work: no Retry-After.
        return error(
          504,
          "too_slow",
          `the query took longer than ${statementTimeoutMs / 1000} s; a shorter window may help`,
        );
      default:
        console.error("[dashboard] summary failed:", failure);
        return error(500, "internal", "the summary could not be read");
    }
  }
}

/**
 * Answers every request under `/dashboard`. `dbUrl` names the database to
 * read; its credentials are never used, the analyst's own are.
 */
export async function serveDashboard(request: Request, dbUrl: string): Promise<Response> {
  const { pathname } = new URL(request.url);
  const route = pathname.replace(/\/+$/, "") || "/";
  const known = ["/dashboard", "/dashboard/app.js", "/dashboard/dashboard.css"];
  if (route !== "/dashboard/api/summary" && !known.includes(route)) {
    return error(404, "not_found", "no such dashboard page");
  }
  if (request.method !== "GET" && request.method !== "HEAD") {
    return error(405, "method_not_allowed", "only GET is allowed here", { Allow: "GET, HEAD" });
  }
  try {
    switch (route) {
      case "/dashboard":
        // Start building the script now: the page asks for it next.
        pageBundle().catch(() => {});
        return await file("index.html", "text/html; charset=utf-8");
      case "/dashboard/dashboard.css":
        return await file("dashboard.css", "text/css; charset=utf-8");
      case "/dashboard/app.js":
        return new Response(await pageBundle(), {
          headers: {
            ...pageHeaders,
            "Content-Type": "text/javascript; charset=utf-8",
            "Cache-Control": "no-cache",
          },
        });
      default:
        return await summary(request, dbUrl);
    }
  } catch (failure) {
    console.error(`[dashboard] ${route} failed:`, failure);
    return error(500, "internal", "the dashboard could not answer");
  }
}
