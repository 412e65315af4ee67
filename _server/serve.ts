/**
 * {@linkcode serve}: checks the options, resolves the root once, builds the
 * server context and starts listening (`server.ts` re-exports it).
 *
 * @module
 */

import { AuthThrottle, DEFAULT_AUTH_FAILURE_DELAY_MS } from "./auth.ts";
import { Server } from "./accept.ts";
import { BulkBufferPool } from "./buffer_pool.ts";
import type { ServerContext } from "./context.ts";
import { resolveLimits } from "./limits.ts";
import { DEFAULT_HASH_CACHE_ENTRIES, HashCache } from "./hash_cache.ts";
import { UploadParts } from "./upload_part.ts";
import { DEFAULT_LEASE_TIMEOUT_MS } from "./upload_lease.ts";
import { KeptParts } from "./kept_parts.ts";
import { FerryError } from "../errors.ts";
import type { HttpFace } from "./http/listen.ts";

import {
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_PORT,
  type FerryServer,
  type ServeOptions,
} from "./types.ts";

/**
 * Starts a ferry server on `hostname:port` serving the folder `root`.
 *
 * @param options Where to listen, what to serve, how to stop.
 * @returns The running server, already listening.
 * @throws {FerryError} `NOT_FOUND` if `root` is missing or not a folder.
 * @throws {RangeError} If `port`, `handshakeTimeoutMs`, `authFailureDelayMs`
 * or a limit is out of range.
 * @throws {TypeError} If `token` is empty, `allowDelete` is set without
 * `allowUpload`, only one of `cert` and `key` is given, or `proxyProtocol`
 * is asked for with TLS.
 * @throws {Deno.errors.AddrInUse} If the port is taken (and other listen
 * errors as `Deno.listen` throws them).
 *
 * @example Serve the current folder on a free port, then stop
 * ```ts ignore
 * import { serve } from "../server.ts";
 * const controller = new AbortController();
 * const server = await serve({ port: 0, signal: controller.signal });
 * console.log(`Listening on ${server.addr.hostname}:${server.addr.port}`);
 * controller.abort();
 * await server.finished;
 * ```
 */
export async function serve(options: ServeOptions = {}): Promise<FerryServer> {
  const port = options.port ?? DEFAULT_PORT;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`Port must be an integer from 0 to 65535: ${port}`);
  }
  const context = await makeServerContext(options);
  // Deno.listenTls returns a listener with the same accept() and Conn
  // interface; the TLS handshake runs on the first read, under the
  // handshake deadline.
  const hostname = options.hostname ?? "127.0.0.1";
  const http = options.http;
  if (
    http !== undefined &&
    (!Number.isInteger(http.port) || http.port < 0 || http.port > 65535)
  ) {
    throw new RangeError(
      `HTTP port must be an integer from 0 to 65535: ${http.port}`,
    );
  }
  // The HTTP face, and the npm media-type table it serves files with, is
  // loaded only when asked for (its import is most of a server's start-up
  // CPU), and before listening, so that no connection waits on it.
  const httpFace = http === undefined
    ? undefined
    : await import("./http/listen.ts");
  const listener: Deno.Listener = options.cert !== undefined &&
      options.key !== undefined
    ? Deno.listenTls({
      hostname,
      port,
      transport: "tcp",
      cert: options.cert,
      key: options.key,
    })
    : Deno.listen({ hostname, port, transport: "tcp" });
  if (http === undefined || httpFace === undefined) {
    return new Server(listener, context, { signal: options.signal });
  }
  const stop = new AbortController();
  let face;
  try {
    face = httpFace.startHttpFace(context, {
      hostname: http.hostname ?? hostname,
      port: http.port,
      cert: options.cert,
      key: options.key,
      signal: stop.signal,
    });
  } catch (error) {
    listener.close();
    throw error;
  }
  return new TwoFaces(
    new Server(listener, context, { signal: stop.signal }),
    face,
    stop,
    options.signal,
  );
}

/** A server with both faces: ferry (`addr`) and HTTP (`httpAddr`). */
class TwoFaces implements FerryServer {
  readonly addr: Deno.NetAddr;
  readonly root: string;
  readonly httpAddr: Deno.NetAddr;
  readonly finished: Promise<void>;
  #stop: AbortController;

  constructor(
    ferry: FerryServer,
    http: HttpFace,
    stop: AbortController,
    signal: AbortSignal | undefined,
  ) {
    this.addr = ferry.addr;
    this.root = ferry.root;
    this.httpAddr = http.addr;
    this.#stop = stop;
    const onAbort = () => stop.abort();
    if (signal?.aborted) stop.abort();
    else signal?.addEventListener("abort", onAbort, { once: true });
    this.finished = Promise.all([ferry.finished, http.finished]).then(() => {
      signal?.removeEventListener("abort", onAbort);
    });
  }

  shutdown(): Promise<void> {
    this.#stop.abort();
    return this.finished;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown();
  }
}

/**
 * Checks the options of {@linkcode serve} (all but where to listen) and
 * builds what every connection handler shares.
 *
 * @param options As for {@linkcode serve}.
 * @returns The server context.
 * @throws {FerryError} `NOT_FOUND` if `root` is missing or not a folder.
 * @throws {RangeError} If a timeout or a limit is out of range.
 * @throws {TypeError} If options contradict each other.
 */
export async function makeServerContext(
  options: ServeOptions,
): Promise<ServerContext> {
  const handshakeTimeoutMs = options.handshakeTimeoutMs ??
    DEFAULT_HANDSHAKE_TIMEOUT_MS;
  if (!(handshakeTimeoutMs > 0) || !Number.isFinite(handshakeTimeoutMs)) {
    throw new RangeError(
      `handshakeTimeoutMs must be a positive number: ${handshakeTimeoutMs}`,
    );
  }
  if (options.token !== undefined && options.token === "") {
    throw new TypeError("token must not be empty");
  }
  if (options.allowDelete && !options.allowUpload) {
    throw new TypeError("allowDelete needs allowUpload");
  }
  if ((options.cert === undefined) !== (options.key === undefined)) {
    throw new TypeError("cert and key must be given together");
  }
  const proxyProtocol = options.proxyProtocol ?? false;
  if (proxyProtocol && options.cert !== undefined) {
    throw new TypeError(
      "proxyProtocol cannot be combined with TLS: terminate TLS at the load balancer, or pass it through without the PROXY header",
    );
  }
  const auth = options.token === undefined ? undefined : {
    token: options.token,
    throttle: new AuthThrottle({
      baseDelayMs: options.authFailureDelayMs ?? DEFAULT_AUTH_FAILURE_DELAY_MS,
    }),
  };
  const limits = resolveLimits(options);
  const realRoot = await resolveRoot(options.root ?? ".");
  return {
    realRoot,
    limits,
    allowUpload: options.allowUpload ?? false,
    allowDelete: options.allowDelete ?? false,
    classic: options.classic ?? true,
    handshakeTimeoutMs,
    proxyProtocol,
    onLog: options.onLog,
    auth,
    hashCache: makeHashCache(options.hashCacheEntries),
    lease: resolveLease(options.uploadLeaseTimeoutMs),
    uploadParts: new UploadParts(),
    keptParts: new KeptParts(limits.maxPartBytes),
    bufferPool: new BulkBufferPool(),
  };
}

function resolveLease(
  timeoutMs: number = DEFAULT_LEASE_TIMEOUT_MS,
): { timeoutMs: number; maxWaitMs: number } {
  if (!(timeoutMs > 0) || !Number.isFinite(timeoutMs)) {
    throw new RangeError(
      `uploadLeaseTimeoutMs must be a positive number: ${timeoutMs}`,
    );
  }
  return { timeoutMs, maxWaitMs: 3 * timeoutMs };
}

function makeHashCache(entries: number | undefined): HashCache | undefined {
  entries ??= DEFAULT_HASH_CACHE_ENTRIES;
  if (!Number.isInteger(entries) || entries < 0) {
    throw new RangeError(
      `hashCacheEntries must be a non-negative integer: ${entries}`,
    );
  }
  return entries === 0 ? undefined : new HashCache(entries);
}

async function resolveRoot(root: string): Promise<string> {
  let realRoot: string;
  try {
    realRoot = await Deno.realPath(root);
  } catch (error) {
    if (
      error instanceof Deno.errors.NotFound ||
      error instanceof Deno.errors.NotADirectory
    ) {
      throw new FerryError("NOT_FOUND", `Root folder not found: ${root}`, {
        cause: error,
      });
    }
    throw error;
  }
  if (!(await Deno.stat(realRoot)).isDirectory) {
    throw new FerryError("NOT_FOUND", `Root is not a folder: ${root}`);
  }
  return realRoot;
}
