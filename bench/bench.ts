#!/usr/bin/env -S deno run -A
/**
 * ferry's benchmark against real peers, all measured in one run on this
 * machine so that the ratios are fair: big files (ferry, a raw Deno loop,
 * OpenBSD `nc`, the classic programs, `python3 -m http.server` + `curl`),
 * many small files (ferry `get -r`, an rsync daemon, the classic programs
 * once per file), concurrency, memory, scaling and sync (no-op re-sync
 * against `rsync -a`, bytes sent for one changed file and for a grown one).
 *
 * ```sh
 * deno task bench                 # full run (a few minutes)
 * deno run -A bench/bench.ts --quick --no-install --out /tmp/b
 * ```
 *
 * Prints a markdown table on stdout (progress on stderr) and writes the same
 * figures to `OUT/results.json` and `OUT/results.md`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { randomBlock, writeBigFile, writeFileTree } from "./_data.ts";
import {
  detectTools,
  ferryGet,
  installPeers,
  rawGet,
  startFerryServer,
  startRawServer,
  type Toolbox,
} from "./_peers.ts";
import { lastLine, reasonOf, runTimed, stopAll } from "./_proc.ts";
import { type Machine, renderMarkdown, type Results } from "./_report.ts";
import {
  type BigFile,
  bigFileScenario,
  type ConcurrencyCase,
  concurrencyScenario,
  type Context,
  manyFilesScenario,
  type PeerResult,
  scalingScenario,
  syncDisks,
} from "./_scenarios.ts";
import { fmt, MIB } from "./_stats.ts";
import { findHaproxy } from "./cluster.ts";
import { httpScenario } from "./_http.ts";
import {
  renderTargets,
  type TargetsPlan,
  targetsScenario,
} from "./_targets.ts";

/** The load averages from `/proc/loadavg`, e.g. `7.9 8.1 8.3`. */
async function loadAverage(): Promise<string> {
  const text = await Deno.readTextFile("/proc/loadavg").catch(() => "");
  return text.split(" ").slice(0, 3).join(" ") || "unknown";
}
import { type SyncPlan, syncScenario } from "./_sync.ts";

const USAGE =
  `ferry benchmark: ferry against nc, rsync, curl, the classic programs

USAGE:
  deno run -A bench/bench.ts [OPTIONS]

OPTIONS:
  --quick         small sizes and 1 run per figure, for development (default: off)
  --no-install    do not apt-get install missing peers (nc, rsync, curl,
                  haproxy) (default: install)
  --out DIR       where results.json and results.md go (default: bench_results)
  --runs N        runs per figure (default: 3, or 1 with --quick)
  --only LIST     scenarios to run, e.g. 1,3 (memory is part of 1; 6 is the
                  HTTP face against python3 -m http.server; 7 is sync; 8
                  the issue-11 targets: digest speed, small files on tmpfs,
                  200 concurrent gets' memory, start-up, in interleaved
                  rounds) (default: 1,2,3,5,6,7,8)
  -h, --help      print this help
`;

/** The workloads of a full or quick run. */
interface Plan {
  big: BigFile[];
  /** Sizes of the HTTP face's downloads (scenario 6). */
  http: BigFile[];
  scalingSizes: BigFile[];
  trees: { name: string; count: number; size: number }[];
  scalingTrees: { name: string; count: number; size: number }[];
  concurrency: {
    label: string;
    clients: number;
    bytes: number;
    same: boolean;
    mode: "lib" | "cli";
    servers?: number;
  }[];
  classicCapSeconds: number;
  sync: SyncPlan;
  /** Scenario 8: the targets of issue 11. */
  targets: TargetsPlan;
}

function bigFile(bytes: number): BigFile {
  const label = bytes >= 1024 * MIB
    ? `${bytes / (1024 * MIB)} GiB`
    : `${bytes / MIB} MiB`;
  return {
    label,
    name: `big_${label.replace(" ", "").toLowerCase()}.bin`,
    bytes,
  };
}

function tree(count: number, size: number) {
  const unit = size >= 1024 ? `${size / 1024}k` : `${size}b`;
  return { name: `files_${count}x${unit}`, count, size };
}

function makePlan(quick: boolean): Plan {
  if (quick) {
    return {
      big: [bigFile(8 * MIB)],
      http: [bigFile(8 * MIB)],
      scalingSizes: [bigFile(MIB), bigFile(8 * MIB)],
      trees: [tree(50, 1024)],
      scalingTrees: [tree(10, 1024), tree(50, 1024)],
      concurrency: [
        {
          label: "10 × 1 MiB, different files",
          clients: 10,
          bytes: MIB,
          same: false,
          mode: "lib",
        },
        {
          label: "10 × 1 MiB, different files, HAProxy + 2 servers",
          clients: 10,
          bytes: MIB,
          same: false,
          mode: "lib",
          servers: 2,
        },
        {
          label: "3 × 4 MiB, same file",
          clients: 3,
          bytes: 4 * MIB,
          same: true,
          mode: "lib",
        },
      ],
      classicCapSeconds: 2,
      targets: {
        bigBytes: 8 * MIB,
        trees: [{ count: 50, size: 1024 }],
        clients: 5,
        clientBytes: MIB,
        rounds: 1,
        startupRuns: 2,
      },
      sync: {
        files: 100,
        fileBytes: 1024,
        bigBytes: 4 * MIB,
        growthBytes: MIB / 4,
      },
    };
  }
  return {
    big: [bigFile(1024 * MIB), bigFile(64 * MIB)],
    http: [bigFile(1024 * MIB), bigFile(256 * MIB)],
    scalingSizes: [bigFile(MIB), bigFile(64 * MIB), bigFile(1024 * MIB)],
    trees: [tree(1000, 4096), tree(10000, 1024)],
    scalingTrees: [tree(10, 4096), tree(100, 4096), tree(1000, 4096)],
    concurrency: [
      {
        label: "200 × 1 MiB, different files",
        clients: 200,
        bytes: MIB,
        same: false,
        mode: "lib",
      },
      ...[1, 2, 3].map((servers) => ({
        label: `200 × 1 MiB, different files, HAProxy + ${servers} server${
          servers > 1 ? "s" : ""
        }`,
        clients: 200,
        bytes: MIB,
        same: false,
        mode: "lib" as const,
        servers,
      })),
      {
        label: "20 × 64 MiB, same file",
        clients: 20,
        bytes: 64 * MIB,
        same: true,
        mode: "lib",
      },
      {
        label: "20 × 64 MiB, same file, CLI clients",
        clients: 20,
        bytes: 64 * MIB,
        same: true,
        mode: "cli",
      },
    ],
    classicCapSeconds: 6,
    targets: {
      bigBytes: 1024 * MIB,
      trees: [{ count: 10_000, size: 1024 }, { count: 1000, size: 4096 }],
      clients: 200,
      clientBytes: MIB,
      rounds: 7,
      startupRuns: 11,
    },
    sync: {
      files: 10_000,
      fileBytes: 1024,
      bigBytes: 64 * MIB,
      growthBytes: MIB,
    },
  };
}

async function machine(): Promise<Machine> {
  let cpu = "unknown CPU";
  let memoryMB = 0;
  try {
    const info = await Deno.readTextFile("/proc/cpuinfo");
    cpu = info.match(/^model name\s*:\s*(.+)$/m)?.[1].trim() ?? cpu;
  } catch {
    // not Linux
  }
  try {
    const mem = await Deno.readTextFile("/proc/meminfo");
    memoryMB = Number(mem.match(/^MemTotal:\s+(\d+)/m)?.[1] ?? 0) * 1024 / 1e6;
  } catch {
    // not Linux
  }
  let loadAverage: number | undefined;
  try {
    loadAverage = Number(
      (await Deno.readTextFile("/proc/loadavg")).split(" ")[0],
    );
  } catch {
    // not Linux
  }
  return {
    loadAverage,
    nproc: navigator.hardwareConcurrency,
    cpu,
    memoryMB: Math.round(memoryMB),
    os: `${Deno.build.os} ${Deno.osRelease()}`,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    typescript: Deno.version.typescript,
  };
}

function peersRecord(tools: Toolbox): Results["peers"] {
  return {
    ferry: tools.ferry,
    nc: tools.nc,
    rsync: tools.rsync,
    curl: tools.curl,
    python3: tools.python,
    classic: tools.classic,
    "GNU time": tools.time,
  };
}

/** Checks that ferry really works (and warms Deno's module cache). */
async function checkFerry(ctx: Context): Promise<void> {
  const probe = `${ctx.src}/probe.bin`;
  await Deno.writeFile(probe, new Uint8Array(4096).fill(7));
  const raw = await startRawServer(probe);
  try {
    await runTimed(...rawGet(raw.port, `${ctx.dst}/probe_raw.bin`));
  } finally {
    await raw.stop();
  }
  if (!ctx.tools.ferry.available) return;
  try {
    const server = await startFerryServer(ctx.src);
    try {
      const result = await runTimed(
        ...ferryGet(server.port, "probe.bin", `${ctx.dst}/probe.bin`),
        {
          timeoutMs: 60_000,
        },
      );
      if (result.code !== 0) {
        ctx.tools.ferry = {
          available: false,
          reason: `ferry get failed: exit ${result.code}: ${
            lastLine(result.stderr) || "no message"
          }`,
        };
      }
    } finally {
      await server.stop();
    }
  } catch (error) {
    ctx.tools.ferry = {
      available: false,
      reason: reasonOf(error),
    };
  }
}

/** JSON replacer keeping 6 significant digits of fractional numbers. */
function roundNumbers(_key: string, value: unknown): unknown {
  return typeof value === "number" && !Number.isInteger(value)
    ? Number(value.toPrecision(6))
    : value;
}

/**
 * Why the "→ /dev/null" rows could not be trusted, if they could not: on
 * this project's machine `/dev/null` was once found replaced by a regular
 * file, and every row that "discarded" its bytes wrote them to memory.
 */
function nullDeviceProblem(): string | undefined {
  try {
    const info = Deno.statSync("/dev/null");
    if (info.isCharDevice !== false) return undefined;
    return "/dev/null is not a character device (a regular file?): every " +
      "row to /dev/null would measure writes to memory. Restore it first, " +
      "as root: rm /dev/null && mknod -m 666 /dev/null c 1 3";
  } catch (error) {
    return `cannot stat /dev/null: ${
      error instanceof Error ? error.message : error
    }`;
  }
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      args: Deno.args,
      options: {
        quick: { type: "boolean", default: false },
        "no-install": { type: "boolean", default: false },
        out: { type: "string", default: "bench_results" },
        runs: { type: "string" },
        only: { type: "string", default: "1,2,3,5,6,7,8" },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
    }));
  } catch (error) {
    console.error(`bench: ${error instanceof Error ? error.message : error}`);
    console.error(USAGE);
    Deno.exit(2);
  }
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const runs = values.runs ? Number(values.runs) : values.quick ? 1 : 3;
  if (!Number.isInteger(runs) || runs < 1) {
    console.error(`bench: --runs must be a positive whole number`);
    console.error(USAGE);
    Deno.exit(2);
  }
  const broken = nullDeviceProblem();
  if (broken) {
    console.error(`bench: ${broken}`);
    Deno.exit(1);
  }
  const only = new Set(values.only.split(",").map((s) => s.trim()));
  const started = performance.now();
  const startedAt = new Date().toISOString();
  const log = (line: string) =>
    console.error(`[${fmt((performance.now() - started) / 1000)} s] ${line}`);

  const m = await machine();
  log(`machine: ${m.nproc} × ${m.cpu}, ${m.os}, deno ${m.deno}`);
  let tools = await detectTools();
  const missing = [tools.nc, tools.rsync, tools.curl].some((t) => !t.available);
  if (missing && !values["no-install"]) {
    const failure = await installPeers(log);
    if (failure) log(`setup: install failed: ${failure}`);
    tools = await detectTools();
  }
  for (const [name, a] of Object.entries(peersRecord(tools))) {
    log(
      `peer ${name}: ${
        a.available ? a.version ?? "available" : `unavailable: ${a.reason}`
      }`,
    );
  }

  const plan = makePlan(values.quick);
  const tmp = await Deno.makeTempDir({ prefix: "ferry_bench_" });
  const ctx: Context = {
    tmp,
    src: `${tmp}/src`,
    dst: `${tmp}/dst`,
    runs,
    quick: values.quick,
    tools,
    log,
  };
  const cleanup = async () => {
    await stopAll();
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  };
  const onSignal = () => {
    console.error("bench: interrupted, cleaning up");
    cleanup().finally(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  try {
    await Deno.mkdir(ctx.src, { recursive: true });
    await Deno.mkdir(ctx.dst, { recursive: true });
    log("data: writing test files");
    const block = randomBlock();
    const files = new Map<string, BigFile>();
    for (const f of [...plan.big, ...plan.http, ...plan.scalingSizes]) {
      files.set(f.name, f);
    }
    let salt = 0;
    for (const f of files.values()) {
      await writeBigFile(`${ctx.src}/${f.name}`, f.bytes, block, ++salt);
    }
    const conc: ConcurrencyCase[] = [];
    const written = new Set<string>();
    const haproxy = plan.concurrency.some((c) => c.servers !== undefined) &&
        only.has("3")
      ? await findHaproxy(!values["no-install"])
      : undefined;
    if (haproxy && "reason" in haproxy) log(`haproxy: ${haproxy.reason}`);
    for (const c of plan.concurrency) {
      let names: string[];
      if (c.same) {
        const f = bigFile(c.bytes);
        if (!files.has(f.name)) {
          files.set(f.name, f);
          await writeBigFile(`${ctx.src}/${f.name}`, f.bytes, block, ++salt);
        }
        names = Array.from({ length: c.clients }, () => f.name);
      } else {
        const folder = `conc_${c.clients}x${c.bytes}`;
        await Deno.mkdir(`${ctx.src}/${folder}`, { recursive: true });
        names = [];
        for (let i = 0; i < c.clients; i++) {
          const name = `${folder}/c${i}.bin`;
          if (!written.has(folder)) {
            await writeBigFile(`${ctx.src}/${name}`, c.bytes, block, ++salt);
          }
          names.push(name);
        }
        written.add(folder);
      }
      conc.push({
        label: c.label,
        names,
        fileBytes: c.bytes,
        mode: c.mode,
        servers: c.servers,
        unavailable: c.servers !== undefined && haproxy && "reason" in haproxy
          ? haproxy.reason
          : undefined,
      });
    }
    const trees = new Map<string, Awaited<ReturnType<typeof writeFileTree>>>();
    for (const t of [...plan.trees, ...plan.scalingTrees]) {
      if (!trees.has(t.name)) {
        trees.set(
          t.name,
          await writeFileTree(ctx.src, t.name, t.count, t.size, block),
        );
      }
    }
    // Fresh guest memory is slow to touch the first time (a VM faults it
    // in from the host): write and delete a scratch file as large as twice
    // the biggest file, so that no peer's first run pays for it.
    log("setup: touching page-cache memory once");
    const largest = Math.max(...[...files.values()].map((f) => f.bytes));
    await writeBigFile(`${ctx.dst}/scratch.bin`, 2 * largest, block, 0);
    await Deno.remove(`${ctx.dst}/scratch.bin`);
    await syncDisks();
    log("setup: warming Deno's module cache and checking ferry");
    await checkFerry(ctx);
    if (!tools.ferry.available) {
      log(`ferry: unavailable: ${tools.ferry.reason}`);
    }

    const results: Results = {
      schema: 1,
      startedAt,
      wallSeconds: 0,
      mode: values.quick ? "quick" : "full",
      runsPerFigure: runs,
      units: { MB: 1_000_000, time: "seconds" },
      machine: m,
      peers: peersRecord(tools),
      scenarios: {
        bigFile: [],
        manyFiles: [],
        concurrency: [],
        memory: [],
        scaling: { sizes: [], trees: [] },
        http: { sizes: [], concurrency: [] },
      },
    };
    const sc = results.scenarios;
    if (only.has("1") || only.has("4")) {
      const big = await bigFileScenario(ctx, plan.big);
      sc.bigFile = big.results;
      sc.memory = big.memory;
    }
    if (only.has("2")) {
      sc.manyFiles = await manyFilesScenario(
        ctx,
        plan.trees.map((t) => trees.get(t.name)!),
        plan.classicCapSeconds,
      );
    }
    if (only.has("3")) sc.concurrency = await concurrencyScenario(ctx, conc);
    if (only.has("5")) {
      const knownSizes = new Map<string, PeerResult>();
      for (const b of sc.bigFile) {
        if (b.rows[0]?.seconds) knownSizes.set(b.label, b.rows[0]);
      }
      const knownTrees = new Map<string, PeerResult>();
      for (const t of sc.manyFiles) {
        if (t.rows[0]?.seconds) knownTrees.set(t.label, t.rows[0]);
      }
      sc.scaling = await scalingScenario(
        ctx,
        plan.scalingSizes,
        plan.scalingTrees.map((t) => trees.get(t.name)!),
        { sizes: knownSizes, trees: knownTrees },
      );
    }
    if (only.has("6")) {
      sc.http = await httpScenario(
        ctx,
        plan.http,
        conc.filter((c) =>
          c.servers === undefined && new Set(c.names).size === c.names.length
        ).slice(0, 1)
          .map((c) => ({ ...c, label: `${c.names.length} curl at once` })),
      );
    }
    if (only.has("7")) sc.sync = await syncScenario(ctx, plan.sync);
    let targets = "";
    if (only.has("8")) {
      const loadBefore = await loadAverage();
      sc.targets = await targetsScenario(plan.targets, tools, log);
      targets = renderTargets(
        sc.targets,
        `${loadBefore} at the start, ${await loadAverage()} at the end`,
      );
    }
    results.wallSeconds = Math.round((performance.now() - started) / 10) / 100;
    const markdown = renderMarkdown(results) + (targets ? `\n${targets}` : "");
    await Deno.mkdir(values.out, { recursive: true });
    await Deno.writeTextFile(
      `${values.out}/results.json`,
      JSON.stringify(results, roundNumbers, 2) + "\n",
    );
    await Deno.writeTextFile(`${values.out}/results.md`, markdown);
    console.log(markdown);
    log(
      `done in ${
        fmt(results.wallSeconds)
      } s; wrote ${values.out}/results.json and results.md`,
    );
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
    await cleanup();
  }
}

if (import.meta.main) {
  await main();
}
