/**
 * `GET` and `HEAD` of a file through the HTTP face: validators and
 * conditional requests (`_server/http/conditional.ts`), a single byte
 * range (`_server/http/range.ts`), and the body streamed from the open
 * file (`_server/http/file_body.ts`). The file is resolved and opened
 * through the root jail and proven inside the root before a byte is read.
 *
 * @module
 */

import type { ResolvedPath } from "../path_jail.ts";
import { openResolvedFile } from "../open_file.ts";
import type { ServerContext } from "../context.ts";
import { FerryError } from "../../errors.ts";
import { notModified, rangeAllowed } from "./conditional.ts";
import {
  baseHeaders,
  contentDisposition,
  contentTypeOf,
  FILE_CSP,
  validatorsOf,
} from "./headers.ts";
import { parseRange } from "./range.ts";
import { fileBody } from "./file_body.ts";
import type { HttpExchange } from "./exchange.ts";

/** Files up to this size are read whole and sent without a stream. */
const SMALL_BODY_BYTES = 64 * 1024;

/**
 * The SHA-256 of this version of the file, when the server's hash cache
 * knows it (nothing is hashed here).
 */
function knownSha256(
  context: ServerContext,
  hostPath: string,
  info: Deno.FileInfo,
): Uint8Array | undefined {
  return context.hashCache?.lookup(hostPath, info, "sha256");
}

/**
 * Answers `GET` or `HEAD` of a resolved regular file.
 *
 * @param exchange The request and its log record.
 * @param context The server's settings.
 * @param found The file, resolved by the jail.
 * @returns The response; a streamed body reports its end to `exchange`.
 * @throws {FerryError} `FORBIDDEN` if the file opened is not a regular
 * file inside the root, `NOT_FOUND` if it vanished.
 */
export async function serveFile(
  exchange: HttpExchange,
  context: ServerContext,
  found: ResolvedPath,
): Promise<Response> {
  const { request } = exchange;
  const wirePath = exchange.wirePath;
  // Opened without blocking, only if a regular file, and proven inside the
  // root (a folder on the path may have been swapped since it was resolved).
  const { file, before: info } = await openResolvedFile(
    context.realRoot,
    found.hostPath,
    wirePath,
  );
  let owned = true;
  try {
    const size = info.size;
    const validators = validatorsOf(
      info,
      knownSha256(context, found.hostPath, info),
    );
    const headers = baseHeaders();
    headers.set("etag", validators.etag);
    if (validators.lastModified) {
      headers.set("last-modified", validators.lastModified);
    }
    headers.set("accept-ranges", "bytes");
    if (notModified(request.headers, validators)) {
      return new Response(null, { status: 304, headers });
    }
    const name = found.segments.at(-1) ?? "";
    headers.set("content-type", contentTypeOf(name));
    const download = new URLSearchParams(exchange.query).has("download");
    headers.set(
      "content-disposition",
      contentDisposition(download ? "attachment" : "inline", name),
    );
    headers.set("content-security-policy", FILE_CSP);
    if (validators.reprDigest) {
      headers.set("repr-digest", validators.reprDigest);
    }
    let range = parseRange(
      request.method === "GET" || request.method === "HEAD"
        ? request.headers.get("range")
        : null,
      size,
    );
    if (
      range.kind !== "whole" &&
      !rangeAllowed(request.headers, validators, Date.now())
    ) {
      range = { kind: "whole" };
    }
    if (range.kind === "unsatisfiable") {
      headers.set("content-range", `bytes */${size}`);
      headers.delete("content-type");
      headers.delete("content-disposition");
      exchange.result = "RANGE";
      return new Response(null, { status: 416, headers });
    }
    let start = 0;
    let length = size;
    let status = 200;
    if (range.kind === "part") {
      start = range.start;
      length = range.end - range.start + 1;
      status = 206;
      headers.set("content-range", `bytes ${range.start}-${range.end}/${size}`);
    }
    headers.set("content-length", String(length));
    if (request.method === "HEAD" || length === 0) {
      return new Response(null, { status, headers });
    }
    if (start > 0) file.seek(start);
    if (length <= SMALL_BODY_BYTES) {
      const bytes = new Uint8Array(length);
      let read = 0;
      while (read < length) {
        const n = await file.read(bytes.subarray(read));
        if (n === null) break;
        read += n;
      }
      if (read < length) {
        throw new FerryError(
          "CHANGED",
          `File changed while it was read: ${wirePath}`,
        );
      }
      exchange.bytes = length;
      return new Response(bytes, { status, headers });
    }
    owned = false; // the body closes the file from here
    const body = fileBody(file, length, {
      transfers: exchange.transfers,
      onEnd: (bytes, error) => exchange.end(bytes, error),
    });
    exchange.deferEnd();
    return new Response(body, { status, headers });
  } finally {
    if (owned) file.close();
  }
}
