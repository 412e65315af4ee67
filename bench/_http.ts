/**
 * Scenario 6: the HTTP face (`server.ts --http`) against
 * `python3 -m http.server`, both fetched by `curl` in the same run, and
 * many `curl` downloads from the HTTP face at once.
 *
 * Each timed download goes to `/dev/null` (`curl -o /dev/null`, size
 * checked with `-w %{size_download}`), so that the figure is the server's
 * and the loopback's, not the destination disk's; one extra, untimed
 * download per peer and size is written to a file and compared with the
 * source's SHA-256. Peers alternate (ferry first in odd runs, python first
 * in even runs) so that neither always runs on a cooler machine. The
 * concurrent downloads are all spawned at once and each saved file is
 * checked byte for byte against its source (SHA-256).
 *
 * @module
 */

import { fileSize, removeIfExists, sha256File, warm } from "./_data.ts";
import { curlGet, startFerryServer, startHttpServer } from "./_peers.ts";
import { reasonOf, runTimed, type ServerProcess } from "./_proc.ts";
import type { BigFile, Context, PeerResult } from "./_scenarios.ts";
import { MB, rate, summarize, type Summary } from "./_stats.ts";

/** One peer's downloads of one size. */
export interface HttpRow extends PeerResult {
  /** Throughput, MB/s. */
  mbps?: Summary;
  /** Median MB/s of this peer over python's (ferry's row only). */
  ratioToPython?: number;
}

/** One size: a row per peer. */
export interface HttpSizeResult {
  label: string;
  bytes: number;
  rows: HttpRow[];
}

/** Many downloads at once from the HTTP face. */
export interface HttpConcurrencyResult {
  label: string;
  status: "ok" | "failed" | "unavailable";
  reason?: string;
  clients: number;
  fileBytes: number;
  /** Downloads whose saved file had the source's SHA-256, per run (min). */
  byteExact?: number;
  wallSeconds?: Summary;
  aggregateMBps?: Summary;
  firstFailure?: string;
}

/** Everything scenario 6 found. */
export interface HttpResults {
  sizes: HttpSizeResult[];
  concurrency: HttpConcurrencyResult[];
}

class Failure extends Error {}

/** One timed `curl -o /dev/null` download; its seconds. */
async function timedCurl(port: number, file: BigFile): Promise<number> {
  const [cmd, args] = curlGet(port, file.name, "/dev/null");
  const result = await runTimed(cmd, ["-w", "%{size_download}", ...args], {
    captureStdout: true,
    timeoutMs: 60_000 + file.bytes / (20 * MB) * 1000,
  });
  if (result.code !== 0) {
    throw new Failure(`curl exit ${result.code}: ${result.stderr.trim()}`);
  }
  if (Number(result.stdout.trim()) !== file.bytes) {
    throw new Failure(
      `received ${result.stdout.trim()} of ${file.bytes} bytes`,
    );
  }
  return result.seconds;
}

/** One untimed download to a file, compared with the source. */
async function checkedCurl(
  ctx: Context,
  port: number,
  file: BigFile,
  sourceHash: string,
): Promise<void> {
  const out = `${ctx.dst}/http_check.bin`;
  try {
    const [cmd, args] = curlGet(port, file.name, out);
    const result = await runTimed(cmd, args, {
      timeoutMs: 60_000 + file.bytes / (20 * MB) * 1000,
    });
    if (result.code !== 0) throw new Failure(`curl exit ${result.code}`);
    if ((await sha256File(out)) !== sourceHash) {
      throw new Failure("received bytes differ from the source");
    }
  } finally {
    await removeIfExists(out);
  }
}

/**
 * Runs scenario 6.
 *
 * @param ctx The run's context.
 * @param files Sizes to download, already written under `ctx.src`.
 * @param concurrent Names of the files the concurrent clients fetch (one
 * each), already written, and their size.
 * @returns Per size a row per peer, and the concurrency result.
 */
export async function httpScenario(
  ctx: Context,
  files: BigFile[],
  concurrent: { label: string; names: string[]; fileBytes: number }[],
): Promise<HttpResults> {
  const { tools } = ctx;
  const sizes: HttpSizeResult[] = [];
  const unavailable = [tools.ferry, tools.curl].find((t) => !t.available)
    ?.reason;
  const pythonMissing = [tools.python, tools.curl].find((t) => !t.available)
    ?.reason;
  const ferryPeer = "ferry server.ts --http + curl";
  const pythonPeer = "python3 -m http.server + curl";
  for (const file of files) {
    ctx.log(`scenario 6: HTTP download ${file.label}`);
    const source = `${ctx.src}/${file.name}`;
    await warm([source]);
    const sourceHash = await sha256File(source);
    const seconds: Record<string, number[]> = { ferry: [], python: [] };
    const failures: Record<string, string | undefined> = {};
    const servers: Record<string, ServerProcess | undefined> = {};
    try {
      if (!unavailable) {
        try {
          servers.ferry = await startFerryServer(ctx.src, { http: true });
          await checkedCurl(ctx, servers.ferry.port, file, sourceHash);
        } catch (error) {
          failures.ferry = reasonOf(error);
        }
      }
      if (!pythonMissing) {
        try {
          servers.python = await startHttpServer(tools.python.path!, ctx.src);
          await checkedCurl(ctx, servers.python.port, file, sourceHash);
        } catch (error) {
          failures.python = reasonOf(error);
        }
      }
      for (let run = 0; run < ctx.runs; run++) {
        const order = run % 2 === 0 ? ["ferry", "python"] : ["python", "ferry"];
        for (const peer of order) {
          const server = servers[peer];
          if (!server || failures[peer]) continue;
          try {
            seconds[peer].push(await timedCurl(server.port, file));
          } catch (error) {
            failures[peer] = reasonOf(error);
          }
        }
      }
    } finally {
      await servers.ferry?.stop();
      await servers.python?.stop();
    }
    const row = (
      peer: string,
      key: string,
      missing: string | undefined,
    ): HttpRow => {
      if (missing) return { peer, status: "unavailable", reason: missing };
      if (failures[key]) {
        return { peer, status: "failed", reason: failures[key] };
      }
      const s = summarize(seconds[key]);
      return {
        peer,
        status: "ok",
        seconds: s,
        runSeconds: seconds[key],
        mbps: rate(s, file.bytes / MB),
      };
    };
    const ferry = row(ferryPeer, "ferry", unavailable);
    const python = row(pythonPeer, "python", pythonMissing);
    if (ferry.mbps && python.mbps) {
      ferry.ratioToPython = ferry.mbps.median / python.mbps.median;
    }
    sizes.push({ label: file.label, bytes: file.bytes, rows: [ferry, python] });
  }
  const concurrency: HttpConcurrencyResult[] = [];
  for (const c of concurrent) {
    concurrency.push(await concurrentCurls(ctx, c, unavailable));
  }
  return { sizes, concurrency };
}

/** Many `curl` downloads spawned at once, each checked byte for byte. */
async function concurrentCurls(
  ctx: Context,
  c: { label: string; names: string[]; fileBytes: number },
  unavailable: string | undefined,
): Promise<HttpConcurrencyResult> {
  const base = {
    label: c.label,
    clients: c.names.length,
    fileBytes: c.fileBytes,
  };
  if (unavailable) {
    return { ...base, status: "unavailable", reason: unavailable };
  }
  ctx.log(`scenario 6: ${c.names.length} concurrent curl downloads`);
  const sources = c.names.map((name) => `${ctx.src}/${name}`);
  await warm([...new Set(sources)]);
  const hashes = new Map<string, string>();
  for (const source of new Set(sources)) {
    hashes.set(source, await sha256File(source));
  }
  const dir = `${ctx.dst}/http_many`;
  const walls: number[] = [];
  const aggregates: number[] = [];
  let byteExact = c.names.length;
  let firstFailure: string | undefined;
  let server: ServerProcess | undefined;
  try {
    server = await startFerryServer(ctx.src, { http: true });
    for (let run = 0; run < ctx.runs; run++) {
      await removeIfExists(dir);
      await Deno.mkdir(dir, { recursive: true });
      const started = performance.now();
      const results = await Promise.all(c.names.map((name, i) => {
        const [cmd, args] = curlGet(server!.port, name, `${dir}/${i}.bin`);
        return runTimed(cmd, args, { timeoutMs: 300_000 });
      }));
      const wall = (performance.now() - started) / 1000;
      let exact = 0;
      for (const [i, result] of results.entries()) {
        const out = `${dir}/${i}.bin`;
        const ok = result.code === 0 &&
          (await fileSize(out)) === c.fileBytes &&
          (await sha256File(out)) === hashes.get(sources[i]);
        if (ok) exact++;
        else {firstFailure ??= result.code !== 0
            ? `curl ${i} exit ${result.code}: ${result.stderr.trim()}`
            : `download ${i} differs from its source`;}
      }
      byteExact = Math.min(byteExact, exact);
      walls.push(wall);
      aggregates.push(exact * c.fileBytes / MB / wall);
    }
  } catch (error) {
    return { ...base, status: "failed", reason: reasonOf(error) };
  } finally {
    await server?.stop();
    await removeIfExists(dir);
  }
  return {
    ...base,
    status: "ok",
    byteExact,
    wallSeconds: summarize(walls),
    aggregateMBps: summarize(aggregates),
    firstFailure,
  };
}
