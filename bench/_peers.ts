/**
 * The programs ferry is measured against, and ferry itself: finding them,
 * installing the missing ones with `apt-get`, starting their servers on
 * 127.0.0.1 and building their client command lines.
 *
 * @module
 */

import {
  freePort,
  lastLine,
  type ServerProcess,
  startServer,
} from "./_proc.ts";

/** Where the ferry repository is (the folder above `bench/`). */
export const REPO_DIR: string = new URL("..", import.meta.url).pathname
  .replace(/\/$/, "");

/** The classic programs (never modified; their port is replaced as text). */
export const SEED_DIR: string = `${REPO_DIR}/../shared/seed`;

/** Availability of one program. */
export interface Availability {
  /** True when it can be run. */
  available: boolean;
  /** Its version line, when known. */
  version?: string;
  /** Path or command used to run it. */
  path?: string;
  /** Why it cannot be used. */
  reason?: string;
}

/** Everything the benchmark may run, as found on this machine. */
export interface Toolbox {
  /** The ferry server and client scripts. */
  ferry: Availability;
  /** OpenBSD netcat, with the flag style it supports. */
  nc: Availability & { style?: "N" | "q0" };
  /** rsync (daemon and client). */
  rsync: Availability;
  /** curl. */
  curl: Availability;
  /** python3, resolved to its real executable (not a pyenv shim). */
  python: Availability;
  /** The classic seed programs (need python). */
  classic: Availability;
  /** GNU time, for a client's peak RSS. */
  time: Availability;
}

/** Runs `cmd`; its exit code and stdout + stderr, or undefined if missing. */
async function output(
  cmd: string,
  args: string[],
  env?: Record<string, string>,
): Promise<{ code: number; text: string } | undefined> {
  try {
    const out = await new Deno.Command(cmd, {
      args,
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const decoder = new TextDecoder();
    return {
      code: out.code,
      text: decoder.decode(out.stdout) + decoder.decode(out.stderr),
    };
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

function firstLine(text: string): string {
  return text.trim().split("\n")[0]?.trim() ?? "";
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Looks for every peer program without installing anything.
 *
 * @returns What is there.
 *
 * @example
 * ```ts ignore
 * const tools = await detectTools();
 * ```
 */
export async function detectTools(): Promise<Toolbox> {
  const ferryMissing = [];
  for (const file of ["server.ts", "client.ts"]) {
    if (!(await exists(`${REPO_DIR}/${file}`))) ferryMissing.push(file);
  }
  const ferry: Availability = ferryMissing.length
    ? { available: false, reason: `${ferryMissing.join(", ")} not written yet` }
    : { available: true, path: REPO_DIR };

  let nc: Toolbox["nc"];
  const ncHelp = await output("nc", ["-h"]);
  if (!ncHelp) {
    nc = { available: false, reason: "nc not installed" };
  } else if (!/OpenBSD/i.test(ncHelp.text)) {
    nc = { available: false, reason: "nc is not OpenBSD netcat" };
  } else if (/\s-N\s/.test(ncHelp.text) || /\[-[a-zA-Z]*N/.test(ncHelp.text)) {
    nc = {
      available: true,
      path: "nc",
      style: "N",
      version: firstLine(ncHelp.text),
    };
  } else if (/-q\s/.test(ncHelp.text)) {
    nc = {
      available: true,
      path: "nc",
      style: "q0",
      version: firstLine(ncHelp.text),
    };
  } else {
    nc = { available: false, reason: "nc supports neither -N nor -q" };
  }

  const rsyncOut = await output("rsync", ["--version"]);
  const rsync: Availability = rsyncOut && rsyncOut.code === 0
    ? { available: true, path: "rsync", version: firstLine(rsyncOut.text) }
    : { available: false, reason: "rsync not installed" };

  const curlOut = await output("curl", ["--version"]);
  const curl: Availability = curlOut && curlOut.code === 0
    ? { available: true, path: "curl", version: firstLine(curlOut.text) }
    : { available: false, reason: "curl not installed" };

  const pyOut = await output("python3", [
    "-c",
    "import sys; print(sys.executable); print(sys.version.split()[0])",
  ]);
  let python: Availability;
  if (pyOut && pyOut.code === 0) {
    const [path, version] = pyOut.text.trim().split("\n");
    python = {
      available: true,
      path: path.trim(),
      version: `Python ${version}`,
    };
  } else {
    python = { available: false, reason: "python3 not installed" };
  }

  let classic: Availability;
  const seedFiles = ["classic_server.py", "classic_client.py"];
  const seedMissing = [];
  for (const file of seedFiles) {
    if (!(await exists(`${SEED_DIR}/${file}`))) seedMissing.push(file);
  }
  if (!python.available) classic = { available: false, reason: python.reason };
  else if (seedMissing.length) {
    classic = {
      available: false,
      reason: `${seedMissing.join(", ")} not found in ${SEED_DIR}`,
    };
  } else classic = { available: true, path: SEED_DIR };

  const time: Availability = await exists("/usr/bin/time")
    ? { available: true, path: "/usr/bin/time" }
    : { available: false, reason: "/usr/bin/time not installed" };

  return { ferry, nc, rsync, curl, python, classic, time };
}

/**
 * Installs the missing peers with
 * `apt-get install -y netcat-openbsd rsync curl`, running `apt-get update`
 * first when the install fails.
 *
 * @param log Progress lines (stderr).
 * @returns The install log's last line on failure, or `undefined`.
 *
 * @example
 * ```ts ignore
 * await installPeers(console.error);
 * ```
 */
export async function installPeers(
  log: (line: string) => void,
): Promise<string | undefined> {
  const env = { DEBIAN_FRONTEND: "noninteractive" };
  async function apt(args: string[]): Promise<{ ok: boolean; text: string }> {
    try {
      const out = await output("apt-get", args, env);
      if (out === undefined) return { ok: false, text: "apt-get not found" };
      return { ok: out.code === 0, text: out.text };
    } catch (error) {
      return { ok: false, text: String(error) };
    }
  }
  const packages = ["netcat-openbsd", "rsync", "curl"];
  log(`setup: apt-get install -y ${packages.join(" ")}`);
  let result = await apt(["install", "-y", ...packages]);
  if (result.ok) return undefined;
  log("setup: install failed; apt-get update, then install again");
  await apt(["update"]);
  result = await apt(["install", "-y", ...packages]);
  return result.ok ? undefined : lastLine(result.text) || "apt-get failed";
}

/**
 * Starts the ferry server CLI on 127.0.0.1, any free port, `--quiet`, with
 * `--max-connections-per-address 1024` (every bench client is local).
 *
 * @param root Folder to serve.
 * @param options `upload`: allow uploads; `http`: also start the HTTP face on a free port; the
 * returned `port` is then the HTTP one.
 * @returns The server, ready (it printed `tcp://HOST:PORT`, or
 * `http://HOST:PORT` with `http`).
 * @throws {Error} If it exits or prints no address within 15 s.
 *
 * @example
 * ```ts ignore
 * const server = await startFerryServer("/tmp/src");
 * await server.stop();
 * ```
 */
export function startFerryServer(
  root: string,
  options: { http?: boolean; upload?: boolean } = {},
): Promise<ServerProcess> {
  const http = options.http ?? false;
  return startServer(
    http ? "ferry http server" : "ferry server",
    Deno.execPath(),
    [
      "run",
      "-A",
      `${REPO_DIR}/server.ts`,
      "--root",
      root,
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--quiet",
      // Every bench client is 127.0.0.1: 200 at once must not evict each other.
      "--max-connections-per-address",
      "1024",
      ...(http ? ["--http", "127.0.0.1:0"] : []),
      ...(options.upload ? ["--allow-upload"] : []),
    ],
    { line: http ? /http:\/\/\S+:\d+/ : /tcp:\/\/\S+:\d+/ },
  );
}

/**
 * The ferry client CLI's `get` command line.
 *
 * @param port Server port.
 * @param name Remote file (or folder, with `recursive`).
 * @param dest Local destination (`-o`).
 * @param recursive Add `-r` (folder get).
 * @returns Program and arguments.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ferryGet } from "./_peers.ts";
 * const [, args] = ferryGet(4000, "a.bin", "/tmp/a.bin");
 * assert(args.includes("get") && args.includes("-o"));
 * ```
 */
export function ferryGet(
  port: number,
  name: string,
  dest: string,
  recursive = false,
): [string, string[]] {
  return [Deno.execPath(), [
    "run",
    "-A",
    `${REPO_DIR}/client.ts`,
    "--host",
    "127.0.0.1",
    "--port",
    String(port),
    "get",
    ...(recursive ? ["-r"] : []),
    name,
    "-o",
    dest,
  ]];
}

/**
 * Starts the raw Deno loop's server (`bench/_raw.ts serve`).
 *
 * @param file The file it sends to every connection.
 * @returns The server, ready.
 * @throws {Error} If it does not start.
 *
 * @example
 * ```ts ignore
 * const server = await startRawServer("/tmp/src/big_1gib.bin");
 * ```
 */
export function startRawServer(file: string): Promise<ServerProcess> {
  return startServer("raw Deno server", Deno.execPath(), [
    "run",
    "-A",
    `${REPO_DIR}/bench/_raw.ts`,
    "serve",
    file,
  ], { line: /tcp:\/\/\S+:\d+/ });
}

/**
 * The raw Deno loop's client command line (`bench/_raw.ts get`).
 *
 * @param port Server port.
 * @param dest File to write.
 * @returns Program and arguments.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rawGet } from "./_peers.ts";
 * assert(rawGet(4000, "/tmp/x")[1].includes("4000"));
 * ```
 */
export function rawGet(port: number, dest: string): [string, string[]] {
  return [Deno.execPath(), [
    "run",
    "-A",
    `${REPO_DIR}/bench/_raw.ts`,
    "get",
    String(port),
    dest,
  ]];
}

/** Starts a program that takes a fixed port, retrying on another port if it
 * exits at once (a port can be taken between choosing and binding). */
async function onFreePort(
  start: (port: number) => Promise<ServerProcess>,
): Promise<ServerProcess> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await start(await freePort());
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError;
}

/**
 * Starts one `nc -l` that sends `file` to the first connection and then
 * half-closes (`-N`, or `-q0` on older netcats).
 *
 * @param nc The netcat found.
 * @param file The file to send.
 * @returns The server, listening.
 * @throws {Error} If it does not listen.
 *
 * @example
 * ```ts ignore
 * const server = await startNcServer(tools.nc, "/tmp/src/big_64mib.bin");
 * ```
 */
export function startNcServer(
  nc: Toolbox["nc"],
  file: string,
): Promise<ServerProcess> {
  const flag = nc.style === "N" ? "-N" : "-q0";
  return onFreePort((port) =>
    startServer("nc -l", "sh", [
      "-c",
      `exec nc ${flag} -l 127.0.0.1 ${port} < "$1" > /dev/null`,
      "sh",
      file,
    ], { port })
  );
}

/**
 * The `nc` client command line, writing what it receives into `dest`. `-d`
 * (never read stdin) and no `-N`: a client that half-closes at once makes
 * the OpenBSD server stop sending after a few KiB.
 */
export function ncGet(port: number, dest: string): [string, string[]] {
  return ["sh", [
    "-c",
    `exec nc -d 127.0.0.1 ${port} > "$1" < /dev/null`,
    "sh",
    dest,
  ]];
}

function classicCode(file: string, port: number): string {
  return `exec(open(${
    JSON.stringify(`${SEED_DIR}/${file}`)
  }).read().replace('PORT = 65432', 'PORT = ${port}'))`;
}

/**
 * Starts the unmodified classic server on a free port (its
 * `PORT = 65432` replaced as text).
 *
 * @param python The Python executable.
 * @param cwd Folder it serves (its working folder).
 * @returns The server, listening.
 * @throws {Error} If it does not listen.
 *
 * @example
 * ```ts ignore
 * const server = await startClassicServer("/usr/bin/python3", "/tmp/src");
 * ```
 */
export function startClassicServer(
  python: string,
  cwd: string,
): Promise<ServerProcess> {
  return onFreePort((port) =>
    startServer(
      "classic server",
      python,
      ["-c", classicCode("classic_server.py", port)],
      { port },
      { cwd },
    )
  );
}

/**
 * The unmodified classic client's command line; it reads the name on stdin
 * and saves `received_<name>` in its working folder.
 *
 * @param python The Python executable.
 * @param port Server port.
 * @returns Program and arguments.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { classicGet } from "./_peers.ts";
 * assert(classicGet("python3", 4000)[1][1].includes("PORT = 4000"));
 * ```
 */
export function classicGet(python: string, port: number): [string, string[]] {
  return [python, ["-c", classicCode("classic_client.py", port)]];
}

/**
 * Starts `python3 -m http.server` on 127.0.0.1 and a free port.
 *
 * @param python The Python executable.
 * @param dir Folder to serve.
 * @returns The server, listening.
 * @throws {Error} If it does not listen.
 *
 * @example
 * ```ts ignore
 * const server = await startHttpServer("/usr/bin/python3", "/tmp/src");
 * ```
 */
export function startHttpServer(
  python: string,
  dir: string,
): Promise<ServerProcess> {
  return onFreePort((port) =>
    startServer("http.server", python, [
      "-m",
      "http.server",
      String(port),
      "--bind",
      "127.0.0.1",
      "--directory",
      dir,
    ], { port })
  );
}

/**
 * The curl command line fetching `name` into `dest`.
 *
 * @param port Server port.
 * @param name Path under the served folder.
 * @param dest File to write.
 * @returns Program and arguments.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { curlGet } from "./_peers.ts";
 * assert(curlGet(80, "a b", "/tmp/x")[1].at(-1) === "http://127.0.0.1:80/a%20b");
 * ```
 */
export function curlGet(
  port: number,
  name: string,
  dest: string,
): [string, string[]] {
  const url = `http://127.0.0.1:${port}/${
    name.split("/").map(encodeURIComponent).join("/")
  }`;
  return ["curl", ["-sS", "--fail", "-o", dest, url]];
}

/**
 * Starts an rsync daemon (`--daemon --no-detach`) on 127.0.0.1 and a free
 * port, with one read-only module `data` rooted at `dir`.
 *
 * @param dir The module's folder.
 * @param workDir Where `rsyncd.conf`, its pid and log files go.
 * @param options `writable`: accept uploads (`read only = no`).
 * @returns The daemon, listening.
 * @throws {Error} If it does not listen.
 *
 * @example
 * ```ts ignore
 * const daemon = await startRsyncDaemon("/tmp/src", "/tmp");
 * ```
 */
export async function startRsyncDaemon(
  dir: string,
  workDir: string,
  options: { writable?: boolean } = {},
): Promise<ServerProcess> {
  const config = `${workDir}/rsyncd.conf`;
  await Deno.writeTextFile(
    config,
    [
      "use chroot = no",
      "uid = root",
      "gid = root",
      `pid file = ${workDir}/rsyncd.pid`,
      `log file = ${workDir}/rsyncd.log`,
      "max connections = 0",
      "[data]",
      `path = ${dir}`,
      `read only = ${options.writable ? "no" : "yes"}`,
      "",
    ].join("\n"),
  );
  const uid = Deno.uid();
  if (uid !== 0) {
    // uid/gid lines need root; without them the daemon runs as the caller.
    const text = await Deno.readTextFile(config);
    await Deno.writeTextFile(
      config,
      text.replace("uid = root\ngid = root\n", ""),
    );
  }
  return onFreePort(async (port) => {
    await Deno.remove(`${workDir}/rsyncd.pid`).catch(() => {});
    return startServer("rsync daemon", "rsync", [
      "--daemon",
      "--no-detach",
      "--address",
      "127.0.0.1",
      "--port",
      String(port),
      "--config",
      config,
    ], { port });
  });
}

/**
 * The rsync client command line copying a folder of the module into
 * `dest`: `-a --whole-file`, no compression.
 *
 * @param port Daemon port.
 * @param path Folder inside the module.
 * @param dest Local folder.
 * @returns Program and arguments.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rsyncGet } from "./_peers.ts";
 * assert(rsyncGet(873, "t", "/tmp/d")[1].includes("rsync://127.0.0.1:873/data/t/"));
 * ```
 */
export function rsyncGet(
  port: number,
  path: string,
  dest: string,
): [string, string[]] {
  return ["rsync", [
    "-a",
    "--whole-file",
    `rsync://127.0.0.1:${port}/data/${path}/`,
    `${dest}/`,
  ]];
}
