/**
 * Starts the HTTP face of a server with `Deno.serve` (HTTP/1.1, and HTTPS
 * with a certificate): the handler of `_server/http/handler.ts`, a sweep
 * that cuts bodies idle for longer than `idleTimeoutMs`, and the graceful
 * stop: new requests get `503`, requests in progress get `drainMs` to
 * finish, then every connection is closed.
 *
 * The stop does not use `HttpServer.shutdown()`: it waits for every
 * response to be written, and a client that stopped reading keeps a
 * write pending for ever. Aborting the `signal` given to `Deno.serve`
 * closes all connections at once, so the face aborts it as soon as no
 * request is in progress, or at the drain deadline.
 *
 * @module
 */

import type { ServerContext } from "../context.ts";
import { FerryError } from "../../errors.ts";
import { handleHttp, type HttpFaceState } from "./handler.ts";
import { Transfers } from "./transfers.ts";

/** Where and how the HTTP face listens. */
export interface HttpListenOptions {
  hostname: string;
  port: number;
  cert?: string;
  key?: string;
  /** Aborting it stops the face. */
  signal: AbortSignal;
}

/** A running HTTP face. */
export interface HttpFace {
  /** The address it listens on. */
  readonly addr: Deno.NetAddr;
  /** Settles when it has stopped and every body has ended. */
  readonly finished: Promise<void>;
}

/**
 * Starts listening.
 *
 * @param context The server's settings (shared with the ferry face).
 * @param options Address, TLS, stop signal.
 * @returns The running face.
 * @throws {Deno.errors.AddrInUse} If the port is taken (and other listen
 * errors as `Deno.serve` throws them).
 */
export function startHttpFace(
  context: ServerContext,
  options: HttpListenOptions,
): HttpFace {
  const stop = new AbortController();
  const close = new AbortController();
  const face: HttpFaceState = {
    transfers: new Transfers(),
    signal: stop.signal,
    active: 0,
    stopping: false,
    onRequestEnd(): void {
      if (face.stopping && face.active === 0) close.abort();
    },
  };
  const tls = options.cert !== undefined && options.key !== undefined
    ? { cert: options.cert, key: options.key }
    : {};
  const server = Deno.serve({
    hostname: options.hostname,
    port: options.port,
    signal: close.signal,
    ...tls,
    onListen(): void {
      // The caller prints where it listens.
    },
    onError(): Response {
      return new Response("Internal server error\n", { status: 500 });
    },
    handler: (request, info) =>
      handleHttp(request, info.remoteAddr as Deno.NetAddr, context, face),
  });
  const { limits } = context;
  const sweeper = setInterval(() => {
    face.transfers.sweep(
      performance.now(),
      limits.idleTimeoutMs,
      () => new FerryError("TIMEOUT", "Client idle for too long"),
    );
  }, Math.max(10, Math.min(1000, limits.idleTimeoutMs / 4)));
  let drainTimer: ReturnType<typeof setTimeout> | undefined;
  const onStop = () => {
    face.stopping = true;
    stop.abort();
    const cut = () => {
      face.transfers.cutAll(new FerryError("CONNECTION", "Server stopped"));
      close.abort();
    };
    if (limits.drainMs === 0 || face.active === 0) cut();
    else drainTimer = setTimeout(cut, limits.drainMs);
  };
  if (options.signal.aborted) onStop();
  else options.signal.addEventListener("abort", onStop, { once: true });
  const finished = server.finished.finally(() => {
    options.signal.removeEventListener("abort", onStop);
    clearInterval(sweeper);
    clearTimeout(drainTimer);
  });
  return { addr: server.addr, finished };
}
