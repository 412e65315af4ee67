/**
 * Admission of connections behind a load balancer (`proxyProtocol`): each
 * accepted connection first sends a PROXY protocol header
 * (`_server/proxy_header.ts`), read here before the connection is counted,
 * so that the accept loop accounts, logs and throttles it by the client's
 * address rather than the balancer's.
 *
 * Waiting connections are bounded in number (`maxConnections`) and in time
 * (`handshakeTimeoutMs`). One that sends no valid header is logged once
 * (`PROXY`) and closed, with nothing read past the bad header; one closed
 * before its first byte (a bare health check) is not logged.
 *
 * @module
 */

import { formatAddress } from "../_common/text.ts";
import type { FerryErrorCode } from "../errors.ts";
import { emit, type ServerContext } from "./context.ts";
import { type ProxyReadResult, readProxyHeader } from "./proxy_header.ts";

/** A client address: the balancer's view of who connected. */
export interface ClientAddr {
  hostname: string;
  port: number;
}

/** Connections waiting for their PROXY header. */
export class ProxyAdmissions {
  #pending = new Map<Deno.Conn, Promise<void>>();

  /** How many connections are waiting. */
  get size(): number {
    return this.#pending.size;
  }

  /**
   * Reads the header of `conn` (in the background) and then calls `start`
   * with the client's address; refuses the connection instead when too
   * many wait, or the header is missing, bad or late.
   *
   * @param conn A connection just accepted.
   * @param context The server's settings and log.
   * @param start Counts and serves the connection as coming from `client`.
   */
  admit(
    conn: Deno.Conn,
    context: ServerContext,
    start: (conn: Deno.Conn, client: ClientAddr) => void,
  ): void {
    const socket = conn.remoteAddr as Deno.NetAddr;
    if (this.#pending.size >= context.limits.maxConnections) {
      close(conn);
      log(context, { socket, result: "BUSY" });
      return;
    }
    const waiting = this.#read(conn, context)
      .then((client) => {
        if (client !== undefined) start(conn, client);
      })
      .finally(() => this.#pending.delete(conn));
    this.#pending.set(conn, waiting);
  }

  /** Closes every waiting connection (the server stops). */
  closeAll(): void {
    for (const conn of this.#pending.keys()) close(conn);
  }

  /** Settles once no connection is waiting. */
  async settled(): Promise<void> {
    while (this.#pending.size > 0) {
      await Promise.allSettled([...this.#pending.values()]);
    }
  }

  async #read(
    conn: Deno.Conn,
    context: ServerContext,
  ): Promise<ClientAddr | undefined> {
    const socket = conn.remoteAddr as Deno.NetAddr;
    const time = new Date();
    const started = performance.now();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      close(conn);
    }, context.handshakeTimeoutMs);
    let result: ProxyReadResult;
    try {
      result = await readProxyHeader(conn);
    } catch {
      result = { status: "ended", received: -1 }; // reset, or the deadline
    } finally {
      clearTimeout(timer);
    }
    if (result.status === "complete") {
      return result.header.source ??
        { hostname: socket.hostname, port: socket.port };
    }
    close(conn);
    if (result.status === "ended" && result.received === 0) return undefined;
    log(context, {
      socket,
      result: result.status === "invalid"
        ? "BAD_REQUEST"
        : timedOut
        ? "TIMEOUT"
        : "TRUNCATED",
      time,
      started,
    });
    return undefined;
  }
}

/** Logs a connection refused for its PROXY header (or over the limit). */
function log(
  context: ServerContext,
  refusal: {
    socket: Deno.NetAddr;
    result: FerryErrorCode;
    time?: Date;
    started?: number;
  },
): void {
  emit(context, {
    protocol: "ferry",
    request: "PROXY",
    path: "",
    bytes: 0,
    result: refusal.result,
    peer: formatAddress(refusal.socket),
    time: refusal.time ?? new Date(),
    started: refusal.started ?? performance.now(),
  });
}

function close(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Closed already.
  }
}
