/**
 * Runs many ferry clients at once against one server and reports, as JSON
 * on stdout, each client's time and byte count. Used by the benchmark's
 * concurrency scenario.
 *
 * Two ways to make clients:
 * - `--mode lib` (default): `connect()` and `get()` from `client.ts`, all
 *   connections opened at the same moment inside this one process;
 * - `--mode cli`: one `deno run -A client.ts get` child process per client,
 *   all spawned at the same moment.
 *
 * ```sh
 * deno run -A bench/_many_clients.ts --port 4000 --dest /tmp/d a.bin b.bin ...
 * ```
 *
 * Output: `{"mode", "wallSeconds", "clients": [{"seconds", "bytes", "error"?}]}`;
 * client `i` writes `DEST/i.bin`.
 *
 * @module
 */

import { parseArgs } from "node:util";

/** What one client did. */
export interface ClientOutcome {
  /** From the common start until its file was complete (or it failed). */
  seconds: number;
  /** Bytes the client reported receiving (0 on failure). */
  bytes: number;
  /** Why it failed, if it did. */
  error?: string;
}

/** The JSON this script prints. */
export interface ManyClientsReport {
  /** How the clients were made. */
  mode: "lib" | "cli";
  /** From the common start until the last client finished. */
  wallSeconds: number;
  /** One entry per client, in argument order. */
  clients: ClientOutcome[];
}

interface FerryClientLike {
  get(
    path: string,
    destination: string,
    options?: { overwrite?: boolean },
  ): Promise<{ bytes: number }>;
  close(): void;
}

interface ClientModule {
  connect(options: { hostname: string; port: number }): Promise<
    FerryClientLike
  >;
}

const CLIENT_URL = new URL("../client.ts", import.meta.url);

function describe(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return `${typeof code === "string" ? code + ": " : ""}${error.message}`;
  }
  return String(error);
}

async function runLib(
  host: string,
  port: number,
  dest: string,
  names: string[],
): Promise<ManyClientsReport> {
  const { connect } = (await import(CLIENT_URL.href)) as ClientModule;
  const start = performance.now();
  const clients = await Promise.all(names.map(async (name, i) => {
    let client: FerryClientLike | undefined;
    try {
      client = await connect({ hostname: host, port });
      const result = await client.get(name, `${dest}/${i}.bin`);
      return {
        seconds: (performance.now() - start) / 1000,
        bytes: result.bytes,
      };
    } catch (error) {
      return {
        seconds: (performance.now() - start) / 1000,
        bytes: 0,
        error: describe(error),
      };
    } finally {
      client?.close();
    }
  }));
  return {
    mode: "lib",
    wallSeconds: (performance.now() - start) / 1000,
    clients,
  };
}

async function runCli(
  host: string,
  port: number,
  dest: string,
  names: string[],
): Promise<ManyClientsReport> {
  const script = CLIENT_URL.pathname;
  const start = performance.now();
  const clients = await Promise.all(names.map(async (name, i) => {
    const path = `${dest}/${i}.bin`;
    try {
      const output = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          script,
          "--host",
          host,
          "--port",
          String(port),
          "get",
          name,
          "-o",
          path,
        ],
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).output();
      const seconds = (performance.now() - start) / 1000;
      if (!output.success) {
        const lines = new TextDecoder().decode(output.stderr).trim().split(
          "\n",
        );
        return {
          seconds,
          bytes: 0,
          error: `exit ${output.code}: ${lines[lines.length - 1]}`,
        };
      }
      return { seconds, bytes: (await Deno.stat(path)).size };
    } catch (error) {
      return {
        seconds: (performance.now() - start) / 1000,
        bytes: 0,
        error: describe(error),
      };
    }
  }));
  return {
    mode: "cli",
    wallSeconds: (performance.now() - start) / 1000,
    clients,
  };
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    options: {
      host: { type: "string", default: "127.0.0.1" },
      port: { type: "string" },
      dest: { type: "string" },
      mode: { type: "string", default: "lib" },
    },
    allowPositionals: true,
    strict: true,
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || !values.dest || positionals.length === 0) {
    console.error(
      "usage: _many_clients.ts --port P --dest DIR [--mode lib|cli] NAME...",
    );
    Deno.exit(2);
  }
  const report = values.mode === "cli"
    ? await runCli(values.host, port, values.dest, positionals)
    : await runLib(values.host, port, values.dest, positionals);
  console.log(JSON.stringify(report));
}

if (import.meta.main) {
  await main();
}
