/**
 * Scenario 7 of `deno task bench`: sync. On tmpfs (`/dev/shm` when there is
 * one), against a ferry server started with `--log json` whose request log
 * counts the file bytes it sent:
 *
 * - a no-op re-sync of a tree of many small files (`client.ts get -r
 *   --sync`), against `rsync -a` doing the same no-op from an rsync daemon;
 * - one file changed among them: the bytes the server sent (`GET` lines of
 *   its log) against that file's size;
 * - a big file grown at its end: the bytes the server sent for the grown
 *   file, against the growth.
 *
 * @module
 */

import { writeFileTree } from "./_data.ts";
import { REPO_DIR, rsyncGet, startRsyncDaemon } from "./_peers.ts";
import { reasonOf, runTimed, stopAll } from "./_proc.ts";
import type { Context } from "./_scenarios.ts";
import { fmt, fmtSummary, MIB, summarize, type Summary } from "./_stats.ts";

/** The workloads of scenario 7. */
export interface SyncPlan {
  /** Files in the tree. */
  files: number;
  /** Bytes per file. */
  fileBytes: number;
  /** Size of the big file before it grows. */
  bigBytes: number;
  /** How much it grows. */
  growthBytes: number;
}

/** What scenario 7 measured. */
export interface SyncResult {
  /** Where the trees were (tmpfs or not). */
  where: string;
  /** The workloads. */
  plan: SyncPlan;
  /** No-op re-sync: ferry and rsync wall seconds, and their ratio. */
  noop?: {
    ferry?: Summary;
    rsync?: Summary;
    ratio?: number;
    rsyncReason?: string;
  };
  /** One changed file: file bytes the server sent, and the file's size. */
  oneChanged?: { sentBytes: number; fileBytes: number; seconds: number };
  /** A grown file: file bytes the server sent, and the growth. */
  grown?: { sentBytes: number; growthBytes: number; seconds: number };
  /** Why a part could not run. */
  error?: string;
}

/** A ferry server whose JSON request log is kept whole. */
interface LoggedServer {
  port: number;
  /** Sum of `bytes` of the `GET` lines logged from `mark` on. */
  sentSince(mark: number): number;
  /** Number of log lines so far. */
  lines(): number;
  stop(): Promise<void>;
}

async function startLoggedFerry(root: string): Promise<LoggedServer> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `${REPO_DIR}/server.ts`,
      "--root",
      root,
      "--port",
      "0",
      "--log",
      "json",
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const events: { request: string; bytes: number }[] = [];
  const stderrDone = (async () => {
    const decoder = new TextDecoder();
    let pending = "";
    for await (const chunk of child.stderr) {
      pending += decoder.decode(chunk, { stream: true });
      let at;
      while ((at = pending.indexOf("\n")) >= 0) {
        const line = pending.slice(0, at);
        pending = pending.slice(at + 1);
        if (!line.startsWith("{")) continue;
        try {
          const event = JSON.parse(line);
          events.push({ request: event.request, bytes: event.bytes ?? 0 });
        } catch {
          // not a log line
        }
      }
    }
  })();
  let port = NaN;
  const decoder = new TextDecoder();
  let text = "";
  const reader = child.stdout.getReader();
  while (!Number.isInteger(port)) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
    const match = text.match(/tcp:\/\/127\.0\.0\.1:(\d+)/);
    if (match) port = Number(match[1]);
  }
  reader.releaseLock();
  const stdoutDone = child.stdout.cancel().catch(() => {});
  if (!Number.isInteger(port)) {
    child.kill("SIGKILL");
    await child.status;
    throw new Error("ferry server did not print its address");
  }
  return {
    port,
    lines: () => events.length,
    sentSince: (mark) =>
      events.slice(mark).filter((event) => event.request === "GET")
        .reduce((sum, event) => sum + event.bytes, 0),
    async stop() {
      child.kill("SIGTERM");
      await child.status;
      await Promise.all([stderrDone, stdoutDone]);
    },
  };
}

function syncArgs(port: number, remote: string, dest: string): string[] {
  return [
    "run",
    "-A",
    `${REPO_DIR}/client.ts`,
    "--port",
    String(port),
    "get",
    "-r",
    remote,
    "-o",
    dest,
    "--sync",
    "-q",
  ];
}

/** Runs one `get -r --sync`; throws on a non-zero exit. */
async function ferrySync(
  port: number,
  remote: string,
  dest: string,
): Promise<number> {
  const result = await runTimed(Deno.execPath(), syncArgs(port, remote, dest), {
    timeoutMs: 120_000,
  });
  if (result.code !== 0) {
    throw new Error(`ferry sync exited ${result.code}: ${result.stderr}`);
  }
  return result.seconds;
}

async function tmpfsDir(ctx: Context): Promise<string> {
  try {
    if ((await Deno.stat("/dev/shm")).isDirectory) {
      return await Deno.makeTempDir({ dir: "/dev/shm", prefix: "ferry_sync_" });
    }
  } catch {
    // no /dev/shm
  }
  return await Deno.makeTempDir({ dir: ctx.tmp, prefix: "sync_" });
}

/**
 * Scenario 7: sync (see the module doc).
 *
 * @param ctx The run's context.
 * @param plan The workloads.
 * @returns The figures.
 *
 * @example
 * ```ts ignore
 * const result = await syncScenario(ctx, { files: 10000, fileBytes: 1024, bigBytes: 64 << 20, growthBytes: 1 << 20 });
 * ```
 */
export async function syncScenario(
  ctx: Context,
  plan: SyncPlan,
): Promise<SyncResult> {
  const base = await tmpfsDir(ctx);
  const result: SyncResult = {
    where: base.startsWith("/dev/shm") ? "tmpfs (/dev/shm)" : base,
    plan,
  };
  let server: LoggedServer | undefined;
  try {
    const src = `${base}/src`;
    await Deno.mkdir(src, { recursive: true });
    const block = crypto.getRandomValues(new Uint8Array(64 * 1024));
    ctx.log(`scenario 7: sync, ${plan.files} files, ${result.where}`);
    const tree = await writeFileTree(
      src,
      "tree",
      plan.files,
      plan.fileBytes,
      block,
    );
    server = await startLoggedFerry(src);
    const dest = `${base}/ferry_tree`;
    await ferrySync(server.port, "tree", dest); // the first, full copy
    const ferryRuns: number[] = [];
    for (let run = 0; run < ctx.runs; run++) {
      ferryRuns.push(await ferrySync(server.port, "tree", dest));
    }
    result.noop = { ferry: summarize(ferryRuns) };
    if (ctx.tools.rsync.available) {
      try {
        const daemon = await startRsyncDaemon(src, base);
        try {
          const [cmd, args] = rsyncGet(daemon.port, "tree", `${base}/rsync`);
          const plain = args.filter((arg) => arg !== "--whole-file");
          await runTimed(cmd, plain); // the first, full copy
          const runs: number[] = [];
          for (let run = 0; run < ctx.runs; run++) {
            const timed = await runTimed(cmd, plain);
            if (timed.code !== 0) {
              throw new Error(`rsync exited ${timed.code}: ${timed.stderr}`);
            }
            runs.push(timed.seconds);
          }
          result.noop.rsync = summarize(runs);
          result.noop.ratio = result.noop.ferry!.median /
            result.noop.rsync.median;
        } finally {
          await daemon.stop();
        }
      } catch (error) {
        result.noop.rsyncReason = reasonOf(error);
      }
    } else {
      result.noop.rsyncReason = ctx.tools.rsync.reason;
    }
    // One changed file: new content of the same size, a new time.
    const changed = `${src}/tree/${tree.files[Math.floor(plan.files / 2)]}`;
    const content = await Deno.readFile(changed);
    content.reverse();
    await Deno.writeFile(changed, content);
    let mark = server.lines();
    const oneSeconds = await ferrySync(server.port, "tree", dest);
    result.oneChanged = {
      sentBytes: server.sentSince(mark),
      fileBytes: plan.fileBytes,
      seconds: oneSeconds,
    };
    // A big file grown at its end.
    await Deno.mkdir(`${src}/big`);
    const big = `${src}/big/grow.log`;
    {
      using file = await Deno.open(big, { write: true, createNew: true });
      for (let done = 0; done < plan.bigBytes; done += block.length) {
        await file.write(block.subarray(0, plan.bigBytes - done));
      }
    }
    await ferrySync(server.port, "big", `${base}/ferry_big`);
    {
      using file = await Deno.open(big, { append: true });
      for (let done = 0; done < plan.growthBytes; done += block.length) {
        await file.write(block.subarray(0, plan.growthBytes - done));
      }
    }
    mark = server.lines();
    const grownSeconds = await ferrySync(
      server.port,
      "big",
      `${base}/ferry_big`,
    );
    result.grown = {
      sentBytes: server.sentSince(mark),
      growthBytes: plan.growthBytes,
      seconds: grownSeconds,
    };
  } catch (error) {
    result.error = reasonOf(error);
  } finally {
    await server?.stop();
    await stopAll();
    await Deno.remove(base, { recursive: true }).catch(() => {});
  }
  return result;
}

/**
 * The markdown section of scenario 7.
 *
 * @param result What the scenario measured (absent when it did not run).
 * @returns Lines of markdown.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { renderSync } from "./_sync.ts";
 * assert(renderSync(undefined).length === 0);
 * ```
 */
export function renderSync(result: SyncResult | undefined): string[] {
  if (result === undefined) return [];
  const out = ["## 7. Sync", ""];
  const { plan } = result;
  out.push(
    `${
      plan.files.toLocaleString("en-US")
    } files of ${plan.fileBytes} B on ${result.where}; ` +
      `ferry \`client.ts get -r --sync\` (a process per run), bytes counted in ` +
      `the server's \`--log json\` (\`GET\` lines).`,
  );
  out.push("");
  out.push("| workload | figure | target |");
  out.push("|---|---|---|");
  const noop = result.noop;
  if (noop?.ferry) {
    out.push(
      `| no-op re-sync, ferry | ${fmtSummary(noop.ferry)} s | ≤ 1.0× rsync |`,
    );
    out.push(
      noop.rsync
        ? `| no-op re-sync, \`rsync -a\` from a daemon | ${
          fmtSummary(noop.rsync)
        } s (ferry ${fmt(noop.ratio!)}×) | |`
        : `| no-op re-sync, rsync | unavailable: ${noop.rsyncReason} | |`,
    );
  }
  if (result.oneChanged) {
    const { sentBytes, fileBytes, seconds } = result.oneChanged;
    out.push(
      `| one file changed | ${sentBytes} B sent (file: ${fileBytes} B), ${
        fmt(seconds)
      } s | only that file |`,
    );
  }
  if (result.grown) {
    const { sentBytes, growthBytes, seconds } = result.grown;
    out.push(
      `| ${fmt((plan.bigBytes) / MIB)} MiB file grown by ${
        fmt(growthBytes / MIB)
      } MiB | ${fmt(sentBytes / MIB)} MiB sent, ${fmt(seconds)} s | < ${
        fmt(2 * growthBytes / MIB)
      } MiB |`,
    );
  }
  if (result.error) out.push(`| (stopped) | ${result.error} | |`);
  out.push("");
  return out;
}
