/**
 * Opening a connection with readable errors ({@linkcode dial}) and a
 * deadline on one phase of it ({@linkcode guardConn}), shared by the ferry
 * client, its TLS dialer and the classic client.
 *
 * @module
 */

import { DEFAULT_HOSTNAME, DEFAULT_PORT } from "../_common/defaults.ts";
import { formatAddress, messageOf } from "../_common/text.ts";
import { FerryError } from "../errors.ts";
import { startQuietTimer } from "../_common/quiet_timer.ts";
import type { ConnectOptions } from "./types.ts";

/**
 * Opens a TCP connection with Nagle's algorithm off.
 *
 * @param options Where to connect, and a signal.
 * @returns The connection.
 * @throws {FerryError} `CONNECTION` if the server cannot be reached; the
 * signal's reason if it is aborted.
 */
export async function dial(options: ConnectOptions): Promise<Deno.TcpConn> {
  const hostname = options.hostname ?? DEFAULT_HOSTNAME;
  const port = options.port ?? DEFAULT_PORT;
  options.signal?.throwIfAborted();
  const address = formatAddress({ hostname, port });
  let conn: Deno.TcpConn;
  try {
    conn = await Deno.connect({ hostname, port, transport: "tcp" });
  } catch (error) {
    throw dialError(error, address, { tls: false });
  }
  if (options.signal?.aborted) {
    conn.close();
    options.signal.throwIfAborted();
  }
  conn.setNoDelay(true);
  return conn;
}

/**
 * What a failed `Deno.connect` or `Deno.connectTls` becomes: `CONNECTION`
 * with a one-line message (`Connection refused: HOST:PORT`); a missing
 * permission, and for plain TCP a bad host name, is passed on as it is.
 *
 * @param error What the connect threw.
 * @param address The server, `host:port`.
 * @param options `tls`: the connection was to be TLS.
 * @returns The error to throw.
 */
export function dialError(
  error: unknown,
  address: string,
  options: { tls: boolean },
): unknown {
  if (error instanceof Deno.errors.ConnectionRefused) {
    return new FerryError("CONNECTION", `Connection refused: ${address}`, {
      cause: error,
    });
  }
  if (
    error instanceof Deno.errors.NotCapable ||
    error instanceof Deno.errors.PermissionDenied ||
    (!options.tls && error instanceof TypeError)
  ) {
    return error;
  }
  const how = options.tls ? " with TLS" : "";
  return new FerryError(
    "CONNECTION",
    `Cannot connect to ${address}${how}: ${messageOf(error).split("\n")[0]}`,
    { cause: error },
  );
}

/** A deadline on one phase of a connection, from {@linkcode guardConn}. */
export interface ConnGuard {
  /** Whether the deadline passed (and closed the connection). */
  readonly timedOut: boolean;
  /** Closes the connection (an already closed one is fine). */
  close(): void;
  /** Stops the timer and the signal listener. */
  clear(): void;
}

/**
 * Closes `conn` when `timeoutMs` pass or `signal` aborts, until cleared:
 * a pending read or write on it then fails at once.
 *
 * @param conn The connection.
 * @param timeoutMs The deadline, in milliseconds.
 * @param signal Aborting it closes the connection too.
 * @returns The guard; call `clear()` when the phase is over.
 */
export function guardConn(
  conn: { close(): void },
  timeoutMs: number,
  signal: AbortSignal | undefined,
): ConnGuard {
  let timedOut = false;
  function close(): void {
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }
  // Pending I/O keeps the process alive while the guard matters.
  const cancel = startQuietTimer(timeoutMs, () => {
    timedOut = true;
    close();
  });
  signal?.addEventListener("abort", close, { once: true });
  return {
    get timedOut(): boolean {
      return timedOut;
    },
    close,
    clear(): void {
      cancel();
      signal?.removeEventListener("abort", close);
    },
  };
}
