#!/usr/bin/env -S deno run -A
/**
 * Several ferry servers behind HAProxy, on loopback, over one folder: the
 * demo of "Running several servers" in the README, and the harness of the
 * failover test and the cluster bench row.
 *
 * HAProxy runs in TCP mode with `send-proxy-v2` and health checks in front
 * of N `server.ts --proxy-protocol` processes that share one root; it is
 * installed with `apt-get install -y haproxy` when missing (as root).
 *
 * ```sh
 * deno task cluster                          # 3 servers over the current folder
 * deno run -A bench/cluster.ts --servers 2 --root /srv/files --allow-upload
 * ```
 *
 * Prints where HAProxy listens and where each server does, then runs until
 * Ctrl-C (SIGINT) or SIGTERM, which stop HAProxy and every server.
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  freePort,
  lastLine,
  reasonOf,
  type ServerProcess,
  startServer,
} from "./_proc.ts";

const SERVER_SCRIPT = new URL("../server.ts", import.meta.url).pathname;

/** Options of {@linkcode startCluster}. */
export interface ClusterOptions {
  /** Folder every server serves. */
  root: string;
  /** How many ferry servers. @default {3} */
  servers?: number;
  /** HAProxy's port on 127.0.0.1; 0 picks a free one. @default {0} */
  port?: number;
  /** Pass `--allow-upload` to the servers. @default {false} */
  allowUpload?: boolean;
  /** The servers' `--idle-timeout`, which HAProxy's timeouts follow. @default {60} */
  idleTimeoutSeconds?: number;
  /** The servers' `--lease-timeout`. @default {10} */
  leaseTimeoutSeconds?: number;
  /**
   * The servers' `--max-connections-per-address` (clients on one machine
   * all come from 127.0.0.1). @default {the server's default}
   */
  maxConnectionsPerAddress?: number;
  /** The `haproxy` program. @default {"haproxy"} */
  haproxy?: string;
}

/** A running cluster. */
export interface Cluster {
  /** HAProxy's port on 127.0.0.1: where clients connect. */
  readonly port: number;
  /** The ferry servers, in the order of HAProxy's `s1`, `s2`, ... */
  readonly servers: readonly ServerProcess[];
  /** Stops HAProxy and every server, and removes the configuration. */
  stop(): Promise<void>;
  /** {@linkcode Cluster.stop}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * The HAProxy configuration: TCP mode, `send-proxy-v2`, health checks every
 * second (down after 2 failures, up after 2 successes), `leastconn`, a
 * failed connection retried on another server, and client and server
 * timeouts a little longer than ferry's idle timeout so that ferry, which
 * knows whether a transfer is stalled, decides first.
 *
 * @param port HAProxy's port on 127.0.0.1.
 * @param serverPorts The ferry servers' ports on 127.0.0.1.
 * @param idleTimeoutSeconds The servers' idle timeout.
 * @returns The configuration text.
 *
 * @example One server
 * ```ts
 * import assert from "node:assert/strict";
 * import { haproxyConfig } from "./cluster.ts";
 * const config = haproxyConfig(8000, [8001], 60);
 * assert.match(config, /server s1 127\.0\.0\.1:8001 check send-proxy-v2/);
 * ```
 */
export function haproxyConfig(
  port: number,
  serverPorts: readonly number[],
  idleTimeoutSeconds: number,
): string {
  const timeout = Math.ceil(idleTimeoutSeconds) + 10;
  return [
    "global",
    "  maxconn 4000",
    "defaults",
    "  mode tcp",
    "  timeout connect 2s",
    `  timeout client ${timeout}s`,
    `  timeout server ${timeout}s`,
    "  timeout check 2s",
    "  retries 3",
    "  option redispatch",
    "  option splice-auto",
    "frontend ferry",
    `  bind 127.0.0.1:${port}`,
    "  default_backend ferry_servers",
    "backend ferry_servers",
    "  balance leastconn",
    "  default-server inter 1s fall 2 rise 2",
    ...serverPorts.map((p, i) =>
      `  server s${i + 1} 127.0.0.1:${p} check send-proxy-v2`
    ),
    "",
  ].join("\n");
}

/**
 * Finds `haproxy`, installing it with `apt-get install -y haproxy` when it
 * is missing and `install` is set (needs root).
 *
 * @param install Try apt-get when missing.
 * @returns The program name, or why it cannot be had.
 *
 * @example
 * ```ts ignore
 * const found = await findHaproxy(false);
 * if ("reason" in found) console.log(found.reason);
 * ```
 */
export async function findHaproxy(
  install: boolean,
): Promise<{ program: string } | { reason: string }> {
  let program = await locateHaproxy();
  if (program !== undefined) return { program };
  if (!install) return { reason: "haproxy is not installed" };
  let result = await output("apt-get", ["install", "-y", "haproxy"]);
  if (!result.ok) {
    await output("apt-get", ["update"]);
    result = await output("apt-get", ["install", "-y", "haproxy"]);
  }
  program = await locateHaproxy();
  if (program !== undefined) return { program };
  return {
    reason: result.ok
      ? "haproxy is not on PATH after apt-get install"
      : `apt-get install -y haproxy failed: ${result.text}`,
  };
}

async function locateHaproxy(): Promise<string | undefined> {
  for (const program of ["haproxy", "/usr/sbin/haproxy"]) {
    if ((await output(program, ["-v"])).ok) return program;
  }
  return undefined;
}

async function output(
  cmd: string,
  args: string[],
): Promise<{ ok: boolean; text: string }> {
  try {
    const out = await new Deno.Command(cmd, {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { DEBIAN_FRONTEND: "noninteractive" },
    }).output();
    const text = new TextDecoder().decode(out.stderr) ||
      new TextDecoder().decode(out.stdout);
    return { ok: out.success, text: lastLine(text) };
  } catch (error) {
    return { ok: false, text: reasonOf(error) };
  }
}

/**
 * Starts N ferry servers with `--proxy-protocol` over `root` and HAProxy in
 * front of them.
 *
 * @param options The folder, how many servers, ports and timeouts.
 * @returns The running cluster; stop it with `stop()`.
 * @throws {Error} If a server or HAProxy does not start.
 *
 * @example
 * ```ts ignore
 * await using cluster = await startCluster({ root: "/srv/files" });
 * console.log(`tcp://127.0.0.1:${cluster.port}`);
 * ```
 */
export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const count = options.servers ?? 3;
  const idle = options.idleTimeoutSeconds ?? 60;
  const servers: ServerProcess[] = [];
  let haproxy: ServerProcess | undefined;
  const dir = await Deno.makeTempDir({ prefix: "ferry_cluster_" });
  const stop = async () => {
    await Promise.all([haproxy, ...servers].map((p) => p?.stop()));
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    const started = await Promise.all(
      Array.from(
        { length: count },
        () =>
          startServer("ferry server", Deno.execPath(), [
            "run",
            "--allow-net=127.0.0.1",
            "--allow-read",
            "--allow-write",
            SERVER_SCRIPT,
            "--root",
            options.root,
            "--port",
            "0",
            "--proxy-protocol",
            "--quiet",
            "--idle-timeout",
            String(idle),
            "--lease-timeout",
            String(options.leaseTimeoutSeconds ?? 10),
            ...(options.allowUpload ? ["--allow-upload"] : []),
            ...(options.maxConnectionsPerAddress === undefined ? [] : [
              "--max-connections-per-address",
              String(options.maxConnectionsPerAddress),
            ]),
          ], { line: /tcp:\/\/\S+:\d+/ }),
      ),
    );
    servers.push(...started);
    const port = options.port || await freePort();
    const config = `${dir}/haproxy.cfg`;
    await Deno.writeTextFile(
      config,
      haproxyConfig(port, servers.map((s) => s.port), idle),
    );
    haproxy = await startServer(
      "haproxy",
      options.haproxy ?? "haproxy",
      ["-db", "-f", config],
      { port },
    );
    return {
      port,
      servers,
      stop,
      [Symbol.asyncDispose]: stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * A cluster as the benchmark's concurrency scenario uses a server: its
 * port (HAProxy's) and a `stop()` (no peak memory figure: several
 * processes).
 *
 * @param root Folder to serve.
 * @param servers How many ferry servers behind HAProxy.
 * @returns The port and how to stop.
 *
 * @example
 * ```ts ignore
 * const server = await startClusterServer("/tmp/src", 2);
 * await server.stop();
 * ```
 */
export async function startClusterServer(
  root: string,
  servers: number,
): Promise<{ port: number; stop(): Promise<undefined> }> {
  const found = await findHaproxy(false);
  if ("reason" in found) throw new Error(found.reason);
  const cluster = await startCluster({
    root,
    servers,
    haproxy: found.program,
    maxConnectionsPerAddress: 1024,
  });
  return {
    port: cluster.port,
    async stop() {
      await cluster.stop();
      return undefined;
    },
  };
}

const USAGE = `USAGE:
  deno task cluster [OPTIONS]
  deno run -A bench/cluster.ts [OPTIONS]

  Starts HAProxy (TCP mode, send-proxy-v2, health checks) in front of N
  ferry servers (--proxy-protocol) on 127.0.0.1 over one folder; Ctrl-C
  stops everything.

OPTIONS:
  --servers N      how many ferry servers (default: 3)
  --root DIR       folder they all serve (default: .)
  --port PORT      HAProxy's port, 0 for any free port (default: 65432)
  --allow-upload   let the servers accept uploads (default: off)
  --idle-timeout SECONDS  the servers' idle timeout; HAProxy's timeouts
                   follow it (default: 60)
  --no-install     do not apt-get install haproxy when missing (default: install)
  -h, --help       print this help and exit`;

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      args: Deno.args,
      strict: true,
      options: {
        servers: { type: "string", default: "3" },
        root: { type: "string", default: "." },
        port: { type: "string", default: "65432" },
        "allow-upload": { type: "boolean", default: false },
        "idle-timeout": { type: "string", default: "60" },
        "no-install": { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (error) {
    console.error(`cluster: ${reasonOf(error).split(". ")[0]}`);
    console.error(USAGE);
    Deno.exit(2);
  }
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const servers = Number(values.servers);
  const port = Number(values.port);
  const idle = Number(values["idle-timeout"]);
  if (
    !/^\d+$/.test(values.servers) || servers < 1 || servers > 64 ||
    !/^\d+$/.test(values.port) || port > 65535 || !(idle > 0)
  ) {
    console.error(
      "cluster: --servers 1 to 64, --port 0 to 65535, --idle-timeout > 0",
    );
    Deno.exit(2);
  }
  const found = await findHaproxy(!values["no-install"]);
  if ("reason" in found) {
    console.error(`cluster: ${found.reason}`);
    Deno.exit(1);
  }
  let cluster: Cluster;
  try {
    cluster = await startCluster({
      root: await Deno.realPath(values.root),
      servers,
      port,
      allowUpload: values["allow-upload"],
      idleTimeoutSeconds: idle,
      haproxy: found.program,
    });
  } catch (error) {
    console.error(`cluster: cannot start: ${reasonOf(error)}`);
    Deno.exit(1);
  }
  const ports = cluster.servers.map((s) => s.port).join(", ");
  console.log(
    `Listening on tcp://127.0.0.1:${cluster.port} (HAProxy in front of ${servers} ferry servers on ports ${ports})`,
  );
  const stopped = Promise.withResolvers<void>();
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => stopped.resolve());
  }
  await stopped.promise;
  await cluster.stop();
  Deno.exit(0);
}

if (import.meta.main) {
  await main();
}
