/**
 * The dashboard page: asks for a Postgres login, reads
 * `/dashboard/api/summary` with it (HTTP Basic, sent by this script; the
 * browser keeps no credentials of its own) and draws the charts with
 * Chart.js.
 *
 * Each chart's canvas carries `data-series`: the data of each of its series,
 * as JSON, a plain record of what is on screen. `body[data-state]` says where the page is: `signed-out`,
 * `loading`, `ready` or `error`.
 *
 * @module
 */
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  type ChartConfiguration,
  Filler,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
} from "./chart.ts";
import type { EntityActivity, Summary } from "../summary.ts";

Chart.register(
  BarController,
  BarElement,
  CategoryScale,
  Filler,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
);
Chart.defaults.animation = false;
Chart.defaults.maintainAspectRatio = false;
Chart.defaults.color = "#52606d";
Chart.defaults.font.family = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";

const palette = [
  "#2563eb",
  "#f59e0b",
  "#10b981",
  "#ef4444",
  "#8b5cf6",
  "#06b6d4",
  "#ec4899",
  "#84cc16",
  "#f97316",
  "#64748b",
];

function element<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`the page has no #${id}`);
  return found as T;
}

const loginForm = element<HTMLFormElement>("login");
const loginError = element<HTMLParagraphElement>("login-error");
const loadError = element<HTMLParagraphElement>("load-error");
const dashboard = element<HTMLElement>("dashboard");
const account = element<HTMLDivElement>("account");
const daysSelect = element<HTMLSelectElement>("days");

let authorization: string | null = null;
const charts = new Map<string, Chart>();

function setState(state: "signed-out" | "loading" | "ready" | "error"): void {
  document.body.dataset.state = state;
}

function basicAuthorization(user: string, password: string): string {
  const bytes = new TextEncoder().encode(`${user}:${password}`);
  return `Basic ${btoa(Array.from(bytes, (byte) => String.fromCharCode(byte)).join(""))}`;
}

type Loaded = { ok: true; summary: Summary } | { ok: false; status: number; message: string };

async function fetchSummary(days: string): Promise<Loaded> {
  let response: Response;
  try {
    response = await fetch(`/dashboard/api/summary?days=${encodeURIComponent(days)}`, {
      headers: { Authorization: authorization ?? "" },
      // The Authorization header is ours; "omit" keeps the browser from
      // prompting for, or replaying, credentials of its own on a 401.
      credentials: "omit",
      cache: "no-store",
    });
  } catch {
    return { ok: false, status: 0, message: "The dashboard server cannot be reached." };
  }
  if (response.ok) return { ok: true, summary: await response.json() };
  const body = await response.json().catch(() => null);
  const messages: Record<number, string> = {
    401: "Wrong login or password.",
    403: "This login may not read the analysts' views.",
  };
  return {
    ok: false,
    status: response.status,
    message: messages[response.status] ?? body?.error?.message ?? `HTTP ${response.status}`,
  };
}

function signOut(message = ""): void {
  authorization = null;
  for (const chart of charts.values()) chart.destroy();
  charts.clear();
  dashboard.hidden = true;
  account.hidden = true;
  loginForm.hidden = false;
  loginForm.reset();
  loginError.textContent = message;
  setState("signed-out");
}

async function load(): Promise<void> {
  setState("loading");
  const loaded = await fetchSummary(daysSelect.value);
  if (!loaded.ok) {
    if (loaded.status === 401 || loaded.status === 403) return signOut(loaded.message);
    // Until a first summary is drawn, the dashboard and its error line are
    // hidden: the sign-in form is what the user is looking at.
    (dashboard.hidden ? loginError : loadError).textContent = loaded.message;
    setState("error");
    return;
  }
  loadError.textContent = "";
  loginForm.hidden = true;
  dashboard.hidden = false;
  account.hidden = false;
  render(loaded.summary);
  setState("ready");
}

loginForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const form = new FormData(loginForm);
  const user = String(form.get("user") ?? "");
  authorization = basicAuthorization(user, String(form.get("password") ?? ""));
  element("signed-in-as").textContent = `signed in as ${user}`;
  loginError.textContent = "";
  void load();
});
daysSelect.addEventListener("change", () => void load());
element("refresh").addEventListener("click", () => void load());
element("sign-out").addEventListener("click", () => signOut());

// Every day of the window, oldest first, as YYYY-MM-DD.
function windowDays(firstDay: string, lastDay: string): string[] {
  const days: string[] = [];
  const day = new Date(`${firstDay}T00:00:00Z`);
  const last = new Date(`${lastDay}T00:00:00Z`);
  while (day <= last) {
    days.push(day.toISOString().slice(0, 10));
    day.setUTCDate(day.getUTCDate() + 1);
  }
  return days;
}

const integer = new Intl.NumberFormat("en", { maximumFractionDigits: 0 });
const decimal = new Intl.NumberFormat("en", { maximumFractionDigits: 2 });
const percent = (value: number | null) => value === null ? "–" : `${decimal.format(value)}%`;

// The series as the chart holds them, for the page's tests to read.
function draw(id: string, config: ChartConfiguration): void {
  charts.get(id)?.destroy();
  const canvas = element<HTMLCanvasElement>(id);
  const chart = new Chart(canvas, config);
  charts.set(id, chart);
  canvas.dataset.series = JSON.stringify(chart.data.datasets.map((dataset) => dataset.data));
}

function shortLabel(entity: EntityActivity): string {
  const id = entity.entityId.length > 28 ? `${entity.entityId.slice(0, 27)}…` : entity.entityId;
  return `${entity.entityType} · ${id}`;
}

function render(summary: Summary): void {
  const { window: span, totals } = summary;
  const dates = `${span.firstDay} to ${span.lastDay}`;
  element("window-note").textContent = `Sessions, entities and the funnel from ${dates} ` +
    `(UTC, ${span.days} days).`;
  element("funnel-window").textContent = `(${dates}, UTC)`;
  element("top-events-window").textContent = `(${dates}, UTC)`;
  element("kpi-sessions").textContent = integer.format(totals.sessions);
  element("kpi-bounce").textContent = percent(totals.bounceRate);
  element("kpi-score").textContent = totals.avgEngagementScore === null
    ? "–"
    : decimal.format(totals.avgEngagementScore);
  element("kpi-events").textContent = integer.format(summary.funnel.events);

  const days = windowDays(span.firstDay, span.lastDay);
  const byDay = new Map(summary.daily.map((row) => [row.day, row]));
  const sessions = days.map((day) => byDay.get(day)?.sessions ?? 0);
  const visitors = days.map((day) => byDay.get(day)?.users ?? 0);
  const bounce = days.map((day) => byDay.get(day)?.bounceRate ?? null);

  draw("chart-sessions", {
    type: "bar",
    data: {
      labels: days,
      datasets: [
        { type: "bar", label: "sessions", data: sessions, backgroundColor: palette[0] },
        {
          type: "line",
          label: "visitors",
          data: visitors,
          borderColor: palette[1],
          backgroundColor: palette[1],
          pointRadius: 2,
        },
      ],
    },
    options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
  });

  draw("chart-bounce", {
    type: "line",
    data: {
      labels: days,
      datasets: [{
        label: "bounce rate (%)",
        data: bounce,
        borderColor: palette[3],
        backgroundColor: "rgba(239, 68, 68, 0.15)",
        fill: true,
        pointRadius: 3,
        spanGaps: false,
      }],
    },
    options: {
      scales: { y: { min: 0, max: 100, ticks: { callback: (value) => `${value}%` } } },
    },
  });

  const scores = summary.scoreDistribution.map((bucket) => bucket.sessions);
  draw("chart-scores", {
    type: "bar",
    data: {
      labels: summary.scoreDistribution.map((bucket) => bucket.label),
      datasets: [{ label: "sessions", data: scores, backgroundColor: palette[2] }],
    },
    options: {
      plugins: { legend: { display: false } },
      scales: {
        x: { title: { display: true, text: "engagement score" } },
        y: { beginAtZero: true, ticks: { precision: 0 } },
      },
    },
  });

  const funnel = summary.funnel;
  const steps = [funnel.viewers, funnel.clickers, funnel.ticketClickers, funnel.attendees];
  draw("chart-funnel", {
    type: "bar",
    data: {
      labels: ["viewed", "clicked", "clicked a ticket link", "attended"],
      datasets: [{
        label: "visitors (per event, summed)",
        data: steps,
        backgroundColor: [palette[0], palette[5], palette[4], palette[2]],
      }],
    },
    options: {
      indexAxis: "y",
      plugins: {
        legend: { display: false },
        tooltip: {
          callbacks: {
            label: (item) => {
              const visitors = Number(item.raw);
              const share = funnel.viewers
                ? Math.round(10000 * visitors / funnel.viewers) / 100
                : null;
              return `${integer.format(visitors)} (${percent(share)} of viewers)`;
            },
          },
        },
      },
      scales: { x: { beginAtZero: true, ticks: { precision: 0 } } },
    },
  });

  const entities = summary.topEntities;
  const total = (eventType: string) =>
    entities.reduce((sum, entity) => sum + (entity.byEventType[eventType] ?? 0), 0);
  const eventTypes = [...new Set(entities.flatMap((entity) => Object.keys(entity.byEventType)))]
    .sort((a, b) => total(b) - total(a) || a.localeCompare(b));
  draw("chart-entities", {
    type: "bar",
    data: {
      labels: entities.map(shortLabel),
      datasets: eventTypes.map((eventType, index) => ({
        label: eventType,
        data: entities.map((entity) => entity.byEventType[eventType] ?? 0),
        backgroundColor: palette[index % palette.length],
      })),
    },
    options: {
      indexAxis: "y",
      scales: {
        x: { stacked: true, beginAtZero: true, ticks: { precision: 0 } },
        y: { stacked: true },
      },
    },
  });

  const tbody = element<HTMLTableElement>("top-events").tBodies[0];
  tbody.replaceChildren(...summary.topEvents.map((row) => {
    const tr = document.createElement("tr");
    const cells = [
      row.entityId,
      integer.format(row.viewers),
      integer.format(row.clickers),
      integer.format(row.ticketClickers),
      integer.format(row.attendees),
      percent(row.viewToClickPct),
      percent(row.clickToTicketClickPct),
      percent(row.viewToAttendancePct),
    ];
    tr.append(...cells.map((text) => {
      const td = document.createElement("td");
      td.textContent = text;
      return td;
    }));
    return tr;
  }));
}

setState("signed-out");
