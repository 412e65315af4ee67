/**
 * Helpers for the authentication and TLS tests: a proxy that records every
 * byte of a session, the server script run as a child process, and a
 * throwaway certificate authority made with `openssl`. Generic helpers are in
 * `tests/_util/util.ts`.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  authMac,
  encodeMessage,
  HELLO_AUTH_REQUIRED,
  PROTOCOL_VERSION,
} from "../../protocol.ts";
import type { RawClient } from "./server.ts";
import {
  hasCommand,
  SERVER_SCRIPT,
  spawnScript,
  startTapProxy,
  type TapProxy,
} from "./util.ts";

/** A TCP proxy that forwards to a server and keeps every byte it saw. */
export interface CaptureProxy extends TapProxy {
  /** Every chunk, in the order it arrived, from both directions of every connection. */
  captured(): Uint8Array[];
}

/**
 * Starts a proxy on `127.0.0.1:0` to `127.0.0.1:targetPort` that records
 * both directions of every connection.
 */
export function startCaptureProxy(targetPort: number): CaptureProxy {
  const chunks: Uint8Array[] = [];
  const proxy = startTapProxy(
    targetPort,
    (chunk) => chunks.push(chunk.slice()),
  );
  return {
    port: proxy.port,
    captured: () => chunks,
    [Symbol.asyncDispose]: () => proxy[Symbol.asyncDispose](),
  };
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
  const server = await spawnScript(SERVER_SCRIPT, args, { env });
  const line = server.head.split("\n")[0];
  const port = Number(line.match(/:(\d+) /)?.[1] ?? 0);
  let stopped: Promise<{ code: number; stderr: string }> | undefined;
  return {
    line,
    port,
    stop() {
      stopped ??= (async () => {
        try {
          server.child.kill("SIGTERM");
        } catch {
          // Already exited.
        }
        const { code, stderr } = await server.finish();
        return { code, stderr };
      })();
      return stopped;
    },
  };
}

/** Whether the `openssl` command can be run. */
export function hasOpenssl(): Promise<boolean> {
  return hasCommand("openssl", ["version"]);
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
    throw new Error(
      `openssl ${args[0]} failed: ${new TextDecoder().decode(stderr)}`,
    );
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

/** Handshake by hand, then AUTH with `secret`; returns the time to the reply. */
export async function rawAuth(
  client: RawClient,
  secret: string,
): Promise<{ reply: string; ms: number }> {
  const clientHello = encodeMessage({
    type: "hello",
    minVersion: PROTOCOL_VERSION,
    maxVersion: PROTOCOL_VERSION,
    flags: 0,
    nonce: crypto.getRandomValues(new Uint8Array(32)),
  });
  await client.sendBytes(clientHello);
  await client.send({ type: "digests", algorithms: ["sha256"] });
  const hello = await client.expect("hello");
  assert.deepEqual((await client.expect("digests")).algorithms, ["sha256"]);
  assert.equal(hello.flags & HELLO_AUTH_REQUIRED, HELLO_AUTH_REQUIRED);
  assert.equal(hello.nonce.length, 32);
  const mac = await authMac(
    secret,
    hello.nonce,
    hello.maxVersion,
    clientHello,
    encodeMessage(hello),
  );
  const started = performance.now();
  await client.send({ type: "auth", mac });
  const reply = await client.next();
  const ms = performance.now() - started;
  if (reply?.type === "error") return { reply: reply.code, ms };
  return { reply: reply?.type ?? "closed", ms };
}
