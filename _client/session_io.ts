/**
 * What the pipelined transfers (`_client/tree_get.ts`, `_client/tree_put.ts`) need from a
 * {@linkcode ./client.ts FerryClient} session, and the per-file outcome they
 * report. The client builds one {@linkcode SessionIo} per call, inside its
 * request queue, so no other call interleaves with a pipeline.
 *
 * @module
 */

import type { BulkBuffers } from "../_common/copy.ts";
import type { TransferResult } from "./types.ts";
import { messageOf } from "../_common/text.ts";
import { FerryError } from "../errors.ts";
import type {
  ByteReader,
  ByteWriter,
  DigestAlgorithm,
  Message,
} from "../protocol.ts";

/** Default number of requests sent ahead of their replies. */
export const DEFAULT_WINDOW = 32;

/**
 * The window a pipeline keeps: the option, whole and at least 1.
 *
 * @param window The `window` option, if given.
 * @returns Requests sent ahead of their replies.
 */
export function windowOf(window: number | undefined): number {
  return Math.max(1, Math.floor(window ?? DEFAULT_WINDOW));
}

/**
 * The frame-level side of a session, as {@linkcode ./client.ts FerryClient}
 * exposes it to its pipelines.
 */
export interface SessionIo {
  /** Encodes messages and writes them in one write. */
  send(messages: readonly Message[]): Promise<void>;
  /** Reads the next frame; `ERROR` throws a recoverable `FerryError`. */
  expect<T extends Message["type"]>(
    ...types: T[]
  ): Promise<Extract<Message, { type: T }>>;
  /** Raw bytes from the server (after `DATA`). */
  readonly source: ByteReader;
  /**
   * The bytes received from the server and not yet read, without reading
   * (frames and raw bytes; a view valid until the next read or `consume`).
   */
  buffered?(): Uint8Array;
  /** Consumes `n` of the {@linkcode SessionIo.buffered} bytes. */
  consume?(n: number): void;
  /**
   * Reads until `n` bytes are buffered (at most a frame's worth); false if
   * the session ended first.
   */
  fill?(n: number): Promise<boolean>;
  /** Raw bytes to the server (after `READY`). */
  readonly sink: ByteWriter;
  /** The digest algorithm agreed in the handshake, for every `HASH`. */
  readonly digest: DigestAlgorithm;
  /** Whether the server takes eager `PUT`s (see `protocol.ts`). */
  readonly eagerPut: boolean;
  /** The session's reused bulk buffers. */
  buffers(): BulkBuffers;
  /** Whether the frames are still in step with the server after `error`. */
  recoverable(error: unknown): boolean;
  /** Marks `error` as leaving the session in step; returns it. */
  keep(error: unknown): unknown;
  /** Closes the session (after an error that is not recoverable). */
  close(): void;
}

/**
 * The outcome of one file or folder of a pipelined transfer.
 *
 * @example A failed file
 * ```ts
 * import assert from "node:assert/strict";
 * import { FerryError } from "../errors.ts";
 * import type { FileOutcome } from "./session_io.ts";
 * const outcome: FileOutcome = {
 *   path: "docs/x", kind: "file", error: new FerryError("NOT_FOUND", "Not found: docs/x"),
 * };
 * assert(outcome.error?.code === "NOT_FOUND");
 * ```
 */
export interface FileOutcome {
  /** Path on the server (as requested or as listed). */
  path: string;
  /** `"file"` or `"dir"`. */
  kind: "file" | "dir";
  /** Local path, when there is one. */
  local?: string;
  /** What was transferred, on success of a file. */
  result?: TransferResult;
  /** Why it failed; absent on success. */
  error?: FerryError;
}

/**
 * Turns anything thrown into a `FerryError` (local errors become `LOCAL`).
 *
 * @param error What was thrown.
 * @returns A `FerryError`.
 */
export function asFerryError(error: unknown): FerryError {
  if (error instanceof FerryError) return error;
  return new FerryError("LOCAL", messageOf(error), { cause: error });
}
