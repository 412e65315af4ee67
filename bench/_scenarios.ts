/**
 * The benchmark's five scenarios: big file, many small files, concurrency,
 * memory (measured during the big-file runs) and scaling. Each returns plain
 * data; `_report.ts` turns it into tables.
 *
 * Every run is file to file over 127.0.0.1 with the source in the page cache
 * and the destination removed before the run. A run is timed from the
 * client's spawn to its exit, so every peer pays for starting its client
 * process (a Deno, Python, rsync, curl or nc process) in the same way.
 *
 * @module
 */

import {
  countTree,
  fileSize,
  type FileTree,
  removeIfExists,
  sha256File,
  warm,
} from "./_data.ts";
import {
  type Availability,
  classicGet,
  curlGet,
  ferryGet,
  ncGet,
  rawGet,
  REPO_DIR,
  rsyncGet,
  startClassicServer,
  startFerryServer,
  startHttpServer,
  startNcServer,
  startRawServer,
  startRsyncDaemon,
  type Toolbox,
} from "./_peers.ts";
import { lastLine, reasonOf, runTimed, type ServerProcess } from "./_proc.ts";
import { MB, percentile, rate, summarize, type Summary } from "./_stats.ts";
import { startClusterServer } from "./cluster.ts";

/** Shared state of one benchmark run. */
export interface Context {
  /** Temporary root (removed at the end). */
  tmp: string;
  /** Data root: every source file and tree lives here. */
  src: string;
  /** Destination root. */
  dst: string;
  /** Runs per figure. */
  runs: number;
  /** Quick mode: small sizes, short caps. */
  quick: boolean;
  /** Available programs. */
  tools: Toolbox;
  /** Progress output (stderr). */
  log: (line: string) => void;
}

/** How a measurement ended. */
export type Status = "ok" | "failed" | "unavailable";

/** A peer's timing in one workload. */
export interface PeerResult {
  /** Peer name as shown in the table. */
  peer: string;
  /** Whether figures exist. */
  status: Status;
  /** Why not, when not ok. */
  reason?: string;
  /** Wall seconds per run. */
  seconds?: Summary;
  /** Raw wall seconds of every run. */
  runSeconds?: number[];
  /** Tries needed (classic programs only): total and failed. */
  tries?: { total: number; failed: number };
  /** Anything a reader must know to read the figure right. */
  note?: string;
}

/** A peer's row in the big-file table. */
export interface BigFileRow extends PeerResult {
  /** Throughput in MB/s (10^6 bytes). */
  mbps?: Summary;
  /** This peer's median MB/s divided by ferry's. */
  ratioToFerry?: number;
}

/** One big-file size. */
export interface BigFileResult {
  /** Size label, e.g. `1 GiB`. */
  label: string;
  /** File size in bytes. */
  bytes: number;
  /** One row per peer. */
  rows: BigFileRow[];
}

/** Peak RSS of one program in one workload. */
export interface MemoryRow {
  /** The workload. */
  during: string;
  /** The program. */
  program: string;
  /** Whether it was measured. */
  status: Status;
  /** Why not. */
  reason?: string;
  /** Peak resident set size in MB (10^6 bytes). */
  peakMB?: number;
  /** How it was measured. */
  method?: string;
}

/** A big file on disk. */
export interface BigFile {
  /** Size label. */
  label: string;
  /** Name relative to the data root. */
  name: string;
  /** Size in bytes. */
  bytes: number;
}

/** A tree row in the many-files table. */
export interface TreeRow extends PeerResult {
  /** Files per second (per run). */
  filesPerSecond?: Summary;
  /** Files actually moved per run when the peer was capped. */
  filesDone?: number[];
  /** Set when only part of the tree was moved per run. */
  capped?: { files: number; of: number; secondsCap: number };
  /** Estimated time for the whole tree (capped peers). */
  extrapolatedSeconds?: number;
}

/** One many-files workload. */
export interface TreeResult {
  /** Label, e.g. `1,000 × 4 KiB`. */
  label: string;
  /** Number of files. */
  count: number;
  /** Bytes per file. */
  size: number;
  /** One row per peer. */
  rows: TreeRow[];
}

/** One concurrency workload. */
export interface ConcurrencyResult {
  /** Label. */
  label: string;
  /** How clients were made. */
  clientsMade: string;
  /** Number of clients. */
  clients: number;
  /** Bytes each client gets. */
  fileBytes: number;
  /** Whether measured. */
  status: Status;
  /** Why not. */
  reason?: string;
  /** Clients that succeeded byte-exact in every run. */
  allSucceeded?: boolean;
  /** Failed clients over all runs. */
  failures?: number;
  /** First failure message. */
  firstFailure?: string;
  /** Wall time from the common start to the last client done. */
  wallSeconds?: Summary;
  /** All bytes moved / wall time, MB/s. */
  aggregateMBps?: Summary;
  /** Per-run p50 of per-client seconds. */
  p50Seconds?: Summary;
  /** Per-run p99 of per-client seconds. */
  p99Seconds?: Summary;
  /** Peak RSS of the ferry server over all runs, MB. */
  serverPeakMB?: number;
}

/** One point of the scaling scenario. */
export interface ScalingPoint {
  /** Label. */
  label: string;
  /** Bytes (sizes) or files (trees). */
  amount: number;
  /** Whether measured. */
  status: Status;
  /** Why not. */
  reason?: string;
  /** Wall seconds. */
  seconds?: Summary;
  /** Where the figure comes from. */
  source?: string;
}

/** The scaling scenario. */
export interface ScalingResult {
  /** ferry `get` of one file per size. */
  sizes: ScalingPoint[];
  /** ferry `get -r` of a tree per file count. */
  trees: ScalingPoint[];
  /** How time grows with size: marginal MB/s between consecutive sizes. */
  linearity?: string;
  /** Marginal cost per file from the smallest to the largest tree, ms. */
  perFileMs?: number;
}

class Failure extends Error {}

/** Why the first of `tools` that is not available cannot be used, if any. */
function missing(...tools: Availability[]): string | undefined {
  return tools.find((tool) => !tool.available)?.reason;
}

/**
 * A workload whose first run takes longer than this is run only once, so
 * that one slow peer cannot push the benchmark past its time budget.
 */
const SLOW_RUN_SECONDS = 20;

function slowNote(seconds: number): string {
  return `1 run only: the first took ${
    seconds.toFixed(1)
  } s (over ${SLOW_RUN_SECONDS} s)`;
}

function explain(result: {
  code: number;
  stderr: string;
  timedOut: boolean;
}): string {
  if (result.timedOut) return "timed out";
  const line = lastLine(result.stderr);
  return `exit ${result.code}${line ? `: ${line}` : ""}`;
}

function timeoutFor(bytes: number): number {
  return 30_000 + (bytes / (10 * MB)) * 1000;
}

/**
 * Empties a destination folder and flushes dirty pages to disk (`sync`),
 * so that no run pays for the writeback of the data or of the run before.
 */
async function freshDir(dir: string): Promise<void> {
  await removeIfExists(dir);
  await Deno.mkdir(dir, { recursive: true });
  await syncDisks();
}

/**
 * Runs `sync`; ignored where it is missing.
 *
 * @returns When dirty pages are on disk.
 *
 * @example
 * ```ts ignore
 * await syncDisks();
 * ```
 */
export async function syncDisks(): Promise<void> {
  try {
    await new Deno.Command("sync", {
      stdin: "null",
      stdout: "null",
      stderr: "null",
    })
      .output();
  } catch {
    // no sync program: nothing to flush with
  }
}

const sourceHashes = new Map<string, Promise<string>>();

function sourceHash(path: string): Promise<string> {
  let hash = sourceHashes.get(path);
  if (!hash) {
    hash = sha256File(path);
    sourceHashes.set(path, hash);
  }
  return hash;
}

/** Specification of one peer's big-file get. */
interface BigSpec {
  peer: string;
  unavailable?: string;
  file: BigFile;
  /** Starts the server; `perRun` servers are started before each try. */
  server: () => Promise<ServerProcess>;
  perRun?: boolean;
  /** Client command line; `out` is the file it will write. */
  client: (port: number, dir: string) => {
    cmd: string;
    args: string[];
    cwd?: string;
    stdin?: string;
    out: string;
  };
  /** Retry a failed try up to this many tries (classic programs race). */
  maxTries?: number;
  /** Measure peak RSS of both sides under these program names. */
  memory?: { server: string; client: string };
  note?: string;
}

async function bigFileGet(
  ctx: Context,
  spec: BigSpec,
  memory: MemoryRow[],
): Promise<BigFileRow> {
  const during = `get ${spec.file.label}`;
  const memoryUnavailable = (reason: string) => {
    if (!spec.memory) return;
    for (const program of [spec.memory.server, spec.memory.client]) {
      memory.push({ during, program, status: "unavailable", reason });
    }
  };
  if (spec.unavailable) {
    memoryUnavailable(spec.unavailable);
    return { peer: spec.peer, status: "unavailable", reason: spec.unavailable };
  }
  ctx.log(`  ${spec.peer}`);
  const source = `${ctx.src}/${spec.file.name}`;
  const dir = `${ctx.dst}/big`;
  const runSeconds: number[] = [];
  let total = 0;
  let failed = 0;
  let clientPeakKb = 0;
  let serverPeakKb: number | undefined;
  let server: ServerProcess | undefined;
  let checked = false;
  let slow: string | undefined;
  const rssFile = `${ctx.tmp}/rss.txt`;
  try {
    if (!spec.perRun) server = await spec.server();
    runs: for (let run = 0; run < ctx.runs; run++) {
      const maxTries = spec.maxTries ?? 1;
      for (let attempt = 1;; attempt++) {
        await freshDir(dir);
        if (spec.perRun) server = await spec.server();
        const command = spec.client(server!.port, dir);
        total++;
        const result = await runTimed(command.cmd, command.args, {
          cwd: command.cwd,
          stdin: command.stdin,
          timeoutMs: timeoutFor(spec.file.bytes),
          peakRss: spec.memory
            ? {
              time: ctx.tools.time.available ? ctx.tools.time.path : undefined,
              file: rssFile,
            }
            : false,
        });
        if (spec.perRun) {
          await server!.stop();
          server = undefined;
        }
        const size = await fileSize(command.out);
        if (result.code === 0 && size === spec.file.bytes) {
          if (!checked) {
            checked = true;
            if (
              (await sha256File(command.out)) !== (await sourceHash(source))
            ) {
              throw new Failure("received bytes differ from the source");
            }
          }
          runSeconds.push(result.seconds);
          if (result.peakRssKb) {
            clientPeakKb = Math.max(clientPeakKb, result.peakRssKb);
          }
          if (ctx.runs > 1 && result.seconds > SLOW_RUN_SECONDS) {
            slow = slowNote(result.seconds);
            break runs;
          }
          break;
        }
        const why = result.code === 0
          ? `received ${Math.max(size, 0)} of ${spec.file.bytes} bytes`
          : explain(result);
        if (attempt >= maxTries) {
          throw new Failure(
            maxTries > 1 ? `${attempt} tries failed, last: ${why}` : why,
          );
        }
        failed++;
      }
    }
  } catch (error) {
    const reason = reasonOf(error);
    memoryUnavailable(`run failed: ${reason}`);
    return { peer: spec.peer, status: "failed", reason };
  } finally {
    if (server) serverPeakKb = await server.stop();
    await removeIfExists(dir);
  }
  if (spec.memory) {
    memory.push({
      during,
      program: spec.memory.server,
      status: serverPeakKb ? "ok" : "failed",
      peakMB: serverPeakKb ? (serverPeakKb * 1024) / MB : undefined,
      reason: serverPeakKb ? undefined : "no /proc/PID/status",
      method: `VmHWM from /proc/PID/status before SIGTERM (${ctx.runs} gets)`,
    });
    memory.push({
      during,
      program: spec.memory.client,
      status: clientPeakKb ? "ok" : "failed",
      peakMB: clientPeakKb ? (clientPeakKb * 1024) / MB : undefined,
      reason: clientPeakKb ? undefined : "not measured",
      method: ctx.tools.time.available
        ? "/usr/bin/time -f %M, max over runs"
        : "VmHWM polled every 20 ms, max over runs",
    });
  }
  const seconds = summarize(runSeconds);
  const row: BigFileRow = {
    peer: spec.peer,
    status: "ok",
    seconds,
    runSeconds,
    mbps: rate(seconds, spec.file.bytes / MB),
    note: [slow, spec.note].filter((n) => n).join("; ") || undefined,
  };
  if ((spec.maxTries ?? 1) > 1) row.tries = { total, failed };
  return row;
}

/**
 * Scenario 1 (and 4): each peer gets each big file; ferry's and the raw
 * loop's peak RSS are measured on both sides.
 *
 * @param ctx The run's context.
 * @param files The big files, already written.
 * @returns Per size, a row per peer; and the memory rows.
 *
 * @example
 * ```ts ignore
 * const { results, memory } = await bigFileScenario(ctx, [file]);
 * ```
 */
export async function bigFileScenario(
  ctx: Context,
  files: BigFile[],
): Promise<{ results: BigFileResult[]; memory: MemoryRow[] }> {
  const { tools } = ctx;
  const results: BigFileResult[] = [];
  const memory: MemoryRow[] = [];
  for (const file of files) {
    ctx.log(`scenario 1: big file ${file.label}`);
    const source = `${ctx.src}/${file.name}`;
    await warm([source]);
    const rows: BigFileRow[] = [];
    rows.push(
      await bigFileGet(ctx, {
        peer: "ferry get (XXH3-128 verified, the default)",
        unavailable: missing(tools.ferry),
        file,
        server: () => startFerryServer(ctx.src),
        client: (port, dir) => {
          const [cmd, args] = ferryGet(port, file.name, `${dir}/out.bin`);
          return { cmd, args, out: `${dir}/out.bin` };
        },
        memory: { server: "ferry server", client: "ferry client" },
      }, memory),
    );
    rows.push(
      await bigFileGet(ctx, {
        peer: "raw Deno loop (no protocol, no hash)",
        file,
        server: () => startRawServer(source),
        client: (port, dir) => {
          const [cmd, args] = rawGet(port, `${dir}/out.bin`);
          return { cmd, args, out: `${dir}/out.bin` };
        },
        memory: { server: "raw Deno server", client: "raw Deno client" },
      }, memory),
    );
    rows.push(
      await bigFileGet(ctx, {
        peer: `nc (OpenBSD, server ${
          tools.nc.style === "q0" ? "-q0" : "-N"
        } -l, client -d)`,
        unavailable: missing(tools.nc),
        file,
        server: () => startNcServer(tools.nc, source),
        perRun: true,
        client: (port, dir) => {
          const [cmd, args] = ncGet(port, `${dir}/out.bin`);
          return { cmd, args, out: `${dir}/out.bin` };
        },
      }, memory),
    );
    const classicClient = (port: number, dir: string) => {
      const [cmd, args] = classicGet(tools.python.path!, port);
      return {
        cmd,
        args,
        cwd: dir,
        stdin: `${file.name}\n`,
        out: `${dir}/received_${file.name}`,
      };
    };
    rows.push(
      await bigFileGet(ctx, {
        peer: "classic client + classic server",
        unavailable: missing(tools.classic),
        file,
        server: () => startClassicServer(tools.python.path!, ctx.src),
        client: classicClient,
        maxTries: 200,
        note:
          "a try that saves no complete file is retried (the EXISTS/size race)",
      }, memory),
    );
    rows.push(
      await bigFileGet(ctx, {
        peer: "classic client + ferry server",
        unavailable: missing(tools.classic, tools.ferry),
        file,
        server: () => startFerryServer(ctx.src),
        client: classicClient,
        maxTries: 200,
      }, memory),
    );
    rows.push(
      await bigFileGet(ctx, {
        peer: "python3 -m http.server + curl",
        unavailable: missing(tools.python, tools.curl),
        file,
        server: () => startHttpServer(tools.python.path!, ctx.src),
        client: (port, dir) => {
          const [cmd, args] = curlGet(port, file.name, `${dir}/out.bin`);
          return { cmd, args, out: `${dir}/out.bin` };
        },
      }, memory),
    );
    const ferry = rows[0];
    for (const row of rows) {
      if (row.mbps && ferry.mbps) {
        row.ratioToFerry = row.mbps.median / ferry.mbps.median;
      }
    }
    results.push({ label: file.label, bytes: file.bytes, rows });
  }
  return { results, memory };
}

/** Runs a whole-tree client into an empty folder and checks that every file arrived. */
async function treeGet(
  ctx: Context,
  peer: string,
  tree: FileTree,
  server: () => Promise<ServerProcess>,
  client: (port: number, out: string) => [string, string[]],
  usage?: string,
): Promise<TreeRow> {
  ctx.log(`  ${peer}`);
  const dir = `${ctx.dst}/tree`;
  const runSeconds: number[] = [];
  let slow: string | undefined;
  let running: ServerProcess | undefined;
  try {
    running = await server();
    for (let run = 0; run < ctx.runs; run++) {
      await freshDir(dir);
      const [cmd, args] = client(running.port, dir);
      const result = await runTimed(cmd, args, {
        timeoutMs: 60_000 + tree.count * 20,
      });
      if (result.code === 2 && usage) {
        return { peer, status: "unavailable", reason: usage };
      }
      if (result.code !== 0) throw new Failure(explain(result));
      const got = await countTree(dir);
      if (got.files !== tree.count || got.bytes !== tree.count * tree.size) {
        throw new Failure(
          `received ${got.files} files (${got.bytes} bytes), expected ${tree.count} (${
            tree.count * tree.size
          } bytes)`,
        );
      }
      runSeconds.push(result.seconds);
      if (ctx.runs > 1 && result.seconds > SLOW_RUN_SECONDS) {
        slow = slowNote(result.seconds);
        break;
      }
    }
  } catch (error) {
    return { peer, status: "failed", reason: reasonOf(error) };
  } finally {
    await running?.stop();
    await removeIfExists(dir);
  }
  const seconds = summarize(runSeconds);
  return {
    peer,
    status: "ok",
    seconds,
    runSeconds,
    filesPerSecond: rate(seconds, tree.count),
    note: slow,
  };
}

/** The classic client once per file, for at most `capSeconds` per run. */
async function classicLoop(
  ctx: Context,
  tree: FileTree,
  capSeconds: number,
): Promise<TreeRow> {
  const peer = "classic client + classic server, once per file";
  const { tools } = ctx;
  if (!tools.classic.available) {
    return { peer, status: "unavailable", reason: tools.classic.reason };
  }
  ctx.log(`  ${peer} (at most ${capSeconds} s per run)`);
  const dir = `${ctx.dst}/tree`;
  const runSeconds: number[] = [];
  const filesDone: number[] = [];
  const rates: number[] = [];
  let total = 0;
  let failed = 0;
  let server: ServerProcess | undefined;
  try {
    server = await startClassicServer(tools.python.path!, ctx.src);
    const [cmd, args] = classicGet(tools.python.path!, server.port);
    for (let run = 0; run < ctx.runs; run++) {
      await freshDir(dir);
      const made = new Set<string>();
      const start = performance.now();
      let done = 0;
      for (const file of tree.files) {
        if ((performance.now() - start) / 1000 >= capSeconds) break;
        const name = `${tree.name}/${file}`;
        const folder = `${dir}/received_${
          name.slice(0, name.lastIndexOf("/"))
        }`;
        if (!made.has(folder)) {
          await Deno.mkdir(folder, { recursive: true });
          made.add(folder);
        }
        for (let attempt = 1;; attempt++) {
          total++;
          const result = await runTimed(cmd, args, {
            cwd: dir,
            stdin: `${name}\n`,
            timeoutMs: 30_000,
          });
          if (
            result.code === 0 &&
            (await fileSize(`${dir}/received_${name}`)) === tree.size
          ) break;
          if (attempt >= 200) {
            throw new Failure(
              `${name}: 200 tries failed, last: ${explain(result)}`,
            );
          }
          failed++;
        }
        done++;
      }
      const seconds = (performance.now() - start) / 1000;
      const got = await countTree(dir);
      if (got.files !== done || got.bytes !== done * tree.size) {
        throw new Failure(`received ${got.files} files, expected ${done}`);
      }
      runSeconds.push(seconds);
      filesDone.push(done);
      rates.push(done / seconds);
    }
  } catch (error) {
    return { peer, status: "failed", reason: reasonOf(error) };
  } finally {
    await server?.stop();
    await removeIfExists(dir);
  }
  const filesPerSecond = summarize(rates);
  const row: TreeRow = {
    peer,
    status: "ok",
    seconds: summarize(runSeconds),
    runSeconds,
    filesPerSecond,
    filesDone,
    tries: { total, failed },
  };
  const fewest = Math.min(...filesDone);
  if (fewest < tree.count) {
    row.capped = { files: fewest, of: tree.count, secondsCap: capSeconds };
    row.extrapolatedSeconds = tree.count / filesPerSecond.median;
  }
  return row;
}

/**
 * Scenario 2: whole trees of small files with ferry `get -r`, an rsync
 * daemon, and the classic programs once per file (time-capped).
 *
 * @param ctx The run's context.
 * @param trees The trees, already written.
 * @param classicCapSeconds Time cap per classic run.
 * @returns A result per tree.
 *
 * @example
 * ```ts ignore
 * const results = await manyFilesScenario(ctx, [tree], 6);
 * ```
 */
export async function manyFilesScenario(
  ctx: Context,
  trees: FileTree[],
  classicCapSeconds: number,
): Promise<TreeResult[]> {
  const results: TreeResult[] = [];
  for (const tree of trees) {
    const label = treeLabel(tree);
    ctx.log(`scenario 2: ${label}`);
    await warm(tree.files.map((f) => `${ctx.src}/${tree.name}/${f}`));
    const rows: TreeRow[] = [];
    rows.push(await ferryTree(ctx, tree));
    rows.push(
      ctx.tools.rsync.available
        ? await treeGet(
          ctx,
          "rsync daemon (-a --whole-file, rsync://)",
          tree,
          () => startRsyncDaemon(ctx.src, ctx.tmp),
          (port, out) => rsyncGet(port, tree.name, out),
        )
        : {
          peer: "rsync daemon (-a --whole-file, rsync://)",
          status: "unavailable",
          reason: ctx.tools.rsync.reason,
        },
    );
    rows.push(await classicLoop(ctx, tree, classicCapSeconds));
    results.push({ label, count: tree.count, size: tree.size, rows });
  }
  return results;
}

/**
 * A tree's label, e.g. `1,000 × 4 KiB`.
 *
 * @param tree The tree.
 * @returns The label.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { treeLabel } from "./_scenarios.ts";
 * assert(treeLabel({ name: "t", count: 1000, size: 4096, files: [] }) === "1,000 × 4 KiB");
 * ```
 */
export function treeLabel(tree: FileTree): string {
  const size = tree.size >= 1024 ? `${tree.size / 1024} KiB` : `${tree.size} B`;
  return `${tree.count.toLocaleString("en-US")} × ${size}`;
}

function ferryTree(ctx: Context, tree: FileTree): Promise<TreeRow> {
  const peer = "ferry get -r";
  if (!ctx.tools.ferry.available) {
    return Promise.resolve({
      peer,
      status: "unavailable",
      reason: ctx.tools.ferry.reason,
    });
  }
  return treeGet(
    ctx,
    peer,
    tree,
    () => startFerryServer(ctx.src),
    (port, out) => ferryGet(port, tree.name, out, true),
    "ferry get -r: not implemented yet",
  );
}

/** A concurrency workload. */
export interface ConcurrencyCase {
  /** Label. */
  label: string;
  /** Source names, one per client (repeated for the same file). */
  names: string[];
  /** Bytes of each file. */
  fileBytes: number;
  /** How clients are made. */
  mode: "lib" | "cli";
  /**
   * Set: the clients go through HAProxy to this many ferry servers with
   * `--proxy-protocol` over the same folder (`bench/cluster.ts`).
   */
  servers?: number;
  /** Set: why this case cannot run (HAProxy missing). */
  unavailable?: string;
}

/**
 * Scenario 3: many ferry clients at once against one ferry server.
 *
 * @param ctx The run's context.
 * @param cases The workloads.
 * @returns A result per workload.
 *
 * @example
 * ```ts ignore
 * const results = await concurrencyScenario(ctx, cases);
 * ```
 */
export async function concurrencyScenario(
  ctx: Context,
  cases: ConcurrencyCase[],
): Promise<ConcurrencyResult[]> {
  const results: ConcurrencyResult[] = [];
  for (const c of cases) {
    const clientsMade = c.mode === "lib"
      ? "connect() + get() from client.ts, all in one child Deno process (bench/_many_clients.ts)"
      : "one ferry client CLI process each, all spawned at once";
    const base = {
      label: c.label,
      clientsMade,
      clients: c.names.length,
      fileBytes: c.fileBytes,
    };
    if (!ctx.tools.ferry.available || c.unavailable !== undefined) {
      results.push({
        ...base,
        status: "unavailable",
        reason: c.unavailable ?? ctx.tools.ferry.reason,
      });
      continue;
    }
    ctx.log(
      `scenario 3: ${c.label} (${
        c.mode === "lib" ? "library" : "CLI"
      } clients)`,
    );
    await warm([...new Set(c.names)].map((n) => `${ctx.src}/${n}`));
    const dir = `${ctx.dst}/many`;
    let server:
      | { port: number; stop(): Promise<number | undefined> }
      | undefined;
    const walls: number[] = [];
    const aggregates: number[] = [];
    const p50s: number[] = [];
    const p99s: number[] = [];
    let failures = 0;
    let firstFailure: string | undefined;
    let serverPeakKb: number | undefined;
    try {
      server = c.servers === undefined
        ? await startFerryServer(ctx.src)
        : await startClusterServer(ctx.src, c.servers);
      for (let run = 0; run < ctx.runs; run++) {
        await freshDir(dir);
        const result = await runTimed(Deno.execPath(), [
          "run",
          "-A",
          `${REPO_DIR}/bench/_many_clients.ts`,
          "--port",
          String(server.port),
          "--dest",
          dir,
          "--mode",
          c.mode,
          ...c.names,
        ], {
          captureStdout: true,
          timeoutMs: 60_000 + (c.names.length * c.fileBytes) / (5 * MB) * 1000,
        });
        if (result.code !== 0) throw new Failure(explain(result));
        const report = JSON.parse(result.stdout) as {
          wallSeconds: number;
          clients: { seconds: number; bytes: number; error?: string }[];
        };
        let moved = 0;
        for (const [i, client] of report.clients.entries()) {
          const size = await fileSize(`${dir}/${i}.bin`);
          const ok = !client.error && client.bytes === c.fileBytes &&
            size === c.fileBytes;
          if (ok) moved += size;
          else {
            failures++;
            firstFailure ??= client.error ??
              `client ${i}: ${size} bytes on disk, expected ${c.fileBytes}`;
          }
        }
        walls.push(report.wallSeconds);
        aggregates.push(moved / MB / report.wallSeconds);
        const times = report.clients.map((x) => x.seconds);
        p50s.push(percentile(times, 50));
        p99s.push(percentile(times, 99));
      }
    } catch (error) {
      results.push({
        ...base,
        status: "failed",
        reason: reasonOf(error),
      });
      continue;
    } finally {
      if (server) serverPeakKb = await server.stop();
      await removeIfExists(dir);
    }
    results.push({
      ...base,
      status: "ok",
      allSucceeded: failures === 0,
      failures,
      firstFailure,
      wallSeconds: summarize(walls),
      aggregateMBps: summarize(aggregates),
      p50Seconds: summarize(p50s),
      p99Seconds: summarize(p99s),
      serverPeakMB: serverPeakKb ? (serverPeakKb * 1024) / MB : undefined,
    });
  }
  return results;
}

/**
 * Scenario 5: ferry's time against size and against file count. Figures
 * already measured in scenarios 1 and 2 are reused, the rest measured here.
 *
 * @param ctx The run's context.
 * @param sizes Files by size (smallest first).
 * @param trees Trees by file count (smallest first).
 * @param known Figures from earlier scenarios, by label.
 * @returns The scaling points and their reading.
 *
 * @example
 * ```ts ignore
 * const scaling = await scalingScenario(ctx, sizes, trees, known);
 * ```
 */
export async function scalingScenario(
  ctx: Context,
  sizes: BigFile[],
  trees: FileTree[],
  known: { sizes: Map<string, PeerResult>; trees: Map<string, PeerResult> },
): Promise<ScalingResult> {
  const result: ScalingResult = { sizes: [], trees: [] };
  for (const file of sizes) {
    const seen = known.sizes.get(file.label);
    let row: PeerResult;
    let source = "scenario 1";
    if (seen) row = seen;
    else {
      ctx.log(`scenario 5: ferry get ${file.label}`);
      await warm([`${ctx.src}/${file.name}`]);
      source = "measured here";
      row = await bigFileGet(ctx, {
        peer: "ferry get",
        unavailable: missing(ctx.tools.ferry),
        file,
        server: () => startFerryServer(ctx.src),
        client: (port, dir) => {
          const [cmd, args] = ferryGet(port, file.name, `${dir}/out.bin`);
          return { cmd, args, out: `${dir}/out.bin` };
        },
      }, []);
    }
    result.sizes.push({
      label: file.label,
      amount: file.bytes,
      status: row.status,
      reason: row.reason,
      seconds: row.seconds,
      source: row.seconds ? source : undefined,
    });
  }
  for (const tree of trees) {
    const label = treeLabel(tree);
    const seen = known.trees.get(label);
    let row: PeerResult;
    let source = "scenario 2";
    if (seen) row = seen;
    else {
      ctx.log(`scenario 5: ferry get -r ${label}`);
      await warm(tree.files.map((f) => `${ctx.src}/${tree.name}/${f}`));
      source = "measured here";
      row = await ferryTree(ctx, tree);
    }
    result.trees.push({
      label,
      amount: tree.count,
      status: row.status,
      reason: row.reason,
      seconds: row.seconds,
      source: row.seconds ? source : undefined,
    });
  }
  const measured = result.sizes.filter((p) => p.seconds);
  if (measured.length >= 2) {
    const parts: string[] = [];
    for (let i = 1; i < measured.length; i++) {
      const a = measured[i - 1];
      const b = measured[i];
      const extra = b.seconds!.median - a.seconds!.median;
      parts.push(
        `${a.label} → ${b.label} ${
          extra > 0
            ? `${(((b.amount - a.amount) / MB) / extra).toFixed(0)} MB/s`
            : "no measurable extra time"
        }`,
      );
    }
    const first = measured[0];
    const last = measured[measured.length - 1];
    result.linearity = `marginal rate ${parts.join(", ")}; ${last.label} took ${
      (last.seconds!.median / first.seconds!.median).toFixed(1)
    }× as long as ${first.label} for ${
      (last.amount / first.amount).toFixed(0)
    }× the bytes (the rest is fixed cost: process start, handshake)`;
  }
  const treesMeasured = result.trees.filter((p) => p.seconds);
  if (treesMeasured.length >= 2) {
    const a = treesMeasured[0];
    const b = treesMeasured[treesMeasured.length - 1];
    result.perFileMs = ((b.seconds!.median - a.seconds!.median) /
      (b.amount - a.amount)) * 1000;
  }
  return result;
}
