/**
 * Test helper: a TCP proxy that cuts each connection after forwarding a
 * given number of bytes in one direction, and counts what it forwarded.
 *
 * A cut is clean for the receiving side: every byte forwarded before it
 * arrives, followed by the end of the stream (a FIN, not a reset), so a
 * resumed transfer can be checked to re-send nothing.
 *
 * @module
 */

import { xorshift32 } from "./util.ts";

/** A running cutting proxy. */
export interface CutProxy {
  /** The proxy's port. */
  readonly port: number;
  /** Bytes forwarded in the cut direction, over all connections. */
  readonly forwarded: number;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Stops accepting, closes every connection and waits for the pumps. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Deterministic pseudo-random integers in `[min, max]` (xorshift32).
 *
 * @param seed Any non-zero integer.
 * @param min Smallest value.
 * @param max Largest value.
 * @returns A function giving the next value.
 */
export function seededRange(
  seed: number,
  min: number,
  max: number,
): () => number {
  const next = xorshift32(seed);
  return () => min + (next() % (max - min + 1));
}

/**
 * Starts a proxy to `127.0.0.1:targetPort`. Each connection forwards at
 * most `limit()` bytes in `direction` (`Infinity`: no cut), then ends that
 * direction: towards the client, the server side is closed and the client
 * gets the end of the stream; towards the server, the server gets the end
 * of the stream and the client is closed once the server has closed.
 *
 * @param targetPort The server's port.
 * @param direction Which direction is counted and cut.
 * @param limit Called once per connection for its cut point.
 * @returns The proxy.
 */
export function startCutProxy(
  targetPort: number,
  direction: "toClient" | "toServer",
  limit: () => number,
): CutProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const sessions: Promise<void>[] = [];
  const closers = new Set<() => void>();
  let forwarded = 0;
  let connections = 0;

  async function session(client: Deno.TcpConn): Promise<void> {
    let server: Deno.TcpConn;
    try {
      server = await Deno.connect({ hostname: "127.0.0.1", port: targetPort });
    } catch {
      client.close();
      return;
    }
    const cutAt = limit();
    let count = 0;
    let cut = false;
    let closed = false;
    function closeAll(): void {
      if (closed) return;
      closed = true;
      closers.delete(closeAll);
      for (const conn of [client, server]) {
        try {
          conn.close();
        } catch {
          // Already closed.
        }
      }
    }
    closers.add(closeAll);
    async function pump(
      from: Deno.TcpConn,
      to: Deno.TcpConn,
      counted: boolean,
    ): Promise<void> {
      const buffer = new Uint8Array(64 * 1024);
      try {
        while (true) {
          const n = await from.read(buffer);
          if (n === null) break;
          if (cut) continue; // after a cut, the rest is dropped
          const take = counted ? Math.min(n, cutAt - count) : n;
          try {
            let at = 0;
            while (at < take) at += await to.write(buffer.subarray(at, take));
          } catch (error) {
            if (cut) continue; // the other side was cut meanwhile: drop
            throw error;
          }
          if (!counted) continue;
          count += take;
          forwarded += take;
          if (count >= cutAt) {
            cut = true;
            if (direction === "toClient") {
              server.close();
              await client.closeWrite();
              return; // the client closes when it has read everything
            }
            await server.closeWrite();
          }
        }
      } catch {
        // A side closed or reset: this direction ends.
      }
    }
    const toServer = pump(client, server, direction === "toServer")
      .then(closeAll);
    const toClient = pump(server, client, direction === "toClient")
      .then(() => {
        if (!(cut && direction === "toClient")) closeAll();
      });
    await Promise.all([toServer, toClient]);
    closeAll();
  }

  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        connections++;
        sessions.push(session(conn));
      }
    } catch {
      // Listener closed.
    }
  })();

  return {
    port: listener.addr.port,
    get forwarded() {
      return forwarded;
    },
    get connections() {
      return connections;
    },
    async [Symbol.asyncDispose](): Promise<void> {
      listener.close();
      await accepting;
      for (const close of [...closers]) close();
      await Promise.all(sessions);
    },
  };
}
