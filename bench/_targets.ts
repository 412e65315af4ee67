/**
 * Scenario 8 of `deno task bench`: the targets of issue 11 (digest at wire
 * speed, small files, memory per transfer, start-up), each measured in
 * interleaved rounds (every peer once per round, the order of the peers
 * rotating from round to round) so that a burst of load from elsewhere hits
 * all of them alike. Figures are medians with min–max.
 *
 * - 1 GiB `get`, default digest (XXH3-128), to stdout → `/dev/null` and to
 *   a file, server hash cache hit (warm server) and miss (server started
 *   for the round, so it hashes); `--sha256`; against `nc` and the raw Deno
 *   loop (no protocol, no hash) over the same paths.
 * - 10,000 × 1 KiB and 1,000 × 4 KiB `get -r` and `put -r` against an
 *   rsync daemon, both on tmpfs (`/dev/shm`, fresh folders every round).
 * - 200 concurrent 1 MiB gets (library clients in one process): all
 *   byte-exact, the server's peak RSS.
 * - Client start-up: `client.ts --help`, and `ls` / `get` of a tiny file,
 *   against `deno run` of a one-line script.
 *
 * @module
 */

import { writeFileTree } from "./_data.ts";
import {
  ncGet,
  rawGet,
  REPO_DIR,
  startFerryServer,
  startNcServer,
  startRawServer,
  startRsyncDaemon,
  type Toolbox,
} from "./_peers.ts";
import { runTimed } from "./_proc.ts";
import { fmt, MIB, summarize, type Summary } from "./_stats.ts";

/** What scenario 8 needs to know. */
export interface TargetsPlan {
  /** Size of the big file. */
  bigBytes: number;
  /** Small-file trees: count × size. */
  trees: { count: number; size: number }[];
  /** Concurrent clients × bytes each. */
  clients: number;
  clientBytes: number;
  /** Interleaved rounds per figure. */
  rounds: number;
  /** Runs of `client.ts --help`. */
  startupRuns: number;
}

/** One measured row. */
export interface TargetRow {
  /** What was measured. */
  label: string;
  /** The unit of `value`. */
  unit: "MB/s" | "s" | "ms" | "MB";
  /** Median, min, max. */
  value: Summary;
  /** The target, in words, and whether the median meets it. */
  target?: string;
  met?: boolean;
  /** Extra facts (failures, reasons a peer was missing). */
  note?: string;
}

type Log = (line: string) => void;

const TMP = "/dev/shm";

/** Each peer once per round, in an order that rotates each round. */
async function interleaved(
  rounds: number,
  peers: Record<string, () => Promise<number>>,
  log?: Log,
): Promise<Record<string, number[]>> {
  const names = Object.keys(peers);
  const values: Record<string, number[]> = {};
  for (const name of names) values[name] = [];
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < names.length; i++) {
      const name = names[(i + round) % names.length];
      const seconds = await peers[name]();
      values[name].push(seconds);
      // Every round in the log: a median hides a row that is bimodal.
      log?.(`  round ${round + 1}: ${name} ${seconds.toFixed(3)} s`);
    }
  }
  return values;
}

async function timed(
  cmd: string,
  args: string[],
  what: string,
): Promise<number> {
  const result = await runTimed(cmd, args, { timeoutMs: 300_000 });
  if (result.code !== 0) {
    throw new Error(`${what} failed (${result.code}): ${result.stderr}`);
  }
  return result.seconds;
}

function ferryArgs(
  port: number,
  command: string[],
  permissions: string[] = ["-A"],
): string[] {
  return [
    "run",
    ...permissions,
    `${REPO_DIR}/client.ts`,
    "--host",
    "127.0.0.1",
    "--port",
    String(port),
    ...command,
  ];
}

/** `sh -c` running the ferry client with stdout to /dev/null. */
function toNull(args: string[]): [string, string[]] {
  return ["sh", [
    "-c",
    `exec "$0" "$@" > /dev/null`,
    Deno.execPath(),
    ...args,
  ]];
}

async function bigFile(
  plan: TargetsPlan,
  tools: Toolbox,
  log: Log,
  dir: string,
): Promise<TargetRow[]> {
  const src = `${dir}/src`;
  await Deno.mkdir(src, { recursive: true });
  const name = "big.bin";
  const path = `${src}/${name}`;
  {
    using file = await Deno.open(path, { write: true, create: true });
    const block = crypto.getRandomValues(new Uint8Array(65536));
    const chunk = new Uint8Array(MIB);
    for (let i = 0; i < MIB; i += block.length) chunk.set(block, i);
    for (let done = 0; done < plan.bigBytes; done += MIB) {
      chunk[0] = done / MIB; // not one repeated MiB
      await file.write(chunk);
    }
  }
  // Old enough for the hash cache (2 s margin): set the time back.
  const old = new Date(Date.now() - 60_000);
  await Deno.utime(path, old, old);
  const out = `${dir}/out.bin`;
  const warm = await startFerryServer(src);
  const raw = await startRawServer(path);
  try {
    // Prime the cache: the first get hashes, later ones hit.
    await timed(
      Deno.execPath(),
      ferryArgs(warm.port, ["get", name, "-o", "-", "-q"]),
      "warm-up",
    );
    const fresh = async (
      args: (port: number) => string[],
      sink: "null" | "file",
    ) => {
      const server = await startFerryServer(src);
      try {
        const full = args(server.port);
        return sink === "null"
          ? await timed(...toNull(full), "ferry get (miss)")
          : await timed(Deno.execPath(), full, "ferry get (miss)");
      } finally {
        await server.stop();
      }
    };
    const nc = async (sink: "null" | "file") => {
      const server = await startNcServer(tools.nc, path);
      try {
        const [cmd, args] = ncGet(
          server.port,
          sink === "null" ? "/dev/null" : out,
        );
        return await timed(cmd, args, "nc");
      } finally {
        await server.stop();
      }
    };
    const getArgs = (extra: string[], dest: string) => (port: number) =>
      ferryArgs(port, ["get", name, "-o", dest, "-f", "-q", ...extra]);
    const peers: Record<string, () => Promise<number>> = {
      "ferry, cache hit, → /dev/null": () =>
        timed(...toNull(getArgs([], "-")(warm.port)), "ferry get"),
      "ferry, cache miss, → /dev/null": () => fresh(getArgs([], "-"), "null"),
      // The client as the README's narrow install runs it: no
      // --allow-ffi, so XXH3 from hash-wasm instead of libxxhash.
      "ferry without --allow-ffi (hash-wasm), cache hit, → /dev/null": () =>
        timed(
          ...toNull(
            ferryArgs(warm.port, ["get", name, "-o", "-", "-f", "-q"], [
              "--allow-net=127.0.0.1",
              "--allow-read",
              "--allow-write",
            ]),
          ),
          "ferry get (no ffi)",
        ),
      "ferry --sha256, cache hit, → /dev/null": () =>
        timed(
          ...toNull(getArgs(["--sha256"], "-")(warm.port)),
          "ferry get --sha256",
        ),
      "ferry --sha256, cache miss, → /dev/null": () =>
        fresh(getArgs(["--sha256"], "-"), "null"),
      "ferry, cache hit, → file": () =>
        timed(Deno.execPath(), getArgs([], out)(warm.port), "ferry get"),
      "ferry, cache miss, → file": () => fresh(getArgs([], out), "file"),
      "raw Deno loop, → /dev/null": () => {
        const [cmd, args] = rawGet(raw.port, "/dev/null");
        return timed(cmd, args, "raw");
      },
      "raw Deno loop, → file": () => {
        const [cmd, args] = rawGet(raw.port, out);
        return timed(cmd, args, "raw");
      },
    };
    if (tools.nc.available) {
      peers["nc, → /dev/null"] = () => nc("null");
      peers["nc, → file"] = () => nc("file");
    }
    log(`scenario 8: 1 GiB-class get, ${plan.rounds} interleaved rounds`);
    const values = await interleaved(plan.rounds, peers, log);
    const mbps = (name: string) =>
      values[name] &&
      summarize(values[name].map((s) => plan.bigBytes / 1e6 / s));
    const rows: TargetRow[] = [];
    const ncNull = mbps("nc, → /dev/null");
    const ncFile = mbps("nc, → file");
    const rawNull = mbps("raw Deno loop, → /dev/null");
    for (const label of Object.keys(peers)) {
      const value = mbps(label)!;
      const row: TargetRow = { label: `get ${label}`, unit: "MB/s", value };
      if (label.startsWith("ferry, cache") && label.endsWith("/dev/null")) {
        const a = ncNull ? value.median / ncNull.median : NaN;
        const b = rawNull ? value.median / rawNull.median : NaN;
        row.target = `≥ 1.0× nc (${
          ncNull ? `${fmt(a)}×` : "nc missing"
        }), ≥ 0.9× raw loop (${fmt(b)}×)`;
        row.met = a >= 1 && b >= 0.9;
      } else if (label.startsWith("ferry, cache") && ncFile) {
        const a = value.median / ncFile.median;
        row.target = `≥ 1.0× nc (${fmt(a)}×)`;
        row.met = a >= 1;
      }
      rows.push(row);
    }
    return rows;
  } finally {
    await warm.stop();
    await raw.stop();
    await Deno.remove(out).catch(() => {});
    await Deno.remove(path).catch(() => {});
  }
}

async function smallFiles(
  plan: TargetsPlan,
  tools: Toolbox,
  log: Log,
  dir: string,
): Promise<TargetRow[]> {
  const rows: TargetRow[] = [];
  const root = `${dir}/root`;
  await Deno.mkdir(root, { recursive: true });
  const ferry = await startFerryServer(root, { upload: true });
  const rsync = tools.rsync.available
    ? await startRsyncDaemon(root, dir, { writable: true })
    : undefined;
  try {
    for (const { count, size } of plan.trees) {
      const name = `t${count}x${size}`;
      const local = `${dir}/local_${name}`;
      const block = randomBytes(MIB);
      await writeFileTree(root, name, count, size, block);
      await writeFileTree(dir, `local_${name}`, count, size, block);
      let n = 0;
      const fresh = () => `${dir}/dst${n++}`;
      const clean = (path: string) => Deno.remove(path, { recursive: true });
      const peers: Record<string, () => Promise<number>> = {
        "ferry get -r": async () => {
          const dest = fresh();
          try {
            return await timed(
              Deno.execPath(),
              ferryArgs(ferry.port, ["get", "-r", name, "-o", dest, "-q"]),
              "ferry get -r",
            );
          } finally {
            await clean(dest);
          }
        },
        "ferry put -r": async () => {
          const remote = `up${n++}`;
          try {
            return await timed(
              Deno.execPath(),
              ferryArgs(ferry.port, ["put", "-r", local, remote, "-q"]),
              "ferry put -r",
            );
          } finally {
            await clean(`${root}/${remote}`);
          }
        },
      };
      if (rsync) {
        peers["rsync daemon get"] = async () => {
          const dest = fresh();
          try {
            return await timed("rsync", [
              "-a",
              "--whole-file",
              `rsync://127.0.0.1:${rsync.port}/data/${name}/`,
              `${dest}/`,
            ], "rsync get");
          } finally {
            await clean(dest);
          }
        };
        peers["rsync daemon put"] = async () => {
          const remote = `up${n++}`;
          try {
            return await timed("rsync", [
              "-a",
              "--whole-file",
              `${local}/`,
              `rsync://127.0.0.1:${rsync.port}/data/${remote}/`,
            ], "rsync put");
          } finally {
            await clean(`${root}/${remote}`);
          }
        };
      }
      const label = `${count.toLocaleString("en")} × ${size / 1024} KiB`;
      log(`scenario 8: ${label} on tmpfs, ${plan.rounds} interleaved rounds`);
      const values = await interleaved(plan.rounds, peers, log);
      for (
        const [verb, peer] of [["get", "rsync daemon get"], [
          "put",
          "rsync daemon put",
        ]]
      ) {
        const mine = summarize(values[`ferry ${verb} -r`]);
        const theirs = values[peer] && summarize(values[peer]);
        const ratio = theirs ? mine.median / theirs.median : NaN;
        rows.push({
          label: `${label} ${verb} -r, tmpfs`,
          unit: "s",
          value: mine,
          target: theirs
            ? `≤ 1.0× rsync daemon (${fmt(theirs.median)} s, ${
              fmt(theirs.min)
            }–${fmt(theirs.max)}): ${fmt(ratio)}×`
            : "rsync missing",
          met: theirs ? ratio <= 1 : undefined,
        });
      }
      await clean(local);
      await clean(`${root}/${name}`);
    }
  } finally {
    await ferry.stop();
    await rsync?.stop();
  }
  return rows;
}

async function concurrency(
  plan: TargetsPlan,
  log: Log,
  dir: string,
): Promise<TargetRow[]> {
  const src = `${dir}/many`;
  await Deno.mkdir(src, { recursive: true });
  const names: string[] = [];
  for (let i = 0; i < plan.clients; i++) {
    names.push(`f${i}.bin`);
    await Deno.writeFile(`${src}/f${i}.bin`, randomBytes(plan.clientBytes));
  }
  log(
    `scenario 8: ${plan.clients} concurrent ${
      plan.clientBytes / MIB
    } MiB gets, ${plan.rounds} rounds`,
  );
  const peaks: number[] = [];
  const walls: number[] = [];
  let failures = 0;
  for (let round = 0; round < plan.rounds; round++) {
    const server = await startFerryServer(src);
    const dest = `${dir}/many_out`;
    await Deno.mkdir(dest, { recursive: true });
    try {
      const result = await runTimed(Deno.execPath(), [
        "run",
        "-A",
        `${REPO_DIR}/bench/_many_clients.ts`,
        "--port",
        String(server.port),
        "--dest",
        dest,
        "--mode",
        "lib",
        ...names,
      ], { captureStdout: true, timeoutMs: 300_000 });
      walls.push(result.seconds);
      const clients = JSON.parse(result.stdout).clients as { error?: string }[];
      failures += clients.filter((c) => c.error).length;
      for (let i = 0; i < names.length; i++) {
        const a = await Deno.readFile(`${src}/${names[i]}`);
        const b = await Deno.readFile(`${dest}/${i}.bin`).catch(() =>
          undefined
        );
        if (!b || a.length !== b.length || a.some((x, j) => x !== b[j])) {
          failures++;
        }
      }
    } finally {
      const peak = await server.stop();
      if (peak !== undefined) peaks.push(peak / 1000);
      await Deno.remove(dest, { recursive: true });
    }
  }
  await Deno.remove(src, { recursive: true });
  const peak = summarize(peaks);
  return [{
    label: `${plan.clients} concurrent ${
      plan.clientBytes / MIB
    } MiB gets: server peak RSS`,
    unit: "MB",
    value: peak,
    target: `all byte-exact (${
      failures === 0 ? "yes" : `${failures} not`
    }), ≤ 150 MB`,
    met: failures === 0 && peak.median <= 150,
    note: `wall ${fmt(summarize(walls).median)} s`,
  }];
}

function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) {
    out.set(crypto.getRandomValues(new Uint8Array(Math.min(65536, n - i))), i);
  }
  return out;
}

/**
 * Client start-up: `client.ts --help` (the target), and `ls` and `get` of a
 * 6-byte file from a local server, which add the handshake and (for `get`)
 * the file and digest code, against the floor: `deno run` of a one-line
 * script. Same interleaved rounds; every command once before, so the
 * module cache is warm.
 */
async function startup(
  plan: TargetsPlan,
  log: Log,
  dir: string,
): Promise<TargetRow[]> {
  log("scenario 8: client start-up");
  const root = `${dir}/startup`;
  await Deno.mkdir(root);
  await Deno.writeTextFile(`${root}/tiny.txt`, "hello\n");
  const oneLine = `${dir}/one_line.ts`;
  await Deno.writeTextFile(oneLine, "console.log(1);\n");
  const server = await startFerryServer(root);
  try {
    const commands: Record<string, string[]> = {
      help: ["run", "-A", `${REPO_DIR}/client.ts`, "--help"],
      ls: ferryArgs(server.port, ["ls"]),
      get: ferryArgs(server.port, [
        "get",
        "tiny.txt",
        "-o",
        `${dir}/tiny.txt`,
        "--force",
        "-q",
      ]),
      floor: ["run", "-A", oneLine],
    };
    const peers: Record<string, () => Promise<number>> = {};
    for (const [name, args] of Object.entries(commands)) {
      await timed(Deno.execPath(), args, name); // module cache warm
      peers[name] = async () =>
        (await timed(Deno.execPath(), args, name)) * 1000;
    }
    const values = await interleaved(plan.startupRuns, peers);
    const floor = summarize(values.floor);
    const floorNote = `deno run of a one-line script in the same rounds: ${
      fmt(floor.median)
    } ms, ${fmt(floor.min)}–${fmt(floor.max)}`;
    const help = summarize(values.help);
    return [{
      label: "client.ts --help (start-up)",
      unit: "ms",
      value: help,
      target: "≤ 40 ms",
      met: help.median <= 40,
      note: floorNote,
    }, {
      label: "client.ts ls (start-up + handshake)",
      unit: "ms",
      value: summarize(values.ls),
    }, {
      label: "client.ts get of a 6-byte file",
      unit: "ms",
      value: summarize(values.get),
    }];
  } finally {
    await server.stop();
  }
}

/**
 * Runs scenario 8.
 *
 * @param plan Sizes and rounds.
 * @param tools The peers found.
 * @param log Progress lines (stderr).
 * @returns One row per target.
 */
export async function targetsScenario(
  plan: TargetsPlan,
  tools: Toolbox,
  log: Log,
): Promise<TargetRow[]> {
  const dir = await Deno.makeTempDir({ dir: TMP, prefix: "ferry_bench_" });
  try {
    return [
      ...await bigFile(plan, tools, log, dir),
      ...await smallFiles(plan, tools, log, dir),
      ...await concurrency(plan, log, dir),
      ...await startup(plan, log, dir),
    ];
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/**
 * The markdown section of scenario 8.
 *
 * @param rows The rows.
 * @param load `uptime` load averages at the start and the end.
 * @returns Markdown lines.
 */
export function renderTargets(rows: TargetRow[], load: string): string {
  const out = [
    "## 8. Issue 11 targets (interleaved rounds, tmpfs)",
    "",
    `Load (1, 5, 15 min) ${load}. Medians, min–max.`,
    "",
    "| what | median | min–max | target | met |",
    "|---|---|---|---|---|",
  ];
  for (const row of rows) {
    out.push(
      `| ${row.label} | ${fmt(row.value.median)} ${row.unit} | ${
        fmt(row.value.min)
      }–${fmt(row.value.max)} | ${row.target ?? ""}${
        row.note ? ` (${row.note})` : ""
      } | ${row.met === undefined ? "" : row.met ? "yes" : "no"} |`,
    );
  }
  return out.join("\n") + "\n";
}
