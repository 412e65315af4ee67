/**
 * The server side of the classic protocol: what the lab's
 * `classic_server.py` does, without its races.
 *
 * A classic client connects and sends a bare file name (no length, no
 * terminator). Like the classic server's single `recv(1024)`, the request is
 * the bytes of the first read, decoded as UTF-8. The name goes through the
 * same root jail as ferry paths (including the check of the opened file);
 * an escape, a folder, a missing file, an upload temporary
 * (`.ferry-<hex>.part`) or invalid UTF-8 all get `NOT_EXISTS` and the
 * connection closes. Otherwise:
 *
 * 1. the server sends `EXISTS`,
 * 2. waits {@linkcode CLASSIC_SIZE_GAP_MS},
 * 3. sends the size as ASCII decimal digits,
 * 4. waits (at most the handshake timeout) for the 5 bytes `READY`;
 *    anything else closes the connection,
 * 5. sends exactly `size` raw bytes and closes.
 *
 * **Why the gap.** The unmodified classic client reads `EXISTS` and the size
 * with two separate `recv(1024)` calls and compares the first to `'EXISTS'`
 * exactly, so both must never sit in its socket buffer together (the lab
 * measured 7 failures in 8 runs when they do). It is already blocked in its
 * first `recv` when `EXISTS` arrives, so a gap far above its wake-up latency
 * (microseconds to a few milliseconds) makes the split reliable on loopback.
 * Nagle's algorithm is off on the connection (`setNoDelay(true)`) so each of
 * the two sends leaves at once instead of being held back and merged. A
 * client far away may still see both in one read; the protocol has no way to
 * prevent that, which is why ferry's own protocol frames every message.
 *
 * @module
 */

import type { BulkBuffers } from "../_common/copy.ts";
import { copyHashed } from "../_common/copy.ts";
import { openInside, resolveExisting } from "./path_jail.ts";
import type { HostFile } from "./host_file.ts";
import { refuseTempName } from "./temp.ts";
import { FerryError, type FerryErrorCode } from "../errors.ts";
import { delay } from "../_common/delay.ts";
import { type FrameReader, writeAll } from "../protocol.ts";

/**
 * Pause between `EXISTS` and the size, in milliseconds, so that the classic
 * client reads them in two separate `recv` calls.
 *
 * @example Check the gap
 * ```ts
 * import assert from "node:assert/strict";
 * import { CLASSIC_SIZE_GAP_MS } from "./classic.ts";
 * assert(CLASSIC_SIZE_GAP_MS === 100);
 * ```
 */
export const CLASSIC_SIZE_GAP_MS = 100;

/** One request's outcome, as the server logs it. */
export interface ClassicLogRecord {
  /** Always `"GET"`: the one classic request. */
  request: "GET";
  /** The requested name (lossily decoded when it is not UTF-8). */
  path: string;
  /** File bytes sent. */
  bytes: number;
  /** `"ok"` or an error code. */
  result: "ok" | FerryErrorCode;
}

/**
 * What the classic handler needs from a connection.
 *
 * @example A minimal session shape
 * ```ts ignore
 * import type { ClassicSession } from "./classic.ts";
 * declare const session: ClassicSession;
 * session.close();
 * ```
 */
export interface ClassicSession {
  /** The connection (Nagle already off). */
  readonly conn: Deno.Conn;
  /** The reader that peeked the first bytes; they are still buffered. */
  readonly reader: FrameReader;
  /** Aborted when the connection is closed (shutdown or timeout). */
  readonly signal: AbortSignal;
  /** True once a deadline closed the connection. */
  readonly timedOut: boolean;
  /** The connection's bulk buffers, made on first use. */
  bulkBuffers(): BulkBuffers;
  /** Closes the connection after `ms` unless the returned function runs first. */
  deadline(ms: number): () => void;
  /** Closes the connection (idempotent). */
  close(): void;
}

/**
 * Settings for {@linkcode serveClassic}.
 *
 * @example Settings
 * ```ts ignore
 * import type { ClassicOptions } from "./classic.ts";
 * const options: ClassicOptions = {
 *   realRoot: await Deno.realPath("."), handshakeTimeoutMs: 10_000, log: console.log,
 * };
 * ```
 */
export interface ClassicOptions {
  /** The served folder, resolved with `Deno.realPath`. */
  realRoot: string;
  /** Longest wait for `READY`, in milliseconds. */
  handshakeTimeoutMs: number;
  /** Called once when the request ends, however it ends. */
  log(record: ClassicLogRecord): void;
}

const EXISTS = new TextEncoder().encode("EXISTS");
const NOT_EXISTS = new TextEncoder().encode("NOT_EXISTS");
const READY = new TextEncoder().encode("READY");
const strictDecoder = new TextDecoder("utf-8", { fatal: true });
const lossyDecoder = new TextDecoder("utf-8");

/**
 * Answers one classic request on a connection whose first bytes are
 * buffered in `session.reader`; returns when the request is done (the caller
 * closes the connection).
 *
 * @param session The connection.
 * @param options The root, the timeout and the log sink.
 * @returns A promise that settles when the request is over; it never
 * rejects.
 *
 * @example Hand a connection over
 * ```ts ignore
 * import { serveClassic } from "./classic.ts";
 * await serveClassic(session, { realRoot, handshakeTimeoutMs: 10_000, log() {} });
 * ```
 */
export async function serveClassic(
  session: ClassicSession,
  options: ClassicOptions,
): Promise<void> {
  const record: ClassicLogRecord = {
    request: "GET",
    path: "",
    bytes: 0,
    result: "ok",
  };
  let file: HostFile | undefined;
  try {
    const request = new Uint8Array(session.reader.buffered);
    await session.reader.read(request);
    record.path = lossyDecoder.decode(request);
    let name: string;
    try {
      name = strictDecoder.decode(request);
    } catch {
      record.result = "BAD_REQUEST";
      await writeAll(session.conn, NOT_EXISTS);
      return;
    }
    let size: number;
    try {
      const found = await resolveExisting(options.realRoot, name);
      // Upload temporaries are hidden from classic clients too.
      refuseTempName(found.segments, name);
      if (!found.info.isFile) {
        throw new FerryError("FORBIDDEN", "Not a file");
      }
      // Proven inside the root once open, as for a ferry GET.
      file = await openInside(options.realRoot, found.hostPath, name);
      const info = await file.stat();
      if (!info.isFile) throw new FerryError("FORBIDDEN", "Not a file");
      size = info.size;
    } catch (error) {
      record.result = error instanceof FerryError ? error.code : "INTERNAL";
      await writeAll(session.conn, NOT_EXISTS);
      return;
    }
    await writeAll(session.conn, EXISTS);
    await delay(CLASSIC_SIZE_GAP_MS, session.signal);
    await writeAll(session.conn, new TextEncoder().encode(String(size)));
    const stopDeadline = session.deadline(options.handshakeTimeoutMs);
    let ready: boolean;
    try {
      ready = await readReady(session.reader);
    } finally {
      stopDeadline();
    }
    if (!ready) {
      record.result = "BAD_REQUEST";
      return;
    }
    record.bytes = await copyHashed(
      file,
      session.conn,
      size,
      undefined,
      session.bulkBuffers(),
      (done) => record.bytes = done,
    );
    if (record.bytes < size) record.result = "CHANGED";
  } catch (error) {
    record.result = session.timedOut
      ? "TIMEOUT"
      : error instanceof FerryError
      ? error.code
      : "CONNECTION";
  } finally {
    file?.close();
    if (session.timedOut && record.result === "BAD_REQUEST") {
      record.result = "TIMEOUT";
    }
    options.log(record);
  }
}

/** Reads 5 bytes and says whether they are `READY`; false at end of stream. */
async function readReady(reader: FrameReader): Promise<boolean> {
  const got = new Uint8Array(READY.length);
  let have = 0;
  while (have < got.length) {
    const n = await reader.read(got.subarray(have));
    if (n === null) return false;
    for (let i = have; i < have + n; i++) {
      if (got[i] !== READY[i]) return false;
    }
    have += n;
  }
  return true;
}
