/**
 * The `--json` output of `get` and `put`: one JSON object per file on its
 * own line of stdout (JSON Lines), so that scripts can check what happened.
 *
 * ```json
 * {"name":"docs/a.txt","kind":"file","bytes":4096,"algorithm":"xxh3-128","digest":"54182c58…","sha256":null,"seconds":0.004,"status":"ok"}
 * {"name":"docs/b.txt","kind":"file","bytes":3,"algorithm":"sha256","digest":"98ea6e4f…","sha256":"98ea6e4f…","seconds":0.001,"status":"ok"}
 * {"name":"docs/x","kind":"file","bytes":0,"algorithm":null,"digest":null,"sha256":null,"seconds":null,"status":"failed","error":{"code":"NOT_FOUND","message":"Not found: docs/x"}}
 * ```
 *
 * `digest` is the whole file's digest in `algorithm` (the session's:
 * `xxh3-128` by default, `sha256` with `--sha256`), lowercase hex.
 * `sha256` repeats it when the algorithm is SHA-256 and is `null`
 * otherwise (it was the only digest before protocol version 2).
 *
 * A sync (`--sync`) writes one record per entry, files and folders, with
 * the status `created`, `updated`, `appended`, `unchanged`, `deleted` or
 * `failed`, and `sent`, the file bytes that crossed the wire:
 *
 * ```json
 * {"name":"logs/app.log","kind":"file","bytes":2048,"algorithm":"xxh3-128","digest":"5d41…","sha256":null,"seconds":0.002,"status":"appended","sent":1024}
 * ```
 *
 * @module
 */

import { safeJson } from "../_common/escape.ts";
import type { TransferResult } from "./types.ts";
import type { FerryError } from "../errors.ts";
import type { SyncRecord } from "./sync_report.ts";
import type { DigestAlgorithm } from "../protocol.ts";

/**
 * One line of `--json` output.
 *
 * @example A success
 * ```ts
 * import assert from "node:assert/strict";
 * import type { JsonFileRecord } from "./json_output.ts";
 * const record: JsonFileRecord = {
 *   name: "a.txt", kind: "file", bytes: 3, algorithm: "xxh3-128", digest: "ab",
 *   sha256: null, seconds: 0.1, status: "ok",
 * };
 * assert(record.status === "ok");
 * ```
 */
export interface JsonFileRecord {
  /** Path on the server. */
  name: string;
  /**
   * `"file"`, or `"dir"` for a folder that failed (in a sync, any folder;
   * a deleted entry may also be `"link"` or `"other"`).
   */
  kind: "file" | "dir" | "link" | "other";
  /** Size of the file (0 when it failed). */
  bytes: number;
  /** The session's digest algorithm, or `null` when it failed. */
  algorithm: DigestAlgorithm | null;
  /** The file's digest in `algorithm`, lowercase hex, or `null`. */
  digest: string | null;
  /** The same as `digest` when `algorithm` is `"sha256"`, else `null`. */
  sha256: string | null;
  /** Duration of the transfer, or `null` when it failed. */
  seconds: number | null;
  /** `"ok"` or `"failed"`; in a sync, the entry's {@linkcode SyncRecord} status. */
  status: "ok" | SyncRecord["status"];
  /** In a sync: file bytes that crossed the wire. */
  sent?: number;
  /** Why it failed. */
  error?: { code: string; message: string };
}

/**
 * The JSON line for one file or folder.
 *
 * @param name Path on the server.
 * @param outcome `result` on success, `error` on failure; `kind` defaults
 * to `"file"`.
 * @returns One line of JSON, without the newline.
 *
 * @example A failure
 * ```ts
 * import assert from "node:assert/strict";
 * import { FerryError } from "../errors.ts";
 * import { jsonLine } from "./json_output.ts";
 * const line = jsonLine("x", { error: new FerryError("NOT_FOUND", "Not found: x") });
 * assert(JSON.parse(line).error.code === "NOT_FOUND");
 * ```
 */
export function jsonLine(
  name: string,
  outcome: {
    kind?: "file" | "dir";
    result?: TransferResult;
    error?: FerryError;
  },
): string {
  const kind = outcome.kind ?? "file";
  const record: JsonFileRecord = outcome.error || !outcome.result
    ? {
      name,
      kind,
      bytes: 0,
      algorithm: null,
      digest: null,
      sha256: null,
      seconds: null,
      status: "failed",
      error: {
        code: outcome.error?.code ?? "INTERNAL",
        message: outcome.error?.message ?? "Unknown failure",
      },
    }
    : {
      name,
      kind,
      bytes: outcome.result.bytes,
      algorithm: outcome.result.algorithm,
      digest: outcome.result.digest,
      sha256: outcome.result.algorithm === "sha256"
        ? outcome.result.digest
        : null,
      seconds: Math.round(outcome.result.seconds * 1e6) / 1e6,
      status: "ok",
    };
  return safeJson(record);
}

/**
 * The JSON line for one entry of a sync.
 *
 * @param record The entry's record.
 * @returns One line of JSON, without the newline.
 *
 * @example An unchanged file
 * ```ts
 * import assert from "node:assert/strict";
 * import { syncJsonLine } from "./json_output.ts";
 * const line = syncJsonLine({ name: "a", kind: "file", status: "unchanged", size: 3, bytes: 0 });
 * assert(JSON.parse(line).status === "unchanged");
 * ```
 */
export function syncJsonLine(record: SyncRecord): string {
  const json: JsonFileRecord = {
    name: record.name,
    kind: record.kind,
    bytes: record.size,
    algorithm: record.algorithm ?? null,
    digest: record.digest ?? null,
    sha256: record.algorithm === "sha256" ? record.digest ?? null : null,
    seconds: record.seconds === undefined
      ? null
      : Math.round(record.seconds * 1e6) / 1e6,
    status: record.status,
    sent: record.bytes,
  };
  if (record.error) {
    json.error = { code: record.error.code, message: record.error.message };
  }
  return safeJson(json);
}
