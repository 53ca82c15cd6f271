/**
 * Draws throughput against batch size as a standalone SVG, both axes on a
 * log scale: the HTTP path (best over concurrency, and each concurrency), the
 * COPY ceiling per batch, 0.8x that ceiling (the target), the bulk COPY and
 * the naive per-row inserts.
 *
 * @example
 * ```ts
 * import { throughputPlot } from "./plot.ts";
 * import type { Cell, Summary } from "./report.ts";
 *
 * async function draw(cells: Cell[], summary: Summary) {
 *   await Deno.writeTextFile("throughput.svg", throughputPlot(cells, summary, "2 cores, ..."));
 * }
 * ```
 *
 * @module
 */
import type { Cell, Summary } from "./report.ts";

/** One line on the plot. */
interface Series {
  label: string;
  color: string;
  /** Points by batch size; a single point with `flat` draws a horizontal line. */
  points: Array<{ batch: number; eventsPerSecond: number }>;
  dashed?: boolean;
  dotted?: boolean;
  thin?: boolean;
  /** A level that does not depend on batch size (drawn across the plot). */
  flat?: boolean;
  /** Print each point's value beside it. */
  labelled?: boolean;
}

const escape = (s: string) =>
  s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");

const compact = (n: number) =>
  n >= 1e6
    ? `${+(n / 1e6).toFixed(1)}M`
    : n >= 1e3
    ? `${+(n / 1e3).toFixed(1)}k`
    : `${Math.round(n)}`;

/** The SVG document for `series`, batch sizes on x, events/s on y. */
function throughputSvg(
  options: { title: string; subtitle: string; series: Series[] },
): string {
  const width = 1040;
  const height = 560;
  const m = { left: 80, right: 330, top: 70, bottom: 60 };
  const plotW = width - m.left - m.right;
  const plotH = height - m.top - m.bottom;
  const all = options.series.flatMap((s) => s.points);
  const xs = options.series.filter((s) => !s.flat).flatMap((s) => s.points.map((p) => p.batch));
  const xMin = Math.min(...xs);
  const xMax = Math.max(...xs);
  const values = all.map((p) => p.eventsPerSecond).filter((v) => v > 0);
  const yMin = 10 ** Math.floor(Math.log10(Math.min(...values)));
  const yMax = 10 ** Math.ceil(Math.log10(Math.max(...values)));
  const lx = (v: number) =>
    m.left + (xMax === xMin ? plotW / 2 : ((Math.log10(v) - Math.log10(xMin)) /
      (Math.log10(xMax) - Math.log10(xMin))) * plotW);
  const ly = (v: number) =>
    m.top + plotH -
    ((Math.log10(v) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin))) * plotH;

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${m.left}" y="28" font-size="17" font-weight="600">${escape(options.title)}</text>`,
    `<text x="${m.left}" y="48" fill="#555">${escape(options.subtitle)}</text>`,
  );
  // Grid: every decade, with 2x and 5x in between.
  for (let decade = yMin; decade < yMax * 1.01; decade *= 10) {
    for (const k of [1, 2, 5]) {
      const v = decade * k;
      if (v > yMax * 1.001) continue;
      const y = ly(v).toFixed(1);
      out.push(
        `<line x1="${m.left}" x2="${m.left + plotW}" y1="${y}" y2="${y}" stroke="${
          k === 1 ? "#ccc" : "#eee"
        }"/>`,
        `<text x="${
          m.left - 8
        }" y="${y}" text-anchor="end" dominant-baseline="middle" fill="#444">${compact(v)}</text>`,
      );
    }
  }
  for (const b of [...new Set(xs)].sort((a, c) => a - c)) {
    const x = lx(b).toFixed(1);
    out.push(
      `<line x1="${x}" x2="${x}" y1="${m.top}" y2="${m.top + plotH}" stroke="#eee"/>`,
      `<text x="${x}" y="${m.top + plotH + 18}" text-anchor="middle" fill="#444">${b}</text>`,
    );
  }
  out.push(
    `<rect x="${m.left}" y="${m.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#888"/>`,
    `<text x="${m.left + plotW / 2}" y="${
      height - 18
    }" text-anchor="middle">events per request (batch size, log scale)</text>`,
    `<text transform="translate(22 ${
      m.top + plotH / 2
    }) rotate(-90)" text-anchor="middle">events stored per second (log scale)</text>`,
  );

  options.series.forEach((s, i) => {
    const dash = s.dashed ? ` stroke-dasharray="8 5"` : s.dotted ? ` stroke-dasharray="2 4"` : "";
    const widthAttr = s.thin ? 1 : 2.5;
    const points = s.flat
      ? [{ batch: xMin, eventsPerSecond: s.points[0].eventsPerSecond }, {
        batch: xMax,
        eventsPerSecond: s.points[0].eventsPerSecond,
      }]
      : [...s.points].sort((a, b) => a.batch - b.batch);
    const path = points.filter((p) => p.eventsPerSecond > 0)
      .map((p, j) =>
        `${j ? "L" : "M"}${lx(p.batch).toFixed(1)} ${ly(p.eventsPerSecond).toFixed(1)}`
      )
      .join(" ");
    out.push(
      `<path d="${path}" fill="none" stroke="${s.color}" stroke-width="${widthAttr}"${dash}/>`,
    );
    if (!s.flat && !s.thin && !s.dotted) {
      for (const p of points.filter((q) => q.eventsPerSecond > 0)) {
        out.push(
          `<circle cx="${lx(p.batch).toFixed(1)}" cy="${
            ly(p.eventsPerSecond).toFixed(1)
          }" r="3.5" fill="${s.color}"/>`,
        );
      }
    }
    if (s.labelled) {
      for (const p of points.filter((q) => q.eventsPerSecond > 0)) {
        // The rightmost label goes left of its point, inside the plot.
        const last = p.batch === xMax;
        out.push(
          `<text x="${(lx(p.batch) + (last ? -6 : 6)).toFixed(1)}" y="${
            (ly(p.eventsPerSecond) - 7).toFixed(1)
          }" text-anchor="${last ? "end" : "start"}" fill="${s.color}" font-size="11">${
            compact(p.eventsPerSecond)
          }</text>`,
        );
      }
    }
    // Legend.
    const ly0 = m.top + 10 + i * 22;
    const lx0 = m.left + plotW + 20;
    out.push(
      `<line x1="${lx0}" x2="${
        lx0 + 28
      }" y1="${ly0}" y2="${ly0}" stroke="${s.color}" stroke-width="${widthAttr}"${dash}/>`,
      `<text x="${lx0 + 36}" y="${ly0}" dominant-baseline="middle">${escape(s.label)}</text>`,
    );
  });
  out.push("</svg>");
  return out.join("\n") + "\n";
}

const blues = ["#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#08519c"];

/** The benchmark's plot: every path's events/s against batch size. */
export function throughputPlot(cells: Cell[], summary: Summary, subtitle: string): string {
  const perBatch = summary.perBatch;
  const concurrencies = [
    ...new Set(cells.filter((c) => c.path === "http").map((c) => c.concurrency)),
  ]
    .sort((a, b) => a - b);
  const series: Series[] = [
    ...concurrencies.map((c, i) => ({
      label: `(b) HTTP, ${c} client${c > 1 ? "s" : ""}`,
      color: blues[i % blues.length],
      thin: true,
      points: cells.filter((x) => x.path === "http" && x.concurrency === c)
        .map((x) => ({ batch: x.batch, eventsPerSecond: x.eventsPerSecond })),
    })),
    {
      label: "(b) HTTP -> track -> Postgres, best",
      color: "#08306b",
      labelled: true,
      points: perBatch.filter((b) => b.http).map((b) => ({
        batch: b.batch,
        eventsPerSecond: b.http!.eventsPerSecond,
      })),
    },
    {
      label: "(a) COPY + sessions upsert, per batch",
      color: "#238b45",
      labelled: true,
      points: perBatch.filter((b) => b.copy).map((b) => ({
        batch: b.batch,
        eventsPerSecond: b.copy!.eventsPerSecond,
      })),
    },
    {
      label: "(b) SQL half alone: the function's statement made directly",
      color: "#6a51a3",
      labelled: true,
      points: perBatch.filter((b) => b.sql).map((b) => ({
        batch: b.batch,
        eventsPerSecond: b.sql!.eventsPerSecond,
      })),
    },
    {
      label: "0.8 x (a): the target",
      color: "#74c476",
      dotted: true,
      points: perBatch.filter((b) => b.copy).map((b) => ({
        batch: b.batch,
        eventsPerSecond: b.copy!.eventsPerSecond * 0.8,
      })),
    },
  ];
  if (summary.bulkCopy) {
    series.push({
      label: "(a) COPY, all rows at once",
      color: "#238b45",
      dashed: true,
      flat: true,
      points: [{ batch: 1, eventsPerSecond: summary.bulkCopy }],
    });
  }
  if (summary.naive) {
    series.push({
      label: "(c) naive: one INSERT per event",
      color: "#cb181d",
      dashed: true,
      flat: true,
      points: [{ batch: 1, eventsPerSecond: summary.naive.eventsPerSecond }],
    });
  }
  return throughputSvg({
    title: "Ingestion throughput against batch size",
    subtitle,
    series: series.filter((s) => s.points.length > 0),
  });
}
