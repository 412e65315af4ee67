/**
 * The running server behind {@linkcode ./server.ts serve}: accepts
 * connections, starts a session for each (`_server/session.ts`), refuses
 * those over the limit with `BUSY`, closes idle ones, and stops gracefully.
 *
 * @module
 */

import { delay } from "../_common/delay.ts";
import { BusyRefusals } from "./busy.ts";
import { formatAddress } from "../_common/text.ts";
import { emit, type ServerContext, Session } from "./context.ts";
import { handleConnection } from "./session.ts";
import { type ClientAddr, ProxyAdmissions } from "./proxy_accept.ts";
import { addressKey } from "./address_key.ts";
import type { FerryServer } from "./types.ts";

/**
 * How long past the drain deadline the server still waits for handlers
 * before `finished` settles anyway: one stuck in the kernel (an `open()`
 * or a write no closed connection can interrupt) is left behind, and the
 * command line exits over it.
 */
export const STUCK_MARGIN_MS = 500;

/**
 * Whether `a` is a better eviction candidate than `b`: one that sent no
 * request since its handshake beats one that did; then the longer idle.
 */
function idler(a: Session, b: Session): boolean {
  const aFresh = a.requests === 0;
  const bFresh = b.requests === 0;
  if (aFresh !== bFresh) return aFresh;
  return a.idleSince < b.idleSince;
}

/** Serves one connection until it ends. */
export type ConnectionHandler = (
  session: Session,
  context: ServerContext,
) => Promise<void>;

/**
 * The accept loop of {@linkcode ./server.ts serve}: one task per connection, the
 * `maxConnections` limit, the idle sweep and the graceful stop.
 */
export class Server implements FerryServer {
  readonly addr: Deno.NetAddr;
  readonly root: string;
  readonly finished: Promise<void>;
  #listener: Deno.Listener;
  #stop = new AbortController();
  #sessions = new Set<Session>();
  #handlers = new Set<Promise<void>>();
  #refusals = new BusyRefusals();
  /** Connections still sending their PROXY header (`proxyProtocol`). */
  #admissions = new ProxyAdmissions();
  #handle: ConnectionHandler;
  /** Sessions open per address key (`_server/address_key.ts`). */
  #perAddress = new Map<string, number>();

  /**
   * Starts accepting.
   *
   * @param listener Where connections come from.
   * @param context The server-wide settings.
   * @param options `signal` stops the server when aborted; `handle` serves
   * one connection (`handleConnection` unless a test gives another).
   */
  constructor(
    listener: Deno.Listener,
    context: ServerContext,
    options: { signal?: AbortSignal; handle?: ConnectionHandler } = {},
  ) {
    const signal = options.signal;
    this.#handle = options.handle ?? handleConnection;
    this.#listener = listener;
    this.addr = listener.addr as Deno.NetAddr;
    this.root = context.realRoot;
    const onAbort = () => this.#stop.abort();
    if (signal?.aborted) this.#stop.abort();
    else signal?.addEventListener("abort", onAbort, { once: true });
    this.finished = this.#run(context).finally(() =>
      signal?.removeEventListener("abort", onAbort)
    );
  }

  shutdown(): Promise<void> {
    this.#stop.abort();
    return this.finished;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown();
  }

  async #run(context: ServerContext): Promise<void> {
    const stop = this.#stop.signal;
    const { limits } = context;
    let listening = true;
    let drainTimer: ReturnType<typeof setTimeout> | undefined;
    let giveUpTimer: ReturnType<typeof setTimeout> | undefined;
    // Settles STUCK_MARGIN_MS after the drain deadline: a handler stuck in
    // the kernel (a closed connection cannot wake it) is not waited for.
    let giveUp!: () => void;
    const gaveUp = new Promise<void>((resolve) => giveUp = resolve);
    const closeAll = () => {
      for (const session of this.#sessions) session.close();
    };
    const onStop = () => {
      if (listening) {
        listening = false;
        this.#listener.close();
      }
      // Graceful: connections between requests close now, those in a
      // request right after it, and all of them at the drain deadline.
      this.#refusals.closeAll();
      this.#admissions.closeAll();
      for (const session of this.#sessions) session.stop();
      if (limits.drainMs === 0) closeAll();
      else drainTimer = setTimeout(closeAll, limits.drainMs);
      giveUpTimer = setTimeout(giveUp, limits.drainMs + STUCK_MARGIN_MS);
    };
    // One sweep for all connections closes those whose peer has kept a
    // read or a write waiting longer than the idle timeout.
    const sweeper = setInterval(() => {
      const now = performance.now();
      for (const session of this.#sessions) {
        if (session.activity.stalled(now, limits.idleTimeoutMs)) {
          session.expire();
        }
      }
    }, Math.max(10, Math.min(1000, limits.idleTimeoutMs / 4)));
    if (stop.aborted) onStop();
    else stop.addEventListener("abort", onStop, { once: true });
    try {
      while (!stop.aborted) {
        let conn: Deno.Conn;
        try {
          conn = await this.#listener.accept();
        } catch {
          if (stop.aborted) break;
          // Accept errors (too many open files, a peer that reset before
          // accept) are per connection: pause briefly and keep serving.
          await delay(50, stop);
          continue;
        }
        if (stop.aborted) {
          conn.close(); // accepted in the same turn as the stop
          break;
        }
        if (context.proxyProtocol) {
          this.#admissions.admit(conn, context, (admitted, client) => {
            if (stop.aborted) admitted.close();
            else this.#start(admitted, context, client);
          });
        } else {
          this.#start(conn, context);
        }
      }
    } finally {
      stop.removeEventListener("abort", onStop);
      if (listening) {
        listening = false;
        this.#listener.close();
      }
      const handlers = this.#handlers;
      const refusals = this.#refusals;
      await Promise.race([
        (async () => {
          await this.#admissions.settled();
          while (handlers.size > 0) await Promise.allSettled([...handlers]);
          await refusals.settled();
        })(),
        gaveUp,
      ]);
      clearInterval(sweeper);
      clearTimeout(drainTimer);
      clearTimeout(giveUpTimer);
    }
  }

  /**
   * Closes the session (of address `key`, or any) idle longest: first one
   * that sent no request since its handshake, else the one idle longest
   * between requests. Returns true when every candidate is in a request
   * (nothing closed: the newcomer gets BUSY).
   */
  #evictIdle(context: ServerContext, key: string | undefined): boolean {
    let victim: Session | undefined;
    for (const session of this.#sessions) {
      if (session.busy) continue;
      if (key !== undefined && session.addressKey !== key) continue;
      if (victim === undefined || idler(session, victim)) {
        victim = session;
      }
    }
    if (victim === undefined) return true;
    // No longer counted: its handler ends once the close reaches it.
    this.#sessions.delete(victim);
    victim.close();
    emit(context, {
      protocol: "ferry",
      request: "HELLO",
      path: "",
      bytes: 0,
      result: "EVICTED",
      peer: victim.peer,
      time: new Date(),
      started: performance.now(),
    });
    return false;
  }

  /**
   * Counts and serves a connection from `client` (the socket's peer, or
   * the client a PROXY header named).
   */
  #start(
    conn: Deno.Conn,
    context: ServerContext,
    client?: ClientAddr,
  ): void {
    const { limits } = context;
    const key = addressKey(
      (client ?? conn.remoteAddr as Deno.NetAddr).hostname,
    );
    const fromKey = this.#perAddress.get(key) ?? 0;
    // A full server, or a full address, makes room by closing its
    // longest-idle session; only when all are in a request is it BUSY.
    const full = fromKey >= limits.maxConnectionsPerAddress
      ? this.#evictIdle(context, key)
      : this.#sessions.size >= limits.maxConnections
      ? this.#evictIdle(context, undefined)
      : false;
    if (full) {
      this.#refusals.refuse(conn);
      emit(context, {
        protocol: "ferry",
        request: "HELLO",
        path: "",
        bytes: 0,
        result: "BUSY",
        peer: formatAddress(client ?? conn.remoteAddr as Deno.NetAddr),
        time: new Date(),
        started: performance.now(),
      });
      return;
    }
    this.#perAddress.set(key, (this.#perAddress.get(key) ?? 0) + 1);
    const session = new Session(
      conn,
      context.bufferPool,
      context.limits.maxFrameBytes,
    );
    if (client !== undefined) session.setClient(client);
    this.#sessions.add(session);
    const handler: Promise<void> = this.#handle(session, context)
      .catch(() => {
        // A handler reports its own errors; nothing may escape to others.
      })
      .finally(() => {
        session.close();
        this.#sessions.delete(session);
        const left = (this.#perAddress.get(key) ?? 1) - 1;
        if (left > 0) this.#perAddress.set(key, left);
        else this.#perAddress.delete(key);
        this.#handlers.delete(handler);
      });
    this.#handlers.add(handler);
  }
}
