/**
 * The `--json` output of `get` and `put`: one JSON object per file on its
 * own line of stdout (JSON Lines), so that scripts can check what happened.
 *
 * ```json
 * {"name":"docs/a.txt","kind":"file","bytes":4096,"sha256":"9f86…","seconds":0.004,"status":"ok"}
 * {"name":"docs/x","kind":"file","bytes":0,"sha256":null,"seconds":null,"status":"failed","error":{"code":"NOT_FOUND","message":"Not found: docs/x"}}
 * ```
 *
 * A sync (`--sync`) writes one record per entry, files and folders, with
 * the status `created`, `updated`, `appended`, `unchanged`, `deleted` or
 * `failed`, and `sent`, the file bytes that crossed the wire:
 *
 * ```json
 * {"name":"logs/app.log","kind":"file","bytes":2048,"sha256":"5d41…","seconds":0.002,"status":"appended","sent":1024}
 * ```
 *
 * @module
 */

import { safeJson } from "../_common/escape.ts";
import type { TransferResult } from "./types.ts";
import type { FerryError } from "../errors.ts";
import type { SyncRecord } from "./sync_report.ts";

/**
 * One line of `--json` output.
 *
 * @example A success
 * ```ts
 * import assert from "node:assert/strict";
 * import type { JsonFileRecord } from "./json_output.ts";
 * const record: JsonFileRecord = {
 *   name: "a.txt", kind: "file", bytes: 3, sha256: "ab", seconds: 0.1, status: "ok",
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
  /** SHA-256, lowercase hex, or `null` when it failed. */
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
      sha256: outcome.result.sha256,
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
    sha256: record.sha256 ?? null,
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
