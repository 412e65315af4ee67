/**
 * Zero-copy sending: {@linkcode ZeroCopySocket} moves a served file's bytes
 * into a plain TCP connection with `sendfile(2)`, page-cache pages handed
 * to the socket by reference instead of being read into a buffer and
 * written out again. On this project's machine that halves the server's
 * CPU time for a large `GET` of a file whose digest is cached (1 GiB from
 * tmpfs: 0.6-0.9 s of CPU with read and write, 0.31-0.42 s with
 * `sendfile`); the client's receive costs it about 0.1 s more (the pages
 * it copies from are no longer in the CPU's cache), and the wall time
 * falls (1.22 against 1.49 s, medians of 5 at load 5). Without a cached
 * digest the server reads the bytes to hash them anyway; sending the pages
 * just read with `sendfile` measured no better (1.05 against 0.90 s of
 * CPU), so that path keeps the read/write loop.
 *
 * Deno does not expose a connection's descriptor, so it is found once per
 * connection: among the process's open descriptors, the one socket whose
 * local and peer addresses (`getsockname`, `getpeername`) are exactly the
 * connection's. A TCP connection is the only socket with its address pair,
 * so the match cannot be another connection's. The descriptor is then
 * duplicated, the duplicate checked again, and only the duplicate is used:
 * it stays valid until this class closes it, whatever Deno does with its
 * own descriptor meanwhile, so a number reused by a later `open` can never
 * receive file bytes. Deno's socket is non-blocking: when the socket's
 * buffer is full, `poll` waits on Deno's blocking pool (never on the
 * event loop) for room, in bounded slices that let a closed session stop
 * the send.
 *
 * Used only where `--allow-ffi` is granted on Linux (x86-64 or arm64) and
 * for plain TCP (TLS encrypts in user space); everything else keeps the
 * read/write loop of `_common/copy.ts`.
 *
 * @module
 */

import { errnoAt, openLibrary } from "../_common/ffi.ts";
import { EAGAIN, EINTR, linuxLayout } from "../_common/linux_abi.ts";
import type { IoActivity } from "./idle.ts";

const SYMBOLS = {
  sendfile: {
    parameters: ["i32", "i32", "buffer", "usize"],
    result: "isize",
  },
  // Waiting for room: on the blocking pool. Scanning descriptors: at once.
  poll: {
    parameters: ["buffer", "u64", "i32"],
    result: "i32",
    nonblocking: true,
  },
  pollNow: {
    name: "poll",
    parameters: ["buffer", "u64", "i32"],
    result: "i32",
  },
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  getpeername: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  inet_pton: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

type LibcSockets = Deno.DynamicLibrary<typeof SYMBOLS>;

const AF_INET = 2;
const AF_INET6 = 10;
const F_DUPFD_CLOEXEC = 1030;
const POLLOUT = 0x4;
const POLLNVAL = 0x20;
/** Descriptors looked at per `poll` when scanning for the connection's. */
const SCAN_BATCH = 256;
/** The scan stops at this descriptor number... */
const SCAN_LIMIT = 1 << 16;
/** ...or after this many closed descriptors in a row. */
const SCAN_GAP = 1024;
/** How long one wait for room in the socket lasts before a new look. */
const WAIT_SLICE_MS = 200;
/** The most one `sendfile` call is asked to move (it moves what fits). */
const CALL_BYTES = 1 << 30;

let loaded: LibcSockets | null | undefined;

function libcSockets(): LibcSockets | undefined {
  if (loaded !== undefined) return loaded ?? undefined;
  loaded = null;
  if (linuxLayout() === undefined) return undefined;
  loaded = openLibrary(["libc.so.6"], SYMBOLS) ?? null;
  return loaded ?? undefined;
}

/** Where a {@linkcode ZeroCopySocket.sendFile} runs: its session's state. */
export interface SendContext {
  /** Aborted when the session closes (peer gone, idle, server stopped). */
  signal: AbortSignal;
  /** The session's I/O clock: a wait for room counts as a write. */
  activity: IoActivity;
  /** Called after each call that moved bytes, with the running total. */
  onProgress?: (done: number) => void;
}

/**
 * The duplicated descriptor of one plain TCP connection, for `sendfile`.
 *
 * @example Send a file over a connection, where allowed
 * ```ts
 * import assert from "node:assert/strict";
 * import { openSync, closeSync } from "node:fs";
 * import { ZeroCopySocket } from "./zero_copy.ts";
 * import { IoActivity } from "./idle.ts";
 *
 * const path = await Deno.makeTempFile({ prefix: "ferry_test_" });
 * await Deno.writeTextFile(path, "hello");
 * using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
 * const server = await listener.accept();
 * const socket = ZeroCopySocket.of(server);
 * const fd = openSync(path, "r");
 * try {
 *   if (socket) {
 *     const signal = new AbortController().signal;
 *     const sent = await socket.sendFile(fd, 0, 5, {
 *       signal,
 *       activity: new IoActivity(),
 *     });
 *     assert.equal(sent, 5);
 *     const bytes = new Uint8Array(5);
 *     let got = 0;
 *     while (got < 5) got += (await client.read(bytes.subarray(got)))!;
 *     assert.equal(new TextDecoder().decode(bytes), "hello");
 *   }
 * } finally {
 *   socket?.close();
 *   closeSync(fd);
 *   server.close();
 *   client.close();
 *   await Deno.remove(path);
 * }
 * ```
 */
export class ZeroCopySocket {
  #lib: LibcSockets;
  #fd: number;
  #closed = false;
  /** A wait for room on the blocking pool: the descriptor outlives it. */
  #waiting: Promise<number> | undefined;
  /** `sendfile`'s `off_t *offset`, which the kernel moves past what it sent. */
  #offset = new BigInt64Array(1);
  #offsetBytes = new Uint8Array(this.#offset.buffer);
  #pollFd = new Int32Array(2);

  private constructor(lib: LibcSockets, fd: number) {
    this.#lib = lib;
    this.#fd = fd;
  }

  /**
   * The connection's own socket, duplicated; `undefined` where `sendfile`
   * cannot be used (no `--allow-ffi`, not Linux, not plain TCP, or the
   * descriptor was not found).
   *
   * @param conn An accepted (or connected) plain TCP connection.
   * @returns The socket, which the caller closes.
   */
  static of(conn: Deno.Conn): ZeroCopySocket | undefined {
    if (conn.localAddr.transport !== "tcp") return undefined;
    if ("handshake" in conn) return undefined; // TLS
    const lib = libcSockets();
    if (lib === undefined) return undefined;
    const local = socketAddress(lib, conn.localAddr as Deno.NetAddr);
    const peer = socketAddress(lib, conn.remoteAddr as Deno.NetAddr);
    if (local === undefined || peer === undefined) return undefined;
    const fd = findSocket(lib, local, peer);
    return fd === undefined ? undefined : new ZeroCopySocket(lib, fd);
  }

  /**
   * Sends `count` bytes of the open file `fileFd` from `position` (its own
   * position is left alone), waiting for room in the socket as needed.
   *
   * @param fileFd A descriptor open for reading.
   * @param position Where in the file to start.
   * @param count How many bytes to send.
   * @param context The session's signal, I/O clock and progress callback.
   * @returns The bytes sent: `count`, or fewer if the file ended first.
   * @throws {Deno.errors.Interrupted} if the session closed meanwhile.
   * @throws {Deno.errors.ConnectionReset} if the peer went away.
   */
  async sendFile(
    fileFd: number,
    position: number,
    count: number,
    context: SendContext,
  ): Promise<number> {
    this.#offset[0] = BigInt(position);
    let done = 0;
    while (done < count) {
      if (this.#closed || context.signal.aborted) {
        throw new Deno.errors.Interrupted("Connection closed");
      }
      const want = Math.min(count - done, CALL_BYTES);
      const n = Number(
        this.#lib.symbols.sendfile(
          this.#fd,
          fileFd,
          this.#offsetBytes,
          BigInt(want),
        ),
      );
      if (n > 0) {
        done += n;
        context.onProgress?.(done);
        continue;
      }
      if (n === 0) return done; // the file ended early
      const errno = this.#errno();
      if (errno === EINTR) continue;
      if (errno !== EAGAIN) {
        throw new Deno.errors.ConnectionReset(
          `sendfile failed: errno ${errno}`,
        );
      }
      await this.#waitForRoom(context.activity);
    }
    return done;
  }

  /**
   * Closes the duplicate (at once, or when a wait in flight ends). Deno's
   * own descriptor of the connection is not touched.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const fd = this.#fd;
    const lib = this.#lib;
    if (this.#waiting === undefined) lib.symbols.close(fd);
    else this.#waiting.finally(() => lib.symbols.close(fd)).catch(() => {});
  }

  async #waitForRoom(activity: IoActivity): Promise<void> {
    const pollFd = this.#pollFd;
    pollFd[0] = this.#fd;
    pollFd[1] = POLLOUT; // events (low half), revents 0 (high half)
    activity.begin();
    try {
      this.#waiting = this.#lib.symbols.poll(pollFd, 1n, WAIT_SLICE_MS);
      await this.#waiting;
    } finally {
      this.#waiting = undefined;
      activity.end();
    }
  }

  #errno(): number {
    return errnoAt(this.#lib.symbols.__errno_location());
  }
}

/**
 * The `sockaddr` bytes that identify an address as the kernel reports it:
 * family, port, address (the IPv6 flow and scope fields are left out).
 */
interface SocketAddress {
  family: number;
  bytes: Uint8Array;
}

function socketAddress(
  lib: LibcSockets,
  addr: Deno.NetAddr,
): SocketAddress | undefined {
  const v6 = addr.hostname.includes(":");
  const family = v6 ? AF_INET6 : AF_INET;
  const raw = new Uint8Array(16);
  const name = new TextEncoder().encode(`${addr.hostname}\0`);
  if (lib.symbols.inet_pton(family, name, raw) !== 1) return undefined;
  // sockaddr_in: family (2), port (2, big-endian), address (4).
  // sockaddr_in6: family (2), port (2), flow (4), address (16), scope (4).
  const bytes = new Uint8Array(v6 ? 24 : 8);
  new DataView(bytes.buffer).setUint16(0, family, true);
  new DataView(bytes.buffer).setUint16(2, addr.port, false);
  if (v6) bytes.set(raw, 8);
  else bytes.set(raw.subarray(0, 4), 4);
  return { family, bytes };
}

/** Finds, duplicates and checks again the socket of `local` and `peer`. */
function findSocket(
  lib: LibcSockets,
  local: SocketAddress,
  peer: SocketAddress,
): number | undefined {
  const polls = new Int32Array(SCAN_BATCH * 2);
  const name = new Uint8Array(128);
  const length = new Uint32Array(1);
  const matches = (fd: number): boolean =>
    addressIs(lib.symbols.getsockname, fd, local, name, length) &&
    addressIs(lib.symbols.getpeername, fd, peer, name, length);
  let gap = 0;
  for (let base = 0; base < SCAN_LIMIT && gap < SCAN_GAP; base += SCAN_BATCH) {
    for (let i = 0; i < SCAN_BATCH; i++) {
      polls[2 * i] = base + i;
      polls[2 * i + 1] = 0; // no events asked: only POLLNVAL and errors
    }
    lib.symbols.pollNow(polls, BigInt(SCAN_BATCH), 0);
    for (let i = 0; i < SCAN_BATCH; i++) {
      const revents = polls[2 * i + 1] >>> 16;
      if (revents & POLLNVAL) {
        gap++;
        continue;
      }
      gap = 0;
      const fd = base + i;
      if (!matches(fd)) continue;
      const copy = lib.symbols.fcntl(fd, F_DUPFD_CLOEXEC, 0);
      if (copy < 0) return undefined;
      // The number may have been closed and reused between the two calls:
      // the duplicate itself must be the connection.
      if (matches(copy)) return copy;
      lib.symbols.close(copy);
      return undefined;
    }
  }
  return undefined;
}

function addressIs(
  call: (fd: number, name: Uint8Array, length: Uint8Array) => number,
  fd: number,
  expected: SocketAddress,
  name: Uint8Array,
  length: Uint32Array,
): boolean {
  length[0] = name.length;
  if (call(fd, name, new Uint8Array(length.buffer)) !== 0) return false;
  const size = expected.bytes.length;
  if (length[0] < size) return false;
  if (name[0] !== expected.bytes[0] || name[1] !== expected.bytes[1]) {
    return false;
  }
  const from = expected.family === AF_INET6 ? 8 : 4;
  for (let i = 2; i < 4; i++) if (name[i] !== expected.bytes[i]) return false;
  for (let i = from; i < size; i++) {
    if (name[i] !== expected.bytes[i]) return false;
  }
  return true;
}
