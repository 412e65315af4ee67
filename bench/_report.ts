/**
 * Turns the benchmark's results into markdown tables.
 *
 * @module
 */

import type { TargetRow } from "./_targets.ts";
import type {
  BigFileResult,
  ConcurrencyResult,
  MemoryRow,
  PeerResult,
  ScalingResult,
  TreeResult,
} from "./_scenarios.ts";
import { fmt, fmtSummary, MB } from "./_stats.ts";
import type { Availability } from "./_peers.ts";
import type { HttpResults } from "./_http.ts";
import { renderSync, type SyncResult } from "./_sync.ts";

/** Everything one benchmark run found, as written to `results.json`. */
export interface Results {
  /** Layout version of this object. */
  schema: 1;
  /** ISO time the run started. */
  startedAt: string;
  /** Wall time of the whole run, seconds (setup included). */
  wallSeconds: number;
  /** `full` or `quick`. */
  mode: "full" | "quick";
  /** Runs behind each figure. */
  runsPerFigure: number;
  /** Units used. */
  units: { MB: number; time: string };
  /** The machine. */
  machine: Machine;
  /** Each program and whether it could be used. */
  peers: Record<string, Availability>;
  /** The scenarios. */
  scenarios: {
    bigFile: BigFileResult[];
    manyFiles: TreeResult[];
    concurrency: ConcurrencyResult[];
    memory: MemoryRow[];
    scaling: ScalingResult;
    /** Scenario 6: the HTTP face against python3 -m http.server. */
    http?: HttpResults;
    /** Scenario 7, sync, when it ran. */
    sync?: SyncResult;
    /** Scenario 8, the targets of issue 11, when it ran. */
    targets?: TargetRow[];
  };
}

/** The machine the figures come from. */
export interface Machine {
  /** Logical CPUs. */
  nproc: number;
  /** CPU model from /proc/cpuinfo. */
  cpu: string;
  /** Total memory, MB. */
  memoryMB: number;
  /** Kernel. */
  os: string;
  /** Deno, V8 and TypeScript versions. */
  deno: string;
  /** V8. */
  v8: string;
  /** TypeScript. */
  typescript: string;
  /** /proc/loadavg's 1-minute figure when the run started. */
  loadAverage?: number;
}

function cell(text: string): string {
  return text.replace(/\|/g, "\\|").replace(/\n/g, " ");
}

function table(header: string[], rows: string[][]): string {
  const lines = [
    `| ${header.map(cell).join(" | ")} |`,
    `|${header.map(() => "---").join("|")}|`,
    ...rows.map((row) => `| ${row.map(cell).join(" | ")} |`),
  ];
  return lines.join("\n");
}

function notAvailable(row: PeerResult): string {
  return row.status === "unavailable"
    ? `unavailable: ${row.reason}`
    : `failed: ${row.reason}`;
}

/** The HTTP face's section (scenario 6). */
function renderHttp(http: HttpResults): string[] {
  const out: string[] = ["", "## 6. HTTP face (curl)", ""];
  const rows: string[][] = [];
  for (const size of http.sizes) {
    for (const row of size.rows) {
      rows.push(
        row.mbps && row.seconds
          ? [
            size.label,
            row.peer,
            fmtSummary(row.mbps),
            fmtSummary(row.seconds),
            row.ratioToPython !== undefined
              ? `${row.ratioToPython.toFixed(2)}×`
              : "–",
          ]
          : [size.label, row.peer, notAvailable(row), "", ""],
      );
    }
  }
  out.push(
    table(["file", "peer", "MB/s", "seconds", "ferry vs python"], rows),
  );
  for (const c of http.concurrency) {
    out.push("");
    out.push(
      c.status !== "ok"
        ? `${c.label}: ${c.status}: ${c.reason}`
        : `${c.label} (${c.clients} × ${
          fmt(c.fileBytes / MB)
        } MB, different files): ${c.byteExact} of ${c.clients} byte-exact in every run; wall ${
          fmtSummary(c.wallSeconds!)
        } s, ${fmtSummary(c.aggregateMBps!)} MB/s aggregate` +
          (c.firstFailure ? `; first failure: ${c.firstFailure}` : ""),
    );
  }
  return out;
}

/**
 * Renders the whole report as markdown.
 *
 * @param r The results.
 * @returns Markdown text.
 *
 * @example
 * ```ts ignore
 * console.log(renderMarkdown(results));
 * ```
 */
export function renderMarkdown(r: Results): string {
  const out: string[] = [];
  const m = r.machine;
  out.push("# ferry benchmark");
  out.push("");
  out.push(
    `Machine: ${m.nproc} × ${m.cpu}, ${
      fmt(m.memoryMB / 1000)
    } GB RAM, ${m.os}; ` +
      `deno ${m.deno} (V8 ${m.v8}, TypeScript ${m.typescript})` +
      (m.loadAverage !== undefined
        ? `; load average ${m.loadAverage} at the start.`
        : "."),
  );
  out.push(
    `Mode: ${r.mode}; each figure is the median of ${r.runsPerFigure} run(s), ` +
      `(min–max) after it. MB = 10^6 bytes. Loopback 127.0.0.1, file to file, ` +
      `page cache warm, destination removed before each run; a run is timed from ` +
      `the client's spawn to its exit. Started ${r.startedAt}, took ${
        fmt(r.wallSeconds)
      } s.`,
  );
  out.push("");
  out.push(
    "Peers: " +
      Object.entries(r.peers).map(([name, a]) =>
        `${name}: ${
          a.available ? (a.version ?? "available") : `unavailable (${a.reason})`
        }`
      ).join("; ") + ".",
  );

  out.push("");
  out.push("## 1. Big file");
  out.push("");
  const bigRows: string[][] = [];
  for (const size of r.scenarios.bigFile) {
    for (const row of size.rows) {
      const notes = [
        row.tries
          ? `${row.tries.total} tries for ${r.runsPerFigure} run(s), ${row.tries.failed} failed`
          : "",
        row.note ?? "",
      ].filter((s) => s).join("; ");
      bigRows.push(
        row.mbps && row.seconds
          ? [
            size.label,
            row.peer,
            fmtSummary(row.mbps),
            fmtSummary(row.seconds),
            row.ratioToFerry !== undefined
              ? `${row.ratioToFerry.toFixed(2)}×`
              : "–",
            notes,
          ]
          : [size.label, row.peer, notAvailable(row), "", "", notes],
      );
    }
  }
  out.push(
    table(
      ["file", "peer", "MB/s", "seconds", "speed vs ferry", "notes"],
      bigRows,
    ),
  );

  out.push("");
  out.push("## 2. Many small files");
  out.push("");
  const treeRows: string[][] = [];
  for (const tree of r.scenarios.manyFiles) {
    for (const row of tree.rows) {
      if (!row.seconds || !row.filesPerSecond) {
        treeRows.push([tree.label, row.peer, notAvailable(row), "", ""]);
        continue;
      }
      const notes: string[] = [];
      if (row.tries) {
        notes.push(`${row.tries.total} tries, ${row.tries.failed} failed`);
      }
      if (row.note) notes.push(row.note);
      let wall = fmtSummary(row.seconds);
      if (row.capped) {
        wall = `capped: ${row.capped.files} of ${row.capped.of} files in ${
          fmtSummary(row.seconds)
        } s; ~${fmt(row.extrapolatedSeconds!)} s for all (extrapolated)`;
      }
      treeRows.push([
        tree.label,
        row.peer,
        wall,
        fmtSummary(row.filesPerSecond),
        notes.join("; "),
      ]);
    }
  }
  out.push(
    table(["files", "peer", "wall seconds", "files/s", "notes"], treeRows),
  );

  out.push("");
  out.push("## 3. Concurrency (ferry)");
  out.push("");
  const concRows = r.scenarios.concurrency.map((c) =>
    c.status !== "ok"
      ? [
        c.label,
        notAvailable(c as unknown as PeerResult),
        "",
        "",
        "",
        "",
        c.clientsMade,
      ]
      : [
        c.label,
        c.allSucceeded
          ? `all ${c.clients} ok in every run`
          : `${c.failures} failed (${c.firstFailure})`,
        fmtSummary(c.aggregateMBps!),
        fmtSummary(c.p50Seconds!),
        fmtSummary(c.p99Seconds!),
        fmtSummary(c.wallSeconds!),
        c.clientsMade,
      ]
  );
  out.push(
    table(
      [
        "workload",
        "clients ok (byte counts checked)",
        "aggregate MB/s",
        "p50 s per client",
        "p99 s per client",
        "wall s",
        "clients are",
      ],
      concRows,
    ),
  );

  out.push("");
  out.push("## 4. Memory (peak RSS, MB)");
  out.push("");
  const memRows = r.scenarios.memory.map((row) => [
    row.during,
    row.program,
    row.peakMB !== undefined ? fmt(row.peakMB) : `${row.status}: ${row.reason}`,
    row.method ?? "",
  ]);
  for (const c of r.scenarios.concurrency) {
    if (c.serverPeakMB !== undefined) {
      memRows.push([
        c.label,
        "ferry server",
        fmt(c.serverPeakMB),
        "VmHWM from /proc/PID/status before SIGTERM",
      ]);
    }
  }
  out.push(table(["during", "program", "peak RSS MB", "method"], memRows));

  out.push("");
  out.push("## 5. Scaling (ferry)");
  out.push("");
  const s = r.scenarios.scaling;
  const scaleRows: string[][] = [];
  for (const p of s.sizes) {
    scaleRows.push(
      p.seconds
        ? [
          `get ${p.label}`,
          fmtSummary(p.seconds),
          `${fmt(p.amount / MB / p.seconds.median)} MB/s`,
          p.source ?? "",
        ]
        : [`get ${p.label}`, `${p.status}: ${p.reason}`, "", ""],
    );
  }
  for (const p of s.trees) {
    scaleRows.push(
      p.seconds
        ? [
          `get -r ${p.label}`,
          fmtSummary(p.seconds),
          `${fmt((p.seconds.median / p.amount) * 1000)} ms/file`,
          p.source ?? "",
        ]
        : [`get -r ${p.label}`, `${p.status}: ${p.reason}`, "", ""],
    );
  }
  out.push(table(["workload", "seconds", "rate", "figure from"], scaleRows));
  const reading: string[] = [];
  if (s.linearity) reading.push(`Size: ${s.linearity}.`);
  if (s.perFileMs !== undefined) {
    reading.push(
      `Files: each extra file costs ${
        fmt(s.perFileMs)
      } ms (slope between the smallest and largest tree).`,
    );
  }
  if (reading.length) {
    out.push("");
    out.push(reading.join(" "));
  }
  if (r.scenarios.http) out.push(...renderHttp(r.scenarios.http));
  out.push("");
  out.push(...renderSync(r.scenarios.sync));
  return out.join("\n");
}
