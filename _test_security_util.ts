/**
 * Helpers for the authentication and TLS tests: a proxy that records every
 * byte of a session, the server and client scripts run as child processes,
 * and a throwaway certificate authority made with `openssl`.
 *
 * @module
 */

/** Path of the server script, for CLI tests. */
export const SERVER_SCRIPT: string = new URL("./server.ts", import.meta.url)
  .pathname;

/** Path of the client script, for CLI tests. */
export const CLIENT_SCRIPT: string = new URL("./client.ts", import.meta.url)
  .pathname;

const decoder = new TextDecoder();

/** A TCP proxy that forwards to a server and keeps every byte it saw. */
export interface CaptureProxy {
  /** The proxy's port. */
  port: number;
  /** Bytes sent by clients, then bytes sent by the server, per connection. */
  captured(): Uint8Array[];
  /** Stops accepting, closes every connection and waits for the pumps. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Starts a proxy on `127.0.0.1:0` to `127.0.0.1:targetPort` that records
 * both directions of every connection.
 */
export function startCaptureProxy(targetPort: number): CaptureProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const sessions: Promise<void>[] = [];
  const chunks: Uint8Array[] = [];
  let disposed: Promise<void> | undefined;
  function closeQuietly(conn: Deno.Conn): void {
    try {
      conn.close();
    } catch {
      // Already closed.
    }
    conns.delete(conn);
  }
  async function pump(from: Deno.Conn, to: Deno.Conn): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    try {
      while (true) {
        const n = await from.read(buffer);
        if (n === null) break;
        chunks.push(buffer.slice(0, n));
        let at = 0;
        while (at < n) at += await to.write(buffer.subarray(at, n));
      }
    } catch {
      // A side closed: the session ends.
    }
  }
  async function session(client: Deno.Conn): Promise<void> {
    conns.add(client);
    let server: Deno.Conn;
    try {
      server = await Deno.connect({ hostname: "127.0.0.1", port: targetPort });
    } catch {
      closeQuietly(client);
      return;
    }
    conns.add(server);
    const pumps = [pump(client, server), pump(server, client)];
    await Promise.race(pumps);
    closeQuietly(client);
    closeQuietly(server);
    await Promise.all(pumps);
  }
  const accepting = (async () => {
    try {
      for await (const conn of listener) sessions.push(session(conn));
    } catch {
      // Listener closed.
    }
  })();
  return {
    port: listener.addr.port,
    captured: () => chunks,
    [Symbol.asyncDispose](): Promise<void> {
      disposed ??= (async () => {
        listener.close();
        await accepting;
        for (const conn of [...conns]) closeQuietly(conn);
        await Promise.all(sessions);
      })();
      return disposed;
    },
  };
}

/** Concatenates byte chunks. */
export function concat(chunks: readonly Uint8Array[]): Uint8Array {
  const total = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

/** Whether `needle` occurs in `haystack`. */
export function containsBytes(
  haystack: Uint8Array,
  needle: Uint8Array,
): boolean {
  if (needle.length === 0) return true;
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) {
      if (haystack[i + j] !== needle[j]) continue outer;
    }
    return true;
  }
  return false;
}

/** What a finished child process produced. */
export interface ScriptResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `deno run -A script ...args` with extra environment variables. */
export async function runScript(
  script: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<ScriptResult> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...env },
  }).output();
  return {
    code,
    stdout: decoder.decode(stdout),
    stderr: decoder.decode(stderr),
  };
}

/** A `server.ts` child process that has printed where it listens. */
export interface ServerProcess {
  /** The `Listening on ...` line, without its newline. */
  line: string;
  /** The port it listens on. */
  port: number;
  /** Sends SIGTERM and waits for the exit; returns the code and stderr. */
  stop(): Promise<{ code: number; stderr: string }>;
}

/**
 * Starts `deno run -A server.ts ...args` and waits for its first stdout
 * line. If the process exits first, `line` is empty and `port` 0 (call
 * `stop()` to collect its stderr).
 */
export async function startServerProcess(
  args: string[],
  env: Record<string, string> = {},
): Promise<ServerProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SERVER_SCRIPT, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...env },
  }).spawn();
  const stdout = child.stdout.pipeThrough(new TextDecoderStream())
    .getReader();
  const stderrText = new Response(child.stderr).text();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await stdout.read();
    if (done) break;
    text += value;
  }
  const line = text.split("\n")[0];
  const port = Number(line.match(/:(\d+) /)?.[1] ?? 0);
  let stopped: Promise<{ code: number; stderr: string }> | undefined;
  return {
    line,
    port,
    stop() {
      stopped ??= (async () => {
        try {
          child.kill("SIGTERM");
        } catch {
          // Already exited.
        }
        while (!(await stdout.read()).done) {
          // drain
        }
        const status = await child.status;
        return { code: status.code, stderr: await stderrText };
      })();
      return stopped;
    },
  };
}

/** Whether the `openssl` command can be run. */
export async function hasOpenssl(): Promise<boolean> {
  try {
    const { success } = await new Deno.Command("openssl", {
      args: ["version"],
      stdout: "null",
      stderr: "null",
    }).output();
    return success;
  } catch {
    return false;
  }
}

/** A throwaway PKI: a CA, a server certificate it signed, another CA. */
export interface TestPki {
  /** The CA certificate, PEM, and its file. */
  caPem: string;
  caPath: string;
  /** A CA that signed nothing of ours, PEM, and its file. */
  otherCaPem: string;
  otherCaPath: string;
  /** The server certificate (127.0.0.1 and localhost), PEM, and its file. */
  certPem: string;
  certPath: string;
  /** The server key, PEM, and its file. */
  keyPem: string;
  keyPath: string;
}

async function openssl(dir: string, args: string[]): Promise<void> {
  const { success, stderr } = await new Deno.Command("openssl", {
    args,
    cwd: dir,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!success) {
    throw new Error(`openssl ${args[0]} failed: ${decoder.decode(stderr)}`);
  }
}

/** Makes CA and server certificates (P-256, valid 2 days) in `dir`. */
export async function makeTestPki(dir: string): Promise<TestPki> {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
  for (const name of ["ca", "other-ca"]) {
    await openssl(dir, [
      "req",
      "-x509",
      ...ec,
      "-nodes",
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.pem`,
      "-days",
      "2",
      "-subj",
      `/CN=ferry test ${name}`,
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ]);
  }
  await openssl(dir, [
    "req",
    ...ec,
    "-nodes",
    "-keyout",
    "server.key",
    "-out",
    "server.csr",
    "-subj",
    "/CN=localhost",
  ]);
  await Deno.writeTextFile(
    `${dir}/server.ext`,
    [
      "subjectAltName=IP:127.0.0.1,DNS:localhost",
      "basicConstraints=CA:FALSE",
      "keyUsage=critical,digitalSignature",
      "extendedKeyUsage=serverAuth",
      "",
    ].join("\n"),
  );
  await openssl(dir, [
    "x509",
    "-req",
    "-in",
    "server.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "server.pem",
    "-days",
    "2",
    "-extfile",
    "server.ext",
  ]);
  const read = (name: string) => Deno.readTextFile(`${dir}/${name}`);
  return {
    caPem: await read("ca.pem"),
    caPath: `${dir}/ca.pem`,
    otherCaPem: await read("other-ca.pem"),
    otherCaPath: `${dir}/other-ca.pem`,
    certPem: await read("server.pem"),
    certPath: `${dir}/server.pem`,
    keyPem: await read("server.key"),
    keyPath: `${dir}/server.key`,
  };
}
