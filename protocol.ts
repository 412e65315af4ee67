/**
 * The ferry wire protocol, version 2: message types, their byte layout, an
 * encoder, a total decoder and a buffered frame reader.
 *
 * This module makes no `Deno.*` call: Node and Bun programs can import it to
 * speak ferry. Its documentation is the specification; a compatible peer can
 * be written in any language from this text alone.
 *
 * ## Transport
 *
 * One TCP connection (optionally inside TLS) carries one session. All integers
 * are unsigned big-endian unless marked signed; `u8`, `u16`, `u32`, `u64` and
 * `i64` are 1, 2, 4, 8 and 8 bytes. Strings are UTF-8, prefixed by their byte
 * length: `str8` has a `u8` length, `str16` a `u16` length. A `u64` above
 * 2^53 - 1 is rejected as `BAD_REQUEST` (JavaScript numbers stay exact).
 *
 * ## Frames
 *
 * Every message is a frame:
 *
 * | bytes | field    | meaning                                            |
 * |-------|----------|----------------------------------------------------|
 * | 1     | `type`   | message type, see the table below                 |
 * | 4     | `length` | payload length in bytes, `u32`                     |
 * | n     | payload  | exactly `length` bytes, laid out per type          |
 *
 * A payload is at most {@linkcode MAX_FRAME_BYTES} (1 MiB). A receiver checks
 * the declared length against its maximum before it allocates or waits for
 * the payload and answers a larger one with `TOO_LARGE`. A payload must be
 * consumed exactly by its layout: trailing bytes are `BAD_REQUEST`, and so are
 * unknown types, invalid UTF-8 and out-of-range fields. Nothing depends on how
 * TCP splits or joins the bytes.
 *
 * Bulk file bytes are not framed: a `DATA` or `READY` frame states their
 * exact count and the raw bytes follow it directly, then a `HASH` frame.
 *
 * ## Message types
 *
 * | type   | name      | direction | payload                                                         |
 * |--------|-----------|-----------|-----------------------------------------------------------------|
 * | `0x00` | `HELLO`   | both      | magic `"FERRY"` (5 bytes), min `u16`, max `u16`, flags `u16`, nonce `u8` length + bytes (0..64) |
 * | `0x01` | `AUTH`    | c → s     | mac (32 bytes)                                                  |
 * | `0x02` | `OK`      | s → c     | empty                                                           |
 * | `0x03` | `ERROR`   | both      | code `str8` (`[A-Z_]`, 1..32), message `str16`                  |
 * | `0x04` | `DIGESTS` | both      | count `u8` (1..8), then per algorithm: name `str8` (`[a-z0-9-]`, 1..32) |
 * | `0x10` | `LIST`    | c → s     | flags `u8` (bit 0: recursive), path `str16`                     |
 * | `0x11` | `STAT`    | c → s     | path `str16`                                                    |
 * | `0x12` | `GET`     | c → s     | offset `u64`, path `str16`                                      |
 * | `0x13` | `PUT`     | c → s     | size `u64`, flags `u8`, mtime `i64`, path `str16`               |
 * | `0x14` | `MKDIR`   | c → s     | flags `u8` (bit 0: `mtime` is set), mtime `i64`, path `str16`   |
 * | `0x15` | `DELETE`  | c → s     | flags `u8` (bit 0: recursive), path `str16`                     |
 * | `0x16` | `SUM`     | c → s     | flags `u8` (bit 0: prefix), length `u64`, path `str16`          |
 * | `0x20` | `ENTRIES` | s → c     | count `u32`, then per entry: kind `u8`, size `u64`, mtime `i64`, name `str16` |
 * | `0x21` | `END`     | s → c     | count `u32` (entries sent in all)                               |
 * | `0x22` | `INFO`    | s → c     | one entry, laid out as in `ENTRIES`                             |
 * | `0x23` | `DATA`    | s → c     | size `u64`, offset `u64`, mtime `i64`                           |
 * | `0x24` | `READY`   | s → c     | offset `u64`                                                    |
 * | `0x25` | `HASH`    | both      | digest of the session's algorithm (1..64 bytes: 16 or 32 today) |
 *
 * Entry kinds: `1` file, `2` folder. Times (`mtime`) are signed milliseconds
 * since the Unix epoch. `PUT` flags: bit 0 overwrite, bit 1 resume, bit 2
 * `mtime` is set (otherwise it is 0 and ignored), bit 3 append (not
 * together with resume), bit 4 eager (not together with resume or append,
 * `size` at most {@linkcode MAX_EAGER_PUT_BYTES}). `HELLO` flags: bit 0
 * authentication required, bit 1 the server takes eager `PUT`s (both only
 * from a server). `SUM` without the prefix flag has `length` 0.
 *
 * ## Paths
 *
 * Paths on the wire are relative, `/`-separated UTF-8 of at most
 * {@linkcode MAX_PATH_BYTES} bytes. The empty string names the root folder.
 * A server refuses with `FORBIDDEN` a path with an empty, `.` or `..`
 * segment, a leading or trailing `/`, a backslash, a NUL or other control
 * byte, a drive letter or a Windows device name, and any path that resolves
 * (through symbolic links) outside the folder it serves. Servers map paths to
 * their own operating system; the wire never carries a host path.
 *
 * ## Digests
 *
 * Every transferred file is checked end to end with a digest of its whole
 * content. The algorithm is negotiated once per session (see the handshake)
 * and used for every `HASH` of the session, for the prefix a resumed
 * transfer re-hashes and for a server's cache of digests:
 *
 * | name       | bytes | what it is                                             |
 * |------------|-------|--------------------------------------------------------|
 * | `xxh3-128` | 16    | XXH3 128-bit, seed 0, canonical (big-endian) form; the default |
 * | `sha256`   | 32    | SHA-256 (FIPS 180-4)                                   |
 *
 * XXH3-128 is not cryptographic: it detects accidental corruption (a bad
 * disk, memory or network path, a bug) with a chance of a miss of about
 * 2^-128, but anyone who can change the bytes on the way can change the
 * `HASH` too, whichever algorithm is used. Protection against an active
 * attacker comes from TLS. `sha256` is there for users who compare files
 * with published SHA-256 sums.
 *
 * ## Session
 *
 * 1. **Handshake.** The client sends `HELLO` with the lowest and highest
 *    protocol versions it speaks (`min`, `max`, both 2 for this version),
 *    flags 0 and a fresh nonce (32 random bytes; may be empty), and right
 *    after it, without waiting, `DIGESTS` with the digest algorithms it
 *    accepts, most preferred first (1 to 8 names; unknown names are
 *    allowed and ignored). The `HELLO`'s first byte is `0x00`, which no
 *    classic request (a bare file name) can start with. The server picks the
 *    highest version both speak; if none is shared it answers
 *    `ERROR UNSUPPORTED_VERSION` and closes. Otherwise it reads the
 *    `DIGESTS` (anything else there is `BAD_REQUEST`) and picks the first
 *    algorithm in the client's list that it supports; if there is none it
 *    answers `ERROR UNSUPPORTED_VERSION` naming both lists and closes.
 *    Otherwise it answers `HELLO` with `min = max = ` that version, flags
 *    (bit 0: authentication required; bit 1: eager `PUT`s taken) and its
 *    own 32-byte nonce, followed
 *    by `DIGESTS` naming exactly the one algorithm chosen. A client that does
 *    not speak the server's chosen version, or did not offer the chosen
 *    algorithm, reports `UNSUPPORTED_VERSION` and closes.
 *
 *    **Compatibility.** Version 1 had no `DIGESTS` and always SHA-256. The
 *    `HELLO` layout is the same in both versions, so a version-1 server
 *    reads a version-2 client's `HELLO`, finds no common version and
 *    answers `ERROR UNSUPPORTED_VERSION` (it never reads the `DIGESTS`);
 *    a version-1 client offers only version 1 and gets the same answer
 *    from a version-2 server. Peers of different versions therefore never
 *    get as far as a transfer whose digest the other cannot check.
 * 2. **Authentication** (only when the server's flag bit 0 is set). The client
 *    sends `AUTH` with `HMAC-SHA256(secret, server nonce ‖ version as u16 ‖
 *    client HELLO frame ‖ server HELLO frame)`, where the secret is taken
 *    as UTF-8, the version is the one the server chose, and the frames are
 *    the exact bytes sent, headers included (every message has exactly one
 *    encoding, so a peer may re-encode a `HELLO` it decoded). The
 *    `DIGESTS` frames are not part of the mac: without TLS an attacker on
 *    the path can change every byte after the handshake anyway, and with
 *    TLS there is none. The server
 *    answers `OK`, or `ERROR UNAUTHORIZED` and closes: for a wrong mac, and
 *    for any other message in place of `AUTH`. It may delay that answer,
 *    longer for each recent failure from the same address. A server that
 *    requires authentication does not serve classic clients. The secret
 *    never crosses the wire.
 * 3. **Requests**, one after another on the same connection. A client may
 *    send further requests before the replies to earlier ones have arrived
 *    (pipelining); replies come in request order.
 *    - `LIST path` → zero or more `ENTRIES` frames (names relative to `path`;
 *      with the recursive flag, a whole subtree with `/`-separated names,
 *      folders before their contents), then `END count`; or `ERROR`. A
 *      listing longer than the server's limit ends with `ERROR TOO_LARGE`
 *      in place of `END`, after the `ENTRIES` already sent.
 *    - `STAT path` → `INFO` (its name is the last segment of `path`, empty
 *      for the root), or `ERROR`.
 *    - `GET path offset` → `DATA size offset mtime`, then exactly
 *      `size - offset` raw bytes of the file starting at `offset`, then
 *      `HASH` of the whole file (bytes `0..size`, in the session's
 *      algorithm), or `ERROR CHANGED` instead
 *      of `HASH` when the file changed while it was sent. An `offset` above the
 *      size is `BAD_REQUEST`. Errors before the data (`NOT_FOUND`,
 *      `FORBIDDEN`, ...) come instead of `DATA`. The `HASH` always covers
 *      the whole file as it was when `DATA` was sent, whatever the offset: a
 *      server computes it over bytes `0..size` or takes it from a cache of
 *      digests of unchanged files; either way a file whose size, times or
 *      identity differ at the end gets `ERROR CHANGED`, never a stale hash.
 *      A client resuming a download sends the length of the bytes it kept
 *      as `offset` and checks `HASH` over those bytes and the new ones.
 *    - `PUT path size flags mtime` → `READY offset` (0 unless resuming), then
 *      the client sends exactly `size - offset` raw bytes and `HASH` of the
 *      whole file; the server verifies, moves the file into place and answers
 *      `OK`, or `ERROR INTEGRITY` and keeps nothing. Refusals (`EXISTS` without
 *      the overwrite flag, `FORBIDDEN` when uploads are off, ...) come
 *      instead of `READY`. With the resume flag, `offset` is the number of
 *      bytes of this same upload (same path, size and `mtime`) the server
 *      kept from an earlier, cut attempt (never more than `size`); they are
 *      bytes `0..offset` of the file, already part of the server's running
 *      hash, and a cut resumable upload keeps what arrived. A server that
 *      does not resume answers 0. On `ERROR INTEGRITY` the kept bytes are
 *      gone too: the next attempt starts at 0.
 *    - `PUT` with the eager flag (only to a server whose `HELLO` set flag
 *      bit 1; `size` at most {@linkcode MAX_EAGER_PUT_BYTES}, else
 *      `BAD_REQUEST` and the connection closes): the client sends the
 *      `size` raw bytes and the `HASH` right after the `PUT`, without
 *      waiting; there is no `READY`. The server reads them all, then
 *      answers `OK` (verified and moved into place) or `ERROR`, refusals
 *      included (`EXISTS`, `FORBIDDEN`, `TOO_LARGE`, ...: the bytes are
 *      read and dropped, and the connection stays usable). A client
 *      uploading many small files sends one eager `PUT` after another
 *      without waiting for their replies, which come in order. A server
 *      may answer a run of eager `PUT`s whose bytes have all arrived
 *      together, once they are all on disk.
 *    - `MKDIR path flags mtime` → `OK`: the folder exists, created with any
 *      missing parents (each inside the root); a folder already there is
 *      fine. With flag bit 0 its modification time is then set to `mtime`
 *      (a client copying a tree sends this after the folder's contents,
 *      whose creation would change it). `FORBIDDEN` when uploads are off or
 *      the path is not allowed (the root itself is `OK`, its time is left
 *      alone), `EXISTS` when a file has the name of a segment.
 *    - `PUT` with the append flag (and the overwrite flag): the file now at
 *      `path`, when it is a regular file no longer than `size`, is taken as
 *      bytes `0..offset` of the upload: the server copies it into its
 *      temporary file, hashes it and answers `READY` with its length
 *      (0 when there is no such file), and the client sends the rest and
 *      `HASH` of the whole file, as for a resumed upload. A client sends
 *      it after `SUM` showed that the server's file is a prefix of its own;
 *      if the file changed in between, `HASH` does not match and the
 *      server answers `ERROR INTEGRITY` and keeps nothing.
 *    - `DELETE path flags` → `OK`: the file, or the folder, is removed. A
 *      folder must be empty unless flag bit 0 (recursive) is set, else
 *      `EXISTS`; a recursive delete never follows a symbolic link inside
 *      the folder. A symbolic link at `path` is removed itself, never its
 *      target; a symbolic link in a parent segment is `FORBIDDEN` (a delete
 *      never goes through one), and so are the root (`""`) and any path
 *      the lexical rules refuse. `FORBIDDEN` when deletes are off (a
 *      server allows them only together with uploads), `NOT_FOUND` when
 *      nothing is there.
 *    - `SUM path flags length` → `HASH` (in the session's algorithm) of the file's bytes `0..length`
 *      with flag bit 0 (prefix), of the whole file without it (then
 *      `length` is 0); or `ERROR`: `NOT_FOUND`, `FORBIDDEN` (also for a
 *      folder), `BAD_REQUEST` for a `length` above the file's size,
 *      `CHANGED` when the file changed while it was hashed. A whole-file
 *      digest may come from the server's cache of digests of unchanged
 *      files. It lets a client compare a file without fetching it.
 * 4. A receiver that finds the `HASH` differs from the digest it computed
 *    over the bytes it received discards them (`INTEGRITY`). A `HASH`
 *    whose length is not that of the session's algorithm is `BAD_REQUEST`.
 *
 * A request the server cannot parse gets `ERROR BAD_REQUEST` (or
 * `TOO_LARGE`) and the connection closes. Other errors leave the connection
 * usable for the next request. Either side may close at any time; a
 * transfer cut short is an error on the receiving side.
 *
 * **Limits.** A server may refuse a request that is too big for it with
 * `TOO_LARGE` (a path with too many segments, an upload over its size
 * limit: before `READY`), and answer a connection over its connection limit
 * with `ERROR BUSY` right away, before reading anything, and close it. It
 * may close a connection that stays silent between requests, or stalls
 * within one, for longer than its idle timeout; and when it shuts down it
 * closes connections between requests at once and the others once their
 * request is done. A client that wants to be served retries later.
 *
 * ## Error codes
 *
 * | code                  | meaning                                                     |
 * |-----------------------|-------------------------------------------------------------|
 * | `NOT_FOUND`           | no such file or folder                                      |
 * | `FORBIDDEN`           | the path is not allowed, or uploads (deletes) are off       |
 * | `EXISTS`              | the upload target exists and the overwrite flag is not set; a folder to delete is not empty |
 * | `BAD_REQUEST`         | malformed frame, unexpected message, bad field               |
 * | `TOO_LARGE`           | frame, path or upload larger than the receiver's limit      |
 * | `UNSUPPORTED_VERSION` | no protocol version, or no digest algorithm, in common      |
 * | `UNAUTHORIZED`        | authentication required or failed                           |
 * | `BUSY`                | the server is at its connection limit                       |
 * | `CHANGED`             | the file changed while it was being sent                    |
 * | `INTEGRITY`           | the digest of the received bytes did not match              |
 * | `INTERNAL`            | anything else went wrong on the server (disk full, ...)     |
 *
 * A receiver maps a code it does not know to `INTERNAL`.
 *
 * ## Worked example
 *
 * A client lists the root, then gets `hi.txt` (the 3 bytes `hi\n`). Bytes
 * are hex; `C:` is sent by the client, `S:` by the server.
 *
 * ```text
 * C: 00 0000000c 4645525259 0002 0002 0000 00         HELLO min 2 max 2, no nonce
 *    (a real client sends a 32-byte nonce: length 20 then the bytes)
 * C: 04 00000011 02 08 787868332d313238 06 736861323536
 *                                                      DIGESTS "xxh3-128", "sha256"
 * S: 00 0000002c 4645525259 0002 0002 0000 20 <32 random bytes>
 *                                                      HELLO version 2, no auth
 * S: 04 0000000a 01 08 787868332d313238               DIGESTS "xxh3-128" (chosen)
 * C: 10 00000003 00 0000                              LIST "" (root)
 * S: 20 0000001d 00000001                             ENTRIES, 1 entry:
 *       01 0000000000000003 0000018c3b5e2a00            file, 3 bytes, mtime
 *       0006 68692e747874                               "hi.txt"
 * S: 21 00000004 00000001                             END, 1 entry
 * C: 12 00000010 0000000000000000 0006 68692e747874   GET "hi.txt" offset 0
 * S: 23 00000018 0000000000000003 0000000000000000 0000018c3b5e2a00
 *                                                      DATA size 3 offset 0
 * S: 68690a                                            the 3 raw bytes "hi\n"
 * S: 25 00000010 f4d0497cf9394caab34d1a3ab2bece70   HASH = XXH3-128("hi\n")
 * ```
 *
 * Had the client offered only `sha256` (`04 00000008 01 06 736861323536`),
 * the server would have chosen it and the `HASH` would read
 * `25 00000020 98ea6e4f216f2fb4b69fff9b3a44842c38686ca685f3f55dc48c5d3fb1107be4`
 * (SHA-256 of `hi\n`).
 *
 * The client then closes the connection (or sends its next request).
 *
 * ## Sync example
 *
 * A client syncing a tree asks for the digest of `hi.txt` (the 3 bytes
 * `hi\n`), then removes the folder `old` and its contents.
 *
 * ```text
 * C: 16 00000011 00 0000000000000000 0006 68692e747874
 *                                                      SUM "hi.txt" (whole)
 * S: 25 00000010 f4d0497cf9394caab34d1a3ab2bece70   HASH = XXH3-128("hi\n")
 * C: 15 00000006 01 0003 6f6c64                       DELETE "old" recursive
 * S: 02 00000000                                       OK
 * ```
 *
 * @example Encode a request and decode it again
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeFrame, encodeMessage } from "./protocol.ts";
 * const bytes = encodeMessage({ type: "get", path: "notes.txt", offset: 0 });
 * const decoded = decodeFrame(bytes);
 * assert(decoded?.message.type === "get");
 * assert(decoded?.size === bytes.length);
 * ```
 *
 * @module
 */

import { FerryError } from "./errors.ts";

export { FerryError, type FerryErrorCode } from "./errors.ts";

/**
 * The protocol version this module speaks (and the only one: version 1
 * had no digest negotiation, see the module doc).
 *
 * @example Offer it in a handshake
 * ```ts
 * import assert from "node:assert/strict";
 * import { PROTOCOL_VERSION } from "./protocol.ts";
 * assert(PROTOCOL_VERSION === 2);
 * ```
 */
export const PROTOCOL_VERSION = 2;

/**
 * The five magic bytes at the start of every `HELLO` payload: ASCII `FERRY`.
 *
 * @example Recognise a handshake payload
 * ```ts
 * import assert from "node:assert/strict";
 * import { MAGIC } from "./protocol.ts";
 * assert(new TextDecoder().decode(MAGIC) === "FERRY");
 * ```
 */
export const MAGIC: Uint8Array = new Uint8Array([0x46, 0x45, 0x52, 0x52, 0x59]);

/**
 * Size of a frame header in bytes: type (1) and payload length (4).
 *
 * @example Size a header buffer
 * ```ts
 * import assert from "node:assert/strict";
 * import { FRAME_HEADER_BYTES } from "./protocol.ts";
 * assert(FRAME_HEADER_BYTES === 5);
 * ```
 */
export const FRAME_HEADER_BYTES = 5;

/**
 * Largest payload a frame may declare: 1 MiB.
 *
 * @example Check a declared length
 * ```ts
 * import assert from "node:assert/strict";
 * import { MAX_FRAME_BYTES } from "./protocol.ts";
 * assert(MAX_FRAME_BYTES === 1024 * 1024);
 * ```
 */
export const MAX_FRAME_BYTES: number = 1024 * 1024;

/**
 * Longest path on the wire, in UTF-8 bytes.
 *
 * @example Check a path before sending it
 * ```ts
 * import assert from "node:assert/strict";
 * import { MAX_PATH_BYTES } from "./protocol.ts";
 * assert(new TextEncoder().encode("a/b").length <= MAX_PATH_BYTES);
 * ```
 */
export const MAX_PATH_BYTES = 4096;

/**
 * Longest nonce a `HELLO` may carry, in bytes.
 *
 * @example Make a nonce
 * ```ts
 * import assert from "node:assert/strict";
 * import { MAX_NONCE_BYTES } from "./protocol.ts";
 * const nonce = crypto.getRandomValues(new Uint8Array(32));
 * assert(nonce.length <= MAX_NONCE_BYTES);
 * ```
 */
export const MAX_NONCE_BYTES = 64;

/**
 * Length of a SHA-256 digest and of an `AUTH` mac, in bytes.
 *
 * @example Check a digest
 * ```ts
 * import assert from "node:assert/strict";
 * import { SHA256_BYTES } from "./protocol.ts";
 * assert(SHA256_BYTES === 32);
 * ```
 */
export const SHA256_BYTES = 32;

/**
 * A digest algorithm a session can use for its `HASH` frames.
 *
 * @example Pick SHA-256
 * ```ts
 * import assert from "node:assert/strict";
 * import type { DigestAlgorithm } from "./protocol.ts";
 * const algorithm: DigestAlgorithm = "sha256";
 * assert(algorithm === "sha256");
 * ```
 */
export type DigestAlgorithm = "xxh3-128" | "sha256";

/**
 * The digest algorithms this module knows, in its order of preference.
 *
 * @example The default comes first
 * ```ts
 * import assert from "node:assert/strict";
 * import { DIGEST_ALGORITHMS } from "./protocol.ts";
 * assert(DIGEST_ALGORITHMS[0] === "xxh3-128");
 * ```
 */
export const DIGEST_ALGORITHMS: readonly DigestAlgorithm[] = Object.freeze(
  [
    "xxh3-128",
    "sha256",
  ] as const,
);

/**
 * The algorithm a client offers first unless told otherwise: `xxh3-128`.
 *
 * @example Offer the default
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_DIGEST } from "./protocol.ts";
 * assert(DEFAULT_DIGEST === "xxh3-128");
 * ```
 */
export const DEFAULT_DIGEST: DigestAlgorithm = "xxh3-128";

/**
 * Length in bytes of a digest of each algorithm.
 *
 * @example Size a HASH payload
 * ```ts
 * import assert from "node:assert/strict";
 * import { DIGEST_BYTES } from "./protocol.ts";
 * assert(DIGEST_BYTES["xxh3-128"] === 16 && DIGEST_BYTES.sha256 === 32);
 * ```
 */
export const DIGEST_BYTES: Readonly<Record<DigestAlgorithm, number>> = Object
  .freeze({ "xxh3-128": 16, sha256: 32 });

/**
 * Most algorithms a `DIGESTS` message may name.
 *
 * @example Check an offer
 * ```ts
 * import assert from "node:assert/strict";
 * import { MAX_DIGESTS } from "./protocol.ts";
 * assert(["xxh3-128", "sha256"].length <= MAX_DIGESTS);
 * ```
 */
export const MAX_DIGESTS = 8;

/**
 * Longest digest a `HASH` may carry, in bytes.
 *
 * @example Check a digest length
 * ```ts
 * import assert from "node:assert/strict";
 * import { MAX_DIGEST_BYTES } from "./protocol.ts";
 * assert(32 <= MAX_DIGEST_BYTES);
 * ```
 */
export const MAX_DIGEST_BYTES = 64;

/**
 * Picks the session's digest algorithm as a server does: the first name
 * in the client's list that the server supports.
 *
 * @param offered The client's `DIGESTS`, most preferred first.
 * @param supported What the server supports (default: all of
 * {@linkcode DIGEST_ALGORITHMS}).
 * @returns The chosen algorithm, or `undefined` when none is shared.
 *
 * @example The client's order wins
 * ```ts
 * import assert from "node:assert/strict";
 * import { chooseDigest } from "./protocol.ts";
 * assert(chooseDigest(["blake9", "sha256", "xxh3-128"]) === "sha256");
 * assert(chooseDigest(["md5"]) === undefined);
 * ```
 */
export function chooseDigest(
  offered: readonly string[],
  supported: readonly DigestAlgorithm[] = DIGEST_ALGORITHMS,
): DigestAlgorithm | undefined {
  for (const name of offered) {
    const found = supported.find((algorithm) => algorithm === name);
    if (found !== undefined) return found;
  }
  return undefined;
}

/**
 * `HELLO` flag set by a server that requires the `AUTH` step.
 *
 * @example Test the flag
 * ```ts
 * import assert from "node:assert/strict";
 * import { HELLO_AUTH_REQUIRED } from "./protocol.ts";
 * assert((HELLO_AUTH_REQUIRED & 1) === 1);
 * ```
 */
export const HELLO_AUTH_REQUIRED = 1;

/**
 * `HELLO` flag set by a server that takes eager `PUT`s (see the module
 * doc): a client may then send a small file's bytes without waiting for
 * `READY`.
 *
 * @example Test the flag
 * ```ts
 * import assert from "node:assert/strict";
 * import { HELLO_EAGER_PUT } from "./protocol.ts";
 * assert((3 & HELLO_EAGER_PUT) !== 0);
 * ```
 */
export const HELLO_EAGER_PUT = 2;

/**
 * Largest `size` of an eager `PUT`: 1 MiB. A server reads (and drops) at
 * most this much for an eager upload it refuses.
 *
 * @example Decide whether a file may go eagerly
 * ```ts
 * import assert from "node:assert/strict";
 * import { MAX_EAGER_PUT_BYTES } from "./protocol.ts";
 * assert(4096 <= MAX_EAGER_PUT_BYTES);
 * ```
 */
export const MAX_EAGER_PUT_BYTES: number = 1024 * 1024;

/**
 * Frame type numbers, by message name.
 *
 * @example Look up a type byte
 * ```ts
 * import assert from "node:assert/strict";
 * import { FRAME_TYPES } from "./protocol.ts";
 * assert(FRAME_TYPES.get === 0x12);
 * ```
 */
export const FRAME_TYPES: Readonly<Record<Message["type"], number>> = {
  hello: 0x00,
  auth: 0x01,
  ok: 0x02,
  error: 0x03,
  digests: 0x04,
  list: 0x10,
  stat: 0x11,
  get: 0x12,
  put: 0x13,
  mkdir: 0x14,
  delete: 0x15,
  sum: 0x16,
  entries: 0x20,
  end: 0x21,
  info: 0x22,
  data: 0x23,
  ready: 0x24,
  hash: 0x25,
};

/**
 * One file or folder as `LIST` and `STAT` describe it.
 *
 * @example A file entry
 * ```ts
 * import assert from "node:assert/strict";
 * import type { Entry } from "./protocol.ts";
 * const entry: Entry = { name: "a.txt", kind: "file", size: 3, mtime: 0 };
 * assert(entry.kind === "file");
 * ```
 */
export interface Entry {
  /** Name relative to the listed folder, `/`-separated in recursive lists. */
  name: string;
  /** `"file"` or `"dir"`. */
  kind: "file" | "dir";
  /** Size in bytes (0 for folders). */
  size: number;
  /** Modification time, milliseconds since the Unix epoch. */
  mtime: number;
}

/**
 * `HELLO`: opens a session from either side.
 *
 * @example A client's hello
 * ```ts
 * import assert from "node:assert/strict";
 * import type { HelloMessage } from "./protocol.ts";
 * const hello: HelloMessage = {
 *   type: "hello", minVersion: 1, maxVersion: 1, flags: 0, nonce: new Uint8Array(32),
 * };
 * assert(hello.nonce.length === 32);
 * ```
 */
export interface HelloMessage {
  /** Message tag. */
  type: "hello";
  /** Lowest version the sender speaks (the chosen one, from a server). */
  minVersion: number;
  /** Highest version the sender speaks (the chosen one, from a server). */
  maxVersion: number;
  /** Bit field; bit 0 ({@linkcode HELLO_AUTH_REQUIRED}) from a server. */
  flags: number;
  /** Random bytes for the authentication challenge, 0 to 64 of them. */
  nonce: Uint8Array;
}

/**
 * `AUTH`: the client's answer to the server's challenge.
 *
 * @example An auth message
 * ```ts
 * import assert from "node:assert/strict";
 * import type { AuthMessage } from "./protocol.ts";
 * const auth: AuthMessage = { type: "auth", mac: new Uint8Array(32) };
 * assert(auth.mac.length === 32);
 * ```
 */
export interface AuthMessage {
  /** Message tag. */
  type: "auth";
  /** HMAC-SHA256 over the challenge, 32 bytes. */
  mac: Uint8Array;
}

/**
 * `DIGESTS`: the digest algorithms a client accepts (most preferred first),
 * or the one a server chose.
 *
 * @example A client's offer
 * ```ts
 * import assert from "node:assert/strict";
 * import type { DigestsMessage } from "./protocol.ts";
 * const offer: DigestsMessage = { type: "digests", algorithms: ["xxh3-128", "sha256"] };
 * assert(offer.algorithms.length === 2);
 * ```
 */
export interface DigestsMessage {
  /** Message tag. */
  type: "digests";
  /** 1 to {@linkcode MAX_DIGESTS} names, each `[a-z0-9-]`, 1 to 32 bytes. */
  algorithms: string[];
}

/**
 * `OK`: success without data (after `AUTH`, after an upload).
 *
 * @example An ok message
 * ```ts
 * import assert from "node:assert/strict";
 * import type { OkMessage } from "./protocol.ts";
 * const ok: OkMessage = { type: "ok" };
 * assert(ok.type === "ok");
 * ```
 */
export interface OkMessage {
  /** Message tag. */
  type: "ok";
}

/**
 * `ERROR`: a failure with a machine-readable code.
 *
 * @example A not-found error
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ErrorMessage } from "./protocol.ts";
 * const error: ErrorMessage = { type: "error", code: "NOT_FOUND", message: "Not found: a" };
 * assert(error.code === "NOT_FOUND");
 * ```
 */
export interface ErrorMessage {
  /** Message tag. */
  type: "error";
  /** One of the documented codes, `[A-Z_]`, 1 to 32 characters. */
  code: string;
  /** A short message for people. */
  message: string;
}

/**
 * `LIST`: asks for the entries of a folder.
 *
 * @example List the root
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ListMessage } from "./protocol.ts";
 * const list: ListMessage = { type: "list", path: "", recursive: false };
 * assert(list.path === "");
 * ```
 */
export interface ListMessage {
  /** Message tag. */
  type: "list";
  /** Folder to list; `""` is the root. */
  path: string;
  /** List the whole subtree. */
  recursive: boolean;
}

/**
 * `STAT`: asks for one entry.
 *
 * @example Stat a file
 * ```ts
 * import assert from "node:assert/strict";
 * import type { StatMessage } from "./protocol.ts";
 * const stat: StatMessage = { type: "stat", path: "a.txt" };
 * assert(stat.path === "a.txt");
 * ```
 */
export interface StatMessage {
  /** Message tag. */
  type: "stat";
  /** Path to describe. */
  path: string;
}

/**
 * `GET`: asks for a file's bytes from `offset` on.
 *
 * @example Get a whole file
 * ```ts
 * import assert from "node:assert/strict";
 * import type { GetMessage } from "./protocol.ts";
 * const get: GetMessage = { type: "get", path: "a.txt", offset: 0 };
 * assert(get.offset === 0);
 * ```
 */
export interface GetMessage {
  /** Message tag. */
  type: "get";
  /** File to send. */
  path: string;
  /** First byte to send; bytes before it are only hashed. */
  offset: number;
}

/**
 * `PUT`: offers a file of `size` bytes for upload.
 *
 * @example Upload with overwrite
 * ```ts
 * import assert from "node:assert/strict";
 * import type { PutMessage } from "./protocol.ts";
 * const put: PutMessage = { type: "put", path: "a.txt", size: 3, overwrite: true, resume: false };
 * assert(put.size === 3);
 * ```
 */
export interface PutMessage {
  /** Message tag. */
  type: "put";
  /** Destination path. */
  path: string;
  /** Exact size of the whole file. */
  size: number;
  /** Replace an existing file instead of answering `EXISTS`. */
  overwrite: boolean;
  /** Continue a previous cut upload of the same file. */
  resume: boolean;
  /**
   * Take the file now at `path` as the first bytes of this one (see the
   * module doc); not together with `resume`.
   */
  append?: boolean;
  /**
   * The bytes and `HASH` follow at once, without `READY` (see the module
   * doc); not together with `resume` or `append`.
   */
  eager?: boolean;
  /** Modification time to give the file, milliseconds; absent to leave it. */
  mtime?: number;
}

/**
 * `MKDIR`: creates a folder (and its missing parents), or sets its time.
 *
 * @example Create a folder with a modification time
 * ```ts
 * import assert from "node:assert/strict";
 * import type { MkdirMessage } from "./protocol.ts";
 * const mkdir: MkdirMessage = { type: "mkdir", path: "docs/old", mtime: 0 };
 * assert(mkdir.path === "docs/old");
 * ```
 */
export interface MkdirMessage {
  /** Message tag. */
  type: "mkdir";
  /** Folder to create; `""` is the root (which always exists). */
  path: string;
  /** Modification time to give the folder, milliseconds; absent to leave it. */
  mtime?: number;
}

/**
 * `DELETE`: removes a file or a folder.
 *
 * @example Remove a folder and its contents
 * ```ts
 * import assert from "node:assert/strict";
 * import type { DeleteMessage } from "./protocol.ts";
 * const remove: DeleteMessage = { type: "delete", path: "docs/old", recursive: true };
 * assert(remove.recursive);
 * ```
 */
export interface DeleteMessage {
  /** Message tag. */
  type: "delete";
  /** File or folder to remove; never `""` (the root). */
  path: string;
  /** Remove a folder with its contents; without it, only an empty one. */
  recursive: boolean;
}

/**
 * `SUM`: asks for the digest of a file, or of its first `length` bytes.
 *
 * @example The digest of the first 1024 bytes
 * ```ts
 * import assert from "node:assert/strict";
 * import type { SumMessage } from "./protocol.ts";
 * const sum: SumMessage = { type: "sum", path: "log.txt", length: 1024 };
 * assert(sum.length === 1024);
 * ```
 */
export interface SumMessage {
  /** Message tag. */
  type: "sum";
  /** File to hash. */
  path: string;
  /** Hash bytes `0..length` only; absent for the whole file. */
  length?: number;
}

/**
 * `ENTRIES`: a batch of listing entries.
 *
 * @example A batch of one
 * ```ts
 * import assert from "node:assert/strict";
 * import type { EntriesMessage } from "./protocol.ts";
 * const batch: EntriesMessage = {
 *   type: "entries", entries: [{ name: "a", kind: "dir", size: 0, mtime: 0 }],
 * };
 * assert(batch.entries.length === 1);
 * ```
 */
export interface EntriesMessage {
  /** Message tag. */
  type: "entries";
  /** The entries of this batch. */
  entries: Entry[];
}

/**
 * `END`: closes a listing.
 *
 * @example The end of a listing of three
 * ```ts
 * import assert from "node:assert/strict";
 * import type { EndMessage } from "./protocol.ts";
 * const end: EndMessage = { type: "end", count: 3 };
 * assert(end.count === 3);
 * ```
 */
export interface EndMessage {
  /** Message tag. */
  type: "end";
  /** Number of entries sent in all batches. */
  count: number;
}

/**
 * `INFO`: the answer to `STAT`.
 *
 * @example Info about a file
 * ```ts
 * import assert from "node:assert/strict";
 * import type { InfoMessage } from "./protocol.ts";
 * const info: InfoMessage = {
 *   type: "info", entry: { name: "a.txt", kind: "file", size: 3, mtime: 0 },
 * };
 * assert(info.entry.size === 3);
 * ```
 */
export interface InfoMessage {
  /** Message tag. */
  type: "info";
  /** The described entry. */
  entry: Entry;
}

/**
 * `DATA`: announces `size - offset` raw bytes that follow.
 *
 * @example A whole 3-byte file follows
 * ```ts
 * import assert from "node:assert/strict";
 * import type { DataMessage } from "./protocol.ts";
 * const data: DataMessage = { type: "data", size: 3, offset: 0, mtime: 0 };
 * assert(data.size - data.offset === 3);
 * ```
 */
export interface DataMessage {
  /** Message tag. */
  type: "data";
  /** Size of the whole file. */
  size: number;
  /** Offset of the first byte that follows. */
  offset: number;
  /** Modification time of the file, milliseconds. */
  mtime: number;
}

/**
 * `READY`: the server accepts an upload from `offset` on.
 *
 * @example Start from the beginning
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ReadyMessage } from "./protocol.ts";
 * const ready: ReadyMessage = { type: "ready", offset: 0 };
 * assert(ready.offset === 0);
 * ```
 */
export interface ReadyMessage {
  /** Message tag. */
  type: "ready";
  /** Bytes the server already holds; the client sends from here. */
  offset: number;
}

/**
 * `HASH`: the digest of a whole file, after its bytes, in the session's
 * algorithm.
 *
 * @example An XXH3-128 digest
 * ```ts
 * import assert from "node:assert/strict";
 * import type { HashMessage } from "./protocol.ts";
 * const hash: HashMessage = { type: "hash", digest: new Uint8Array(16) };
 * assert(hash.digest.length === 16);
 * ```
 */
export interface HashMessage {
  /** Message tag. */
  type: "hash";
  /** The digest: 1 to {@linkcode MAX_DIGEST_BYTES} bytes (16 or 32 today). */
  digest: Uint8Array;
}

/**
 * Any protocol message, discriminated by `type`.
 *
 * @example Switch on a message
 * ```ts
 * import assert from "node:assert/strict";
 * import type { Message } from "./protocol.ts";
 * function describe(message: Message): string {
 *   return message.type === "error" ? message.code : message.type;
 * }
 * assert(describe({ type: "ok" }) === "ok");
 * ```
 */
export type Message =
  | HelloMessage
  | AuthMessage
  | OkMessage
  | ErrorMessage
  | DigestsMessage
  | ListMessage
  | StatMessage
  | GetMessage
  | PutMessage
  | MkdirMessage
  | DeleteMessage
  | SumMessage
  | EntriesMessage
  | EndMessage
  | InfoMessage
  | DataMessage
  | ReadyMessage
  | HashMessage;

/**
 * A source of bytes, such as `Deno.Conn`: `read` fills part of `p` and
 * resolves to the count, or to `null` at the end of the stream.
 *
 * @example Read from an array
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ByteReader } from "./protocol.ts";
 * const reader: ByteReader = { read: () => Promise.resolve(null) };
 * assert(typeof reader.read === "function");
 * ```
 */
export interface ByteReader {
  /** Reads up to `p.length` bytes into `p`. */
  read(p: Uint8Array): Promise<number | null>;
}

/**
 * A sink of bytes, such as `Deno.Conn`: `write` takes some of `p` and
 * resolves to how many bytes it took.
 *
 * @example Collect writes
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ByteWriter } from "./protocol.ts";
 * const chunks: Uint8Array[] = [];
 * const writer: ByteWriter = {
 *   write: (p) => { chunks.push(p.slice()); return Promise.resolve(p.length); },
 * };
 * assert(typeof writer.write === "function");
 * ```
 */
export interface ByteWriter {
  /** Writes some of `p`, resolving to the number of bytes written. */
  write(p: Uint8Array): Promise<number>;
}

const KIND_CODES = { file: 1, dir: 2 } as const;
const PUT_OVERWRITE = 1;
const PUT_RESUME = 2;
const PUT_HAS_MTIME = 4;
const PUT_APPEND = 8;
const PUT_EAGER = 16;

/** Refuses an eager `PUT` that resumes, appends or is too big. */
function checkEager(
  size: number,
  flags: { resume: boolean; append?: boolean },
): void {
  if (flags.resume || flags.append) {
    throw new RangeError("An eager PUT cannot resume or append");
  }
  if (size > MAX_EAGER_PUT_BYTES) {
    throw new RangeError(
      `An eager PUT carries at most ${MAX_EAGER_PUT_BYTES} bytes, not ${size}`,
    );
  }
}
const DELETE_RECURSIVE = 1;
const SUM_PREFIX = 1;
const LIST_RECURSIVE = 1;
const MKDIR_HAS_MTIME = 1;
const ERROR_CODE_PATTERN = /^[A-Z_]{1,32}$/;
const DIGEST_NAME_PATTERN = /^[a-z0-9-]{1,32}$/;
const ENTRY_FIXED_BYTES = 1 + 8 + 8 + 2;

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Strings of at most this many characters are encoded and decoded in
 * JavaScript when they are ASCII: `TextEncoder`/`TextDecoder` are calls
 * into the runtime, a few microseconds each, and a tree of small files
 * makes two or three per file.
 */
const ASCII_FAST_CHARS = 256;

/** The bytes of `text` if it is short and ASCII, else `undefined`. */
function asciiBytes(text: string): Uint8Array | undefined {
  if (text.length > ASCII_FAST_CHARS) return undefined;
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code >= 0x80) return undefined;
    bytes[i] = code;
  }
  return bytes;
}

/** The text of `bytes` if they are few and ASCII, else `undefined`. */
function asciiText(bytes: Uint8Array): string | undefined {
  if (bytes.length > ASCII_FAST_CHARS) return undefined;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] >= 0x80) return undefined;
  }
  return String.fromCharCode.apply(null, bytes as unknown as number[]);
}
const TYPE_NAMES: ReadonlyMap<number, Message["type"]> = new Map(
  Object.entries(FRAME_TYPES).map(([name, type]) => [
    type,
    name as Message["type"],
  ]),
);

function checkUint(value: number, bits: 8 | 16 | 32 | 64, what: string): void {
  const max = bits === 64 ? Number.MAX_SAFE_INTEGER : 2 ** bits - 1;
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new RangeError(`${what} must be an integer from 0 to ${max}`);
  }
}

function checkInt64(value: number, what: string): void {
  if (!Number.isSafeInteger(value)) {
    throw new RangeError(`${what} must be a safe integer`);
  }
}

function utf8(text: string, maxBytes: number, what: string): Uint8Array {
  const bytes = asciiBytes(text) ?? encoder.encode(text);
  if (bytes.length > maxBytes) {
    throw new RangeError(`${what} is longer than ${maxBytes} bytes`);
  }
  return bytes;
}

/** A field to write: a fixed-width number or a byte string. */
type Field =
  | ["u8" | "u16" | "u32" | "u64" | "i64", number]
  | ["bytes", Uint8Array];

function entryFields(entry: Entry, fields: Field[]): void {
  if (entry.kind !== "file" && entry.kind !== "dir") {
    throw new RangeError("Entry kind must be file or dir");
  }
  checkUint(entry.size, 64, "Entry size");
  checkInt64(entry.mtime, "Entry mtime");
  const name = utf8(entry.name, MAX_PATH_BYTES, "Entry name");
  fields.push(
    ["u8", KIND_CODES[entry.kind]],
    ["u64", entry.size],
    ["i64", entry.mtime],
    ["u16", name.length],
    ["bytes", name],
  );
}

function pathFields(path: string, fields: Field[]): void {
  const bytes = utf8(path, MAX_PATH_BYTES, "Path");
  fields.push(["u16", bytes.length], ["bytes", bytes]);
}

/** Checks a `PUT`'s numbers and flags; its flags byte. */
function putFlags(message: PutMessage): number {
  checkUint(message.size, 64, "Size");
  const hasMtime = message.mtime !== undefined;
  if (hasMtime) checkInt64(message.mtime!, "mtime");
  if (message.append && message.resume) {
    throw new RangeError("A PUT cannot both append and resume");
  }
  if (message.eager) checkEager(message.size, message);
  return (message.overwrite ? PUT_OVERWRITE : 0) |
    (message.resume ? PUT_RESUME : 0) | (hasMtime ? PUT_HAS_MTIME : 0) |
    (message.append ? PUT_APPEND : 0) | (message.eager ? PUT_EAGER : 0);
}

function payloadFields(message: Message): Field[] {
  const fields: Field[] = [];
  switch (message.type) {
    case "hello":
      checkUint(message.minVersion, 16, "minVersion");
      checkUint(message.maxVersion, 16, "maxVersion");
      checkUint(message.flags, 16, "flags");
      if (message.nonce.length > MAX_NONCE_BYTES) {
        throw new RangeError(`Nonce is longer than ${MAX_NONCE_BYTES} bytes`);
      }
      fields.push(
        ["bytes", MAGIC],
        ["u16", message.minVersion],
        ["u16", message.maxVersion],
        ["u16", message.flags],
        ["u8", message.nonce.length],
        ["bytes", message.nonce],
      );
      break;
    case "auth":
      if (message.mac.length !== SHA256_BYTES) {
        throw new RangeError(`Mac must be ${SHA256_BYTES} bytes`);
      }
      fields.push(["bytes", message.mac]);
      break;
    case "ok":
      break;
    case "error": {
      if (!ERROR_CODE_PATTERN.test(message.code)) {
        throw new RangeError("Error code must match [A-Z_]{1,32}");
      }
      const text = utf8(message.message, 0xffff, "Error message");
      fields.push(
        ["u8", message.code.length],
        ["bytes", encoder.encode(message.code)],
        ["u16", text.length],
        ["bytes", text],
      );
      break;
    }
    case "list":
      fields.push(["u8", message.recursive ? LIST_RECURSIVE : 0]);
      pathFields(message.path, fields);
      break;
    case "stat":
      pathFields(message.path, fields);
      break;
    case "get":
      checkUint(message.offset, 64, "Offset");
      fields.push(["u64", message.offset]);
      pathFields(message.path, fields);
      break;
    case "put": {
      fields.push(
        ["u64", message.size],
        ["u8", putFlags(message)],
        ["i64", message.mtime ?? 0],
      );
      pathFields(message.path, fields);
      break;
    }
    case "mkdir": {
      const hasMtime = message.mtime !== undefined;
      if (hasMtime) checkInt64(message.mtime!, "mtime");
      fields.push(
        ["u8", hasMtime ? MKDIR_HAS_MTIME : 0],
        ["i64", hasMtime ? message.mtime! : 0],
      );
      pathFields(message.path, fields);
      break;
    }
    case "delete":
      fields.push(["u8", message.recursive ? DELETE_RECURSIVE : 0]);
      pathFields(message.path, fields);
      break;
    case "sum": {
      const prefix = message.length !== undefined;
      if (prefix) checkUint(message.length!, 64, "Length");
      fields.push(
        ["u8", prefix ? SUM_PREFIX : 0],
        ["u64", prefix ? message.length! : 0],
      );
      pathFields(message.path, fields);
      break;
    }
    case "entries":
      checkUint(message.entries.length, 32, "Entry count");
      fields.push(["u32", message.entries.length]);
      for (const entry of message.entries) entryFields(entry, fields);
      break;
    case "end":
      checkUint(message.count, 32, "count");
      fields.push(["u32", message.count]);
      break;
    case "info":
      entryFields(message.entry, fields);
      break;
    case "data":
      checkUint(message.size, 64, "Size");
      checkUint(message.offset, 64, "Offset");
      checkInt64(message.mtime, "mtime");
      if (message.offset > message.size) {
        throw new RangeError("Offset must not exceed size");
      }
      fields.push(
        ["u64", message.size],
        ["u64", message.offset],
        ["i64", message.mtime],
      );
      break;
    case "ready":
      checkUint(message.offset, 64, "Offset");
      fields.push(["u64", message.offset]);
      break;
    case "hash":
      if (
        message.digest.length < 1 || message.digest.length > MAX_DIGEST_BYTES
      ) {
        throw new RangeError(`Digest must be 1 to ${MAX_DIGEST_BYTES} bytes`);
      }
      fields.push(["bytes", message.digest]);
      break;
    case "digests": {
      const names = message.algorithms;
      if (names.length < 1 || names.length > MAX_DIGESTS) {
        throw new RangeError(
          `DIGESTS must name 1 to ${MAX_DIGESTS} algorithms`,
        );
      }
      fields.push(["u8", names.length]);
      for (const name of names) {
        if (!DIGEST_NAME_PATTERN.test(name)) {
          throw new RangeError(`Malformed digest algorithm name: ${name}`);
        }
        fields.push(["u8", name.length], ["bytes", encoder.encode(name)]);
      }
      break;
    }
    default:
      throw new TypeError(
        `Unknown message type: ${(message as { type: unknown }).type}`,
      );
  }
  return fields;
}

const FIELD_BYTES = { u8: 1, u16: 2, u32: 4, u64: 8, i64: 8 } as const;

/** Bytes of a whole `DATA` frame: the header and three 64-bit fields. */
export const DATA_FRAME_BYTES: number = FRAME_HEADER_BYTES + 24;

/**
 * Writes the `DATA` frame of `message` into `target` at `at`, byte for
 * byte as {@linkcode encodeMessage} makes it, without allocating a frame
 * (a server builds a small file's whole reply in one buffer).
 *
 * @param target Where to write.
 * @param at Offset in `target`.
 * @param message The `DATA` message.
 * @returns The bytes written, {@linkcode DATA_FRAME_BYTES}.
 * @throws {RangeError} As {@linkcode encodeMessage}, or if `target` is too
 * short.
 *
 * @example The same bytes as encodeMessage
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeMessage, writeDataFrame } from "./protocol.ts";
 * const message = { type: "data", size: 3, offset: 0, mtime: -1 } as const;
 * const target = new Uint8Array(40);
 * const n = writeDataFrame(target, 2, message);
 * assert.deepEqual(target.subarray(2, 2 + n), encodeMessage(message));
 * ```
 */
export function writeDataFrame(
  target: Uint8Array,
  at: number,
  message: DataMessage,
): number {
  const { size, offset, mtime } = message;
  checkUint(size, 64, "Size");
  checkUint(offset, 64, "Offset");
  checkInt64(mtime, "mtime");
  if (offset > size) throw new RangeError("Offset must not exceed size");
  if (at < 0 || at + DATA_FRAME_BYTES > target.length) {
    throw new RangeError("Target too short for a DATA frame");
  }
  const view = new DataView(
    target.buffer,
    target.byteOffset + at,
    DATA_FRAME_BYTES,
  );
  writeHeader(target, at, FRAME_TYPES.data, 24);
  writeInt64(view, FRAME_HEADER_BYTES, size);
  writeInt64(view, FRAME_HEADER_BYTES + 8, offset);
  writeInt64(view, FRAME_HEADER_BYTES + 16, mtime);
  return DATA_FRAME_BYTES;
}

/**
 * Writes the `HASH` frame of `digest` into `target` at `at`, byte for byte
 * as {@linkcode encodeMessage} makes it, without allocating a frame.
 *
 * @param target Where to write.
 * @param at Offset in `target`.
 * @param digest The digest (1 to {@linkcode MAX_DIGEST_BYTES} bytes).
 * @returns The bytes written.
 * @throws {RangeError} For a digest of another length, or if `target` is
 * too short.
 *
 * @example The same bytes as encodeMessage
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeMessage, writeHashFrame } from "./protocol.ts";
 * const digest = new Uint8Array(16).fill(7);
 * const target = new Uint8Array(32);
 * const n = writeHashFrame(target, 0, digest);
 * assert.deepEqual(target.subarray(0, n), encodeMessage({ type: "hash", digest }));
 * ```
 */
export function writeHashFrame(
  target: Uint8Array,
  at: number,
  digest: Uint8Array,
): number {
  if (digest.length < 1 || digest.length > MAX_DIGEST_BYTES) {
    throw new RangeError(`Digest must be 1 to ${MAX_DIGEST_BYTES} bytes`);
  }
  const length = FRAME_HEADER_BYTES + digest.length;
  if (at < 0 || at + length > target.length) {
    throw new RangeError("Target too short for a HASH frame");
  }
  writeHeader(target, at, FRAME_TYPES.hash, digest.length);
  target.set(digest, at + FRAME_HEADER_BYTES);
  return length;
}

/** A safe integer as a big-endian 64-bit field (two 32-bit halves). */
function writeInt64(view: DataView, at: number, value: number): void {
  view.setInt32(at, Math.floor(value / TWO_32));
  view.setUint32(at + 4, value >>> 0);
}

/**
 * Encodes one message as a complete frame (header and payload).
 *
 * Encoding takes two passes: the payload size is computed first, then one
 * buffer is allocated and filled.
 *
 * @param message The message to encode.
 * @returns The frame's bytes.
 * @throws {RangeError} If a field is out of range (a path longer than
 * {@linkcode MAX_PATH_BYTES}, a negative size, a payload larger than
 * {@linkcode MAX_FRAME_BYTES}, ...).
 *
 * @example Encode OK
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeMessage } from "./protocol.ts";
 * const frame = encodeMessage({ type: "ok" });
 * assert(frame.length === 5 && frame[0] === 0x02);
 * ```
 */
export function encodeMessage(message: Message): Uint8Array {
  const fields = payloadFields(message);
  let length = 0;
  for (const [kind, value] of fields) {
    length += kind === "bytes" ? value.length : FIELD_BYTES[kind];
  }
  if (length > MAX_FRAME_BYTES) {
    throw new RangeError(
      `Payload of ${length} bytes exceeds ${MAX_FRAME_BYTES} bytes`,
    );
  }
  const bytes = new Uint8Array(FRAME_HEADER_BYTES + length);
  const view = new DataView(bytes.buffer);
  view.setUint8(0, FRAME_TYPES[message.type]);
  view.setUint32(1, length);
  let at = FRAME_HEADER_BYTES;
  for (const field of fields) {
    switch (field[0]) {
      case "u8":
        view.setUint8(at, field[1]);
        break;
      case "u16":
        view.setUint16(at, field[1]);
        break;
      case "u32":
        view.setUint32(at, field[1]);
        break;
      case "u64":
      case "i64":
        if (!Number.isSafeInteger(field[1])) {
          throw new RangeError(`Not a safe integer: ${field[1]}`);
        }
        // Two 32-bit halves: exact, and no BigInt allocated per field.
        writeInt64(view, at, field[1]);
        break;
      case "bytes":
        bytes.set(field[1], at);
        at += field[1].length;
        continue;
    }
    at += FIELD_BYTES[field[0]];
  }
  return bytes;
}

/**
 * Encodes one message as a complete frame into `out` at `at`: the bytes of
 * {@linkcode encodeMessage}, without a buffer of its own. A `PUT` with a
 * short ASCII path and a `HASH` (a tree upload sends both per file) are
 * written field by field; anything else is encoded, then copied.
 *
 * @param message The message to encode.
 * @param out Where the frame goes.
 * @param at Its offset in `out`.
 * @returns The frame's length, or 0 if it does not fit (nothing written).
 * @throws {RangeError} As {@linkcode encodeMessage}.
 *
 * @example Two frames, one after the other
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeMessage, encodeMessageInto } from "./protocol.ts";
 * const out = new Uint8Array(64);
 * const n = encodeMessageInto({ type: "ok" }, out, 0);
 * const m = encodeMessageInto({ type: "stat", path: "a" }, out, n);
 * assert.deepEqual(out.subarray(n, n + m), encodeMessage({ type: "stat", path: "a" }));
 * ```
 */
export function encodeMessageInto(
  message: Message,
  out: Uint8Array,
  at: number,
): number {
  if (message.type === "hash") {
    const digest = message.digest;
    if (digest.length < 1 || digest.length > MAX_DIGEST_BYTES) {
      throw new RangeError(`Digest must be 1 to ${MAX_DIGEST_BYTES} bytes`);
    }
    if (at + FRAME_HEADER_BYTES + digest.length > out.length) return 0;
    return writeHashFrame(out, at, digest);
  }
  if (message.type === "put" && message.path.length <= ASCII_FAST_CHARS) {
    const path = message.path;
    const payload = 8 + 1 + 8 + 2 + path.length;
    if (at + FRAME_HEADER_BYTES + payload > out.length) {
      // Whether it fits is only known once checked: the long way says.
      return copyFrame(encodeMessage(message), out, at);
    }
    const flags = putFlags(message);
    if (!writeAscii(path, out, at + FRAME_HEADER_BYTES + 19)) {
      return copyFrame(encodeMessage(message), out, at);
    }
    const view = new DataView(out.buffer, out.byteOffset + at);
    writeHeader(out, at, FRAME_TYPES.put, payload);
    writeInt64(view, FRAME_HEADER_BYTES, message.size);
    view.setUint8(FRAME_HEADER_BYTES + 8, flags);
    writeInt64(view, FRAME_HEADER_BYTES + 9, message.mtime ?? 0);
    view.setUint16(FRAME_HEADER_BYTES + 17, path.length);
    return FRAME_HEADER_BYTES + payload;
  }
  if (message.type === "get" && message.path.length <= ASCII_FAST_CHARS) {
    // A tree download sends thousands: written in place, as PUT is.
    const path = message.path;
    const payload = 8 + 2 + path.length;
    if (at + FRAME_HEADER_BYTES + payload > out.length) {
      return copyFrame(encodeMessage(message), out, at);
    }
    checkUint(message.offset, 64, "Offset");
    if (!writeAscii(path, out, at + FRAME_HEADER_BYTES + 10)) {
      return copyFrame(encodeMessage(message), out, at);
    }
    const view = new DataView(out.buffer, out.byteOffset + at);
    writeHeader(out, at, FRAME_TYPES.get, payload);
    writeInt64(view, FRAME_HEADER_BYTES, message.offset);
    view.setUint16(FRAME_HEADER_BYTES + 8, path.length);
    return FRAME_HEADER_BYTES + payload;
  }
  return copyFrame(encodeMessage(message), out, at);
}

/**
 * Writes `path` at `start` if it is all ASCII, checked first: otherwise
 * nothing is written (the caller encodes it the long way, and writes
 * nothing at all if that does not fit).
 */
function writeAscii(path: string, out: Uint8Array, start: number): boolean {
  for (let i = 0; i < path.length; i++) {
    if (path.charCodeAt(i) >= 0x80) return false;
  }
  for (let i = 0; i < path.length; i++) out[start + i] = path.charCodeAt(i);
  return true;
}

/** A frame's type and payload length at `at`. */
function writeHeader(
  out: Uint8Array,
  at: number,
  type: number,
  length: number,
): void {
  out[at] = type;
  out[at + 1] = length >>> 24;
  out[at + 2] = (length >>> 16) & 0xff;
  out[at + 3] = (length >>> 8) & 0xff;
  out[at + 4] = length & 0xff;
}

/** Copies a whole frame into `out` at `at` if it fits; its length or 0. */
function copyFrame(frame: Uint8Array, out: Uint8Array, at: number): number {
  if (at + frame.length > out.length) return 0;
  out.set(frame, at);
  return frame.length;
}

/**
 * Size in bytes of the `ENTRIES` frame that would carry `entries`, so that a
 * sender can split a large listing into frames under
 * {@linkcode MAX_FRAME_BYTES}.
 *
 * @param entries The entries of one batch.
 * @returns The frame size, header included.
 *
 * @example Size a batch
 * ```ts
 * import assert from "node:assert/strict";
 * import { entriesFrameBytes } from "./protocol.ts";
 * const bytes = entriesFrameBytes([{ name: "a", kind: "file", size: 1, mtime: 0 }]);
 * assert(bytes === 5 + 4 + 19 + 1);
 * ```
 */
export function entriesFrameBytes(entries: readonly Entry[]): number {
  let length = FRAME_HEADER_BYTES + 4;
  for (const entry of entries) length += entryBytes(entry);
  return length;
}

/**
 * Size in bytes that one entry adds to an `ENTRIES` payload.
 *
 * @param entry The entry.
 * @returns Its encoded size.
 *
 * @example Size an entry
 * ```ts
 * import assert from "node:assert/strict";
 * import { entryBytes } from "./protocol.ts";
 * assert(entryBytes({ name: "ab", kind: "dir", size: 0, mtime: 0 }) === 21);
 * ```
 */
export function entryBytes(entry: Entry): number {
  return ENTRY_FIXED_BYTES + utf8Length(entry.name);
}

/**
 * The length of `text` in UTF-8 as `TextEncoder` writes it (a lone
 * surrogate becomes U+FFFD, 3 bytes), without encoding it.
 */
function utf8Length(text: string): number {
  let length = text.length;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) continue;
    if (code < 0x800) length += 1;
    else if (
      code >= 0xd800 && code <= 0xdbff && i + 1 < text.length &&
      (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00
    ) {
      length += 2; // a pair: 2 units, 4 bytes
      i++;
    } else length += 2;
  }
  return length;
}

const TWO_32 = 2 ** 32;
/** The largest high half of a safe integer: 2^53 - 1 = (2^21 - 1) * 2^32 + (2^32 - 1). */
const SAFE_HIGH = 2 ** 21 - 1;

/** Bounds-checked cursor over one payload. */
class PayloadCursor {
  #view: DataView;
  #bytes: Uint8Array;
  #at = 0;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  }

  #need(n: number, what: string): void {
    if (this.#at + n > this.#bytes.length) {
      throw new FerryError("BAD_REQUEST", `Frame too short: ${what}`);
    }
  }

  u8(what: string): number {
    this.#need(1, what);
    return this.#view.getUint8(this.#at++);
  }

  u16(what: string): number {
    this.#need(2, what);
    const value = this.#view.getUint16(this.#at);
    this.#at += 2;
    return value;
  }

  u32(what: string): number {
    this.#need(4, what);
    const value = this.#view.getUint32(this.#at);
    this.#at += 4;
    return value;
  }

  // 64-bit fields are read as two 32-bit halves: no BigInt per field, and
  // a high half past 21 bits is out of the safe range at once.
  u64(what: string): number {
    this.#need(8, what);
    const high = this.#view.getUint32(this.#at);
    const low = this.#view.getUint32(this.#at + 4);
    this.#at += 8;
    if (high > SAFE_HIGH) {
      throw new FerryError("BAD_REQUEST", `Number out of range: ${what}`);
    }
    return high * TWO_32 + low;
  }

  i64(what: string): number {
    this.#need(8, what);
    const high = this.#view.getInt32(this.#at);
    const low = this.#view.getUint32(this.#at + 4);
    this.#at += 8;
    // -2^53 itself (high -2^21, low 0) is one below the safe range.
    if (
      high > SAFE_HIGH || high < -SAFE_HIGH - 1 ||
      (high === -SAFE_HIGH - 1 && low === 0)
    ) {
      throw new FerryError("BAD_REQUEST", `Number out of range: ${what}`);
    }
    return high * TWO_32 + low;
  }

  bytes(n: number, what: string): Uint8Array {
    this.#need(n, what);
    const value = this.#bytes.slice(this.#at, this.#at + n);
    this.#at += n;
    return value;
  }

  text(n: number, what: string): string {
    this.#need(n, what);
    const value = this.#bytes.subarray(this.#at, this.#at + n);
    this.#at += n;
    const ascii = asciiText(value);
    if (ascii !== undefined) return ascii;
    try {
      return decoder.decode(value);
    } catch {
      throw new FerryError("BAD_REQUEST", `Invalid UTF-8: ${what}`);
    }
  }

  path(): string {
    const length = this.u16("path length");
    if (length > MAX_PATH_BYTES) {
      throw new FerryError(
        "TOO_LARGE",
        `Path longer than ${MAX_PATH_BYTES} bytes`,
      );
    }
    return this.text(length, "path");
  }

  entry(): Entry {
    const kind = this.u8("entry kind");
    if (kind !== KIND_CODES.file && kind !== KIND_CODES.dir) {
      throw new FerryError("BAD_REQUEST", `Unknown entry kind: ${kind}`);
    }
    const size = this.u64("entry size");
    const mtime = this.i64("entry mtime");
    const name = this.path();
    return {
      name,
      kind: kind === KIND_CODES.file ? "file" : "dir",
      size,
      mtime,
    };
  }

  end(): void {
    if (this.#at !== this.#bytes.length) {
      throw new FerryError(
        "BAD_REQUEST",
        `Frame has ${this.#bytes.length - this.#at} trailing bytes`,
      );
    }
  }
}

function decodePayload(type: Message["type"], payload: Uint8Array): Message {
  const cursor = new PayloadCursor(payload);
  let message: Message;
  switch (type) {
    case "hello": {
      const magic = cursor.bytes(MAGIC.length, "magic");
      if (!magic.every((byte, i) => byte === MAGIC[i])) {
        throw new FerryError("BAD_REQUEST", "Bad magic in HELLO");
      }
      const minVersion = cursor.u16("min version");
      const maxVersion = cursor.u16("max version");
      const flags = cursor.u16("flags");
      const nonceLength = cursor.u8("nonce length");
      if (nonceLength > MAX_NONCE_BYTES) {
        throw new FerryError(
          "BAD_REQUEST",
          `Nonce longer than ${MAX_NONCE_BYTES} bytes`,
        );
      }
      const nonce = cursor.bytes(nonceLength, "nonce");
      message = { type, minVersion, maxVersion, flags, nonce };
      break;
    }
    case "auth":
      message = { type, mac: cursor.bytes(SHA256_BYTES, "mac") };
      break;
    case "ok":
      message = { type };
      break;
    case "error": {
      const codeLength = cursor.u8("code length");
      const code = cursor.text(codeLength, "code");
      if (!ERROR_CODE_PATTERN.test(code)) {
        throw new FerryError("BAD_REQUEST", "Malformed error code");
      }
      const text = cursor.text(cursor.u16("message length"), "message");
      message = { type, code, message: text };
      break;
    }
    case "list": {
      const flags = cursor.u8("flags");
      if (flags & ~LIST_RECURSIVE) {
        throw new FerryError("BAD_REQUEST", `Unknown LIST flags: ${flags}`);
      }
      message = {
        type,
        recursive: flags === LIST_RECURSIVE,
        path: cursor.path(),
      };
      break;
    }
    case "stat":
      message = { type, path: cursor.path() };
      break;
    case "get": {
      const offset = cursor.u64("offset");
      message = { type, offset, path: cursor.path() };
      break;
    }
    case "put": {
      const size = cursor.u64("size");
      const flags = cursor.u8("flags");
      if (
        flags &
        ~(PUT_OVERWRITE | PUT_RESUME | PUT_HAS_MTIME | PUT_APPEND | PUT_EAGER)
      ) {
        throw new FerryError("BAD_REQUEST", `Unknown PUT flags: ${flags}`);
      }
      if ((flags & PUT_APPEND) && (flags & PUT_RESUME)) {
        throw new FerryError(
          "BAD_REQUEST",
          "PUT cannot both append and resume",
        );
      }
      const mtime = cursor.i64("mtime");
      const path = cursor.path();
      const put: PutMessage = {
        type,
        path,
        size,
        overwrite: (flags & PUT_OVERWRITE) !== 0,
        resume: (flags & PUT_RESUME) !== 0,
      };
      if (flags & PUT_HAS_MTIME) put.mtime = mtime;
      if (flags & PUT_APPEND) put.append = true;
      if (flags & PUT_EAGER) {
        try {
          checkEager(size, put);
        } catch (error) {
          throw new FerryError("BAD_REQUEST", (error as Error).message);
        }
        put.eager = true;
      }
      message = put;
      break;
    }
    case "mkdir": {
      const flags = cursor.u8("flags");
      if (flags & ~MKDIR_HAS_MTIME) {
        throw new FerryError("BAD_REQUEST", `Unknown MKDIR flags: ${flags}`);
      }
      const mtime = cursor.i64("mtime");
      const mkdir: MkdirMessage = { type, path: cursor.path() };
      if (flags & MKDIR_HAS_MTIME) mkdir.mtime = mtime;
      message = mkdir;
      break;
    }
    case "delete": {
      const flags = cursor.u8("flags");
      if (flags & ~DELETE_RECURSIVE) {
        throw new FerryError("BAD_REQUEST", `Unknown DELETE flags: ${flags}`);
      }
      message = {
        type,
        recursive: flags === DELETE_RECURSIVE,
        path: cursor.path(),
      };
      break;
    }
    case "sum": {
      const flags = cursor.u8("flags");
      if (flags & ~SUM_PREFIX) {
        throw new FerryError("BAD_REQUEST", `Unknown SUM flags: ${flags}`);
      }
      const length = cursor.u64("length");
      if (!(flags & SUM_PREFIX) && length !== 0) {
        throw new FerryError(
          "BAD_REQUEST",
          "SUM of a whole file with a length",
        );
      }
      const sum: SumMessage = { type, path: cursor.path() };
      if (flags & SUM_PREFIX) sum.length = length;
      message = sum;
      break;
    }
    case "entries": {
      const count = cursor.u32("entry count");
      // Each entry takes at least ENTRY_FIXED_BYTES: a count the payload
      // cannot hold is refused before any entry is allocated.
      if (count * ENTRY_FIXED_BYTES > payload.length) {
        throw new FerryError("BAD_REQUEST", "Entry count exceeds the frame");
      }
      const entries: Entry[] = [];
      for (let i = 0; i < count; i++) entries.push(cursor.entry());
      message = { type, entries };
      break;
    }
    case "end":
      message = { type, count: cursor.u32("count") };
      break;
    case "info":
      message = { type, entry: cursor.entry() };
      break;
    case "data": {
      const size = cursor.u64("size");
      const offset = cursor.u64("offset");
      const mtime = cursor.i64("mtime");
      if (offset > size) {
        throw new FerryError("BAD_REQUEST", "DATA offset exceeds size");
      }
      message = { type, size, offset, mtime };
      break;
    }
    case "ready":
      message = { type, offset: cursor.u64("offset") };
      break;
    case "hash": {
      const length = payload.length;
      if (length < 1 || length > MAX_DIGEST_BYTES) {
        throw new FerryError(
          "BAD_REQUEST",
          `HASH of ${length} bytes (1 to ${MAX_DIGEST_BYTES} allowed)`,
        );
      }
      message = { type, digest: cursor.bytes(length, "digest") };
      break;
    }
    case "digests": {
      const count = cursor.u8("digest count");
      if (count < 1 || count > MAX_DIGESTS) {
        throw new FerryError(
          "BAD_REQUEST",
          `DIGESTS must name 1 to ${MAX_DIGESTS} algorithms`,
        );
      }
      const algorithms: string[] = [];
      for (let i = 0; i < count; i++) {
        const name = cursor.text(
          cursor.u8("digest name length"),
          "digest name",
        );
        if (!DIGEST_NAME_PATTERN.test(name)) {
          throw new FerryError(
            "BAD_REQUEST",
            "Malformed digest algorithm name",
          );
        }
        algorithms.push(name);
      }
      message = { type, algorithms };
      break;
    }
  }
  cursor.end();
  return message;
}

/**
 * Decodes the frame at the start of `bytes`.
 *
 * The decoder is total: for any input it returns a message, returns
 * `undefined` (more bytes are needed), or throws a {@linkcode FerryError};
 * it never throws another kind of error and never allocates more than the
 * declared length allows.
 *
 * @param bytes Received bytes, starting at a frame boundary.
 * @param maxFrameBytes Largest payload accepted.
 * @returns The message and the number of bytes it took, or `undefined` when
 * `bytes` holds only part of a frame.
 * @throws {FerryError} `TOO_LARGE` if the declared payload exceeds
 * `maxFrameBytes` (reported as soon as the header is in), `BAD_REQUEST` for
 * an unknown type or a malformed payload.
 *
 * @example Decode one frame from a longer buffer
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeFrame, encodeMessage } from "./protocol.ts";
 * const ok = encodeMessage({ type: "ok" });
 * const both = new Uint8Array([...ok, ...ok]);
 * const first = decodeFrame(both);
 * assert(first?.message.type === "ok" && first.size === ok.length);
 * assert(decodeFrame(both.subarray(0, 3)) === undefined);
 * ```
 */
export function decodeFrame(
  bytes: Uint8Array,
  maxFrameBytes: number = MAX_FRAME_BYTES,
): { message: Message; size: number } | undefined {
  if (bytes.length < FRAME_HEADER_BYTES) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const typeByte = view.getUint8(0);
  const type = TYPE_NAMES.get(typeByte);
  if (type === undefined) {
    throw new FerryError(
      "BAD_REQUEST",
      `Unknown frame type: 0x${typeByte.toString(16).padStart(2, "0")}`,
    );
  }
  const length = view.getUint32(1);
  if (length > maxFrameBytes) {
    throw new FerryError(
      "TOO_LARGE",
      `Frame of ${length} bytes exceeds ${maxFrameBytes} bytes`,
    );
  }
  const size = FRAME_HEADER_BYTES + length;
  if (bytes.length < size) return undefined;
  const message = decodePayload(
    type,
    bytes.subarray(FRAME_HEADER_BYTES, size),
  );
  return { message, size };
}

/**
 * Computes the `AUTH` mac of a session: HMAC-SHA256 keyed with the shared
 * secret over the server nonce, the chosen version (`u16`), and the exact
 * bytes of the client's and the server's `HELLO` frames.
 *
 * It uses the Web Crypto API (`crypto.subtle`), which Deno, Node (19 and
 * later) and Bun all provide as a global, hence the promise: importing
 * `node:crypto` instead cost every process that imports this module tens
 * of milliseconds at start, whether it authenticates or not.
 *
 * @param secret The shared secret (a string is taken as UTF-8).
 * @param serverNonce The nonce of the server's `HELLO`.
 * @param version The protocol version the server chose.
 * @param clientHello The client's whole `HELLO` frame, header included.
 * @param serverHello The server's whole `HELLO` frame, header included.
 * @returns The 32-byte mac.
 *
 * @example Both sides compute the same mac
 * ```ts
 * import assert from "node:assert/strict";
 * import { authMac, encodeMessage, macEquals } from "./protocol.ts";
 * const nonce = crypto.getRandomValues(new Uint8Array(32));
 * const clientHello = encodeMessage({
 *   type: "hello", minVersion: 1, maxVersion: 1, flags: 0, nonce: new Uint8Array(32),
 * });
 * const serverHello = encodeMessage({ type: "hello", minVersion: 1, maxVersion: 1, flags: 1, nonce });
 * const mac = await authMac("s3cret", nonce, 1, clientHello, serverHello);
 * assert(macEquals(mac, await authMac("s3cret", nonce, 1, clientHello, serverHello)));
 * ```
 */
export async function authMac(
  secret: string | Uint8Array,
  serverNonce: Uint8Array,
  version: number,
  clientHello: Uint8Array,
  serverHello: Uint8Array,
): Promise<Uint8Array> {
  checkUint(version, 16, "version");
  const secretBytes = typeof secret === "string"
    ? encoder.encode(secret)
    : new Uint8Array(secret); // a copy: Web Crypto takes no shared buffer
  const key = await crypto.subtle.importKey(
    "raw",
    // HMAC pads a short key with zero bytes, so an empty secret is the same
    // key as one zero byte; Web Crypto refuses a zero-length key.
    secretBytes.length === 0 ? new Uint8Array(1) : secretBytes,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const message = new Uint8Array(
    serverNonce.length + 2 + clientHello.length + serverHello.length,
  );
  let offset = 0;
  for (
    const part of [
      serverNonce,
      new Uint8Array([version >> 8, version & 0xff]),
      clientHello,
      serverHello,
    ]
  ) {
    message.set(part, offset);
    offset += part.length;
  }
  return new Uint8Array(await crypto.subtle.sign("HMAC", key, message));
}

/**
 * Compares two macs or digests in constant time: the time depends on the
 * length, never on where the first difference is.
 *
 * @param a One value.
 * @param b The other value.
 * @returns Whether they are equal (always `false` for different lengths).
 *
 * @example Compare digests
 * ```ts
 * import assert from "node:assert/strict";
 * import { macEquals } from "./protocol.ts";
 * assert(macEquals(new Uint8Array(32), new Uint8Array(32)));
 * assert(!macEquals(new Uint8Array(32), new Uint8Array(31)));
 * ```
 */
export function macEquals(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a[i] ^ b[i];
  return difference === 0;
}

/**
 * Writes all of `bytes` to `writer`, looping over partial writes.
 *
 * @param writer Where to write, such as a `Deno.Conn` or `Deno.FsFile`.
 * @param bytes What to write.
 * @returns A promise that settles when every byte has been written.
 *
 * @example Write a frame
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeMessage, writeAll } from "./protocol.ts";
 * let total = 0;
 * await writeAll({ write: (p) => Promise.resolve((total += p.length, p.length)) },
 *   encodeMessage({ type: "ok" }));
 * assert(total === 5);
 * ```
 */
export async function writeAll(
  writer: ByteWriter,
  bytes: Uint8Array,
): Promise<void> {
  let at = 0;
  while (at < bytes.length) {
    at += await writer.write(at === 0 ? bytes : bytes.subarray(at));
  }
}

/**
 * Options of {@linkcode FrameReader}.
 *
 * @example Accept smaller frames
 * ```ts
 * import assert from "node:assert/strict";
 * import type { FrameReaderOptions } from "./protocol.ts";
 * const options: FrameReaderOptions = { maxFrameBytes: 64 * 1024 };
 * assert(options.maxFrameBytes === 65536);
 * ```
 */
export interface FrameReaderOptions {
  /**
   * Largest payload accepted.
   *
   * @default {1048576}
   */
  maxFrameBytes?: number;
}

const INITIAL_READ_BUFFER = 64 * 1024;

/**
 * Reads frames from a byte stream, and raw bytes between them.
 *
 * It keeps one buffer, grown only to the largest frame seen (never beyond
 * `FRAME_HEADER_BYTES + maxFrameBytes`). Raw bulk bytes are read through
 * {@linkcode FrameReader.read}, which hands out bytes already buffered first
 * and then reads straight into the caller's buffer without copying.
 *
 * @example Read two frames from a stream
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeMessage, FrameReader } from "./protocol.ts";
 * const bytes = new Uint8Array([
 *   ...encodeMessage({ type: "ok" }),
 *   ...encodeMessage({ type: "end", count: 2 }),
 * ]);
 * let sent = false;
 * const reader = new FrameReader({
 *   read(p) {
 *     if (sent) return Promise.resolve(null);
 *     sent = true;
 *     p.set(bytes);
 *     return Promise.resolve(bytes.length);
 *   },
 * });
 * assert((await reader.readMessage())?.type === "ok");
 * assert((await reader.readMessage())?.type === "end");
 * assert((await reader.readMessage()) === null);
 * ```
 */
export class FrameReader {
  #source: ByteReader;
  #maxFrameBytes: number;
  #buffer: Uint8Array = new Uint8Array(INITIAL_READ_BUFFER);
  #start = 0;
  #end = 0;

  /**
   * Wraps a byte source.
   *
   * @param source Where bytes come from, such as a `Deno.Conn`.
   * @param options Limits.
   */
  constructor(source: ByteReader, options: FrameReaderOptions = {}) {
    this.#source = source;
    this.#maxFrameBytes = options.maxFrameBytes ?? MAX_FRAME_BYTES;
  }

  /** Number of bytes received but not yet consumed. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /**
   * The bytes received and not yet consumed, without reading: a view that
   * holds until the next read or {@linkcode FrameReader.skip}.
   *
   * @returns The buffered bytes (possibly none).
   */
  bufferedBytes(): Uint8Array {
    return this.#buffer.subarray(this.#start, this.#end);
  }

  /**
   * Consumes `n` buffered bytes (frames and raw bytes decoded from
   * {@linkcode FrameReader.bufferedBytes}).
   *
   * @param n At most {@linkcode FrameReader.buffered} bytes.
   * @throws {RangeError} If fewer are buffered.
   */
  skip(n: number): void {
    if (!(n >= 0 && n <= this.buffered)) {
      throw new RangeError(`Cannot skip ${n} of ${this.buffered} bytes`);
    }
    this.#start += n;
    if (this.#start === this.#end) this.#start = this.#end = 0;
  }

  /**
   * Reads until at least `n` bytes are buffered, for a caller that knows
   * how long what comes is (a small file's whole reply, taken from
   * {@linkcode FrameReader.bufferedBytes}); the buffer grows to at most `n`.
   *
   * @param n Bytes wanted, at most a header and the largest frame accepted.
   * @returns False if the stream ended first.
   * @throws {RangeError} If `n` is over that limit.
   */
  async fill(n: number): Promise<boolean> {
    if (!(n >= 0 && n <= FRAME_HEADER_BYTES + this.#maxFrameBytes)) {
      throw new RangeError(`Cannot buffer ${n} bytes`);
    }
    while (this.buffered < n) {
      if (!await this.#fill(n)) return false;
    }
    return true;
  }

  /**
   * Whether a whole frame is buffered: the next {@linkcode readMessage}
   * returns (or fails) without reading the source.
   */
  get frameBuffered(): boolean {
    const have = this.buffered;
    if (have < FRAME_HEADER_BYTES) return false;
    const length = new DataView(
      this.#buffer.buffer,
      this.#buffer.byteOffset + this.#start,
    ).getUint32(1);
    return have >= FRAME_HEADER_BYTES + length;
  }

  /** Reads more bytes into the buffer; returns false at end of stream. */
  async #fill(minimum: number): Promise<boolean> {
    if (this.#buffer.length - this.#start < minimum) {
      if (this.#start > 0) {
        this.#buffer.copyWithin(0, this.#start, this.#end);
        this.#end -= this.#start;
        this.#start = 0;
      }
      // Grow only when the buffer is full, and at most double it: memory
      // follows the bytes a peer has actually sent, not the length it
      // declared (a bare header costs nothing).
      if (this.#end === this.#buffer.length) {
        const grown = new Uint8Array(
          Math.min(minimum, this.#buffer.length * 2),
        );
        grown.set(this.#buffer.subarray(0, this.#end));
        this.#buffer = grown;
      }
    }
    const n = await this.#source.read(this.#buffer.subarray(this.#end));
    if (n === null) return false;
    this.#end += n;
    return true;
  }

  /**
   * Waits until at least one byte is buffered and returns a view of the
   * buffered bytes without consuming them (valid until the next read).
   *
   * @returns The buffered bytes, or `null` at end of stream.
   */
  async peek(): Promise<Uint8Array | null> {
    if (this.buffered === 0) {
      this.#start = this.#end = 0;
      if (!await this.#fill(1)) return null;
    }
    return this.#buffer.subarray(this.#start, this.#end);
  }

  /**
   * Reads the next frame.
   *
   * @returns The message, or `null` when the stream ends cleanly between
   * frames.
   * @throws {FerryError} `TRUNCATED` if the stream ends inside a frame, and
   * whatever {@linkcode decodeFrame} throws for a bad frame.
   */
  async readMessage(): Promise<Message | null> {
    while (true) {
      const decoded = decodeFrame(
        this.#buffer.subarray(this.#start, this.#end),
        this.#maxFrameBytes,
      );
      if (decoded) {
        this.#start += decoded.size;
        if (this.#start === this.#end) this.#start = this.#end = 0;
        return decoded.message;
      }
      const have = this.buffered;
      const need = have < FRAME_HEADER_BYTES
        ? FRAME_HEADER_BYTES
        : FRAME_HEADER_BYTES +
          new DataView(
            this.#buffer.buffer,
            this.#buffer.byteOffset + this.#start,
          ).getUint32(1);
      if (!await this.#fill(need)) {
        if (have === 0) return null;
        throw new FerryError(
          "TRUNCATED",
          `Stream ended inside a frame after ${have} bytes`,
        );
      }
    }
  }

  /**
   * Reads raw bytes: buffered ones first, then straight from the source.
   *
   * @param p Where to put the bytes.
   * @returns The number of bytes read, or `null` at end of stream.
   */
  async read(p: Uint8Array): Promise<number | null> {
    if (p.length === 0) return 0;
    const have = this.buffered;
    if (have === 0) return await this.#source.read(p);
    const n = Math.min(have, p.length);
    p.set(this.#buffer.subarray(this.#start, this.#start + n));
    this.#start += n;
    if (this.#start === this.#end) this.#start = this.#end = 0;
    return n;
  }
}
