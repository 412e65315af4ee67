/**
 * Uploads through the HTTP face (only with `allowUpload`): `PUT /path`
 * with the file as the body (`curl -T`), and `POST /folder/` with the
 * listing page's `multipart/form-data` form. Both go the way of a ferry
 * `PUT`: a fresh `.ferry-<hex>.part` temporary in the target folder,
 * proven inside the root once opened, the bytes counted against
 * `maxUploadBytes` and hashed (SHA-256) as they arrive, then moved into
 * place (`_server/put.ts`); any failure removes the temporary and leaves
 * nothing at the target.
 *
 * `PUT` replaces an existing file unless the request says
 * `If-None-Match: *` (then `412`); a `Repr-Digest` or `Content-Digest`
 * header with a `sha-256` value (RFC 9530) is checked against the bytes
 * received, and a mismatch keeps nothing (`400`). Answers `201 Created` or
 * `204 No Content` (replaced), with the `Repr-Digest` of what was stored.
 *
 * A form upload never replaces a file (`409`), refuses a request whose
 * `Origin` is another site (a page elsewhere cannot post into the root
 * with the browser's saved credentials), and answers `303 See Other` back
 * to the listing, so it works without JavaScript.
 *
 * @module
 */

import * as nodePath from "node:path";
import { createHash, type Hash } from "node:crypto";
import { Buffer } from "node:buffer";
import {
  checkOpened,
  removeOpened,
  resolveExisting,
  resolveTarget,
} from "../path_jail.ts";
import type { HostFile } from "../host_file.ts";
import { createTemporary } from "../file_in_folder.ts";
import type { ServerContext } from "../context.ts";
import { cacheUpload, place } from "../put.ts";
import { refuseTempName, tempName } from "../temp.ts";
import { segmentProblem } from "../../_common/wire_path.ts";
import { FerryError } from "../../errors.ts";
import { writeAll } from "../../protocol.ts";
import { BodyReader } from "./body_reader.ts";
import type { HttpExchange } from "./exchange.ts";
import { baseHeaders } from "./headers.ts";
import { errorResponse } from "./status.ts";
import { hrefOf } from "./listing.ts";
import { formBoundary, MultipartReader } from "./multipart.ts";
import type { RequestPath } from "./request_path.ts";
import type { Transfer } from "./transfers.ts";

/** Bytes of the buffer a `PUT` body is read into. */
const PUT_BUFFER_BYTES = 1024 * 1024;
/** Most parts a form may have. */
const MAX_FORM_PARTS = 1000;

/** One upload being written to its temporary file. */
class Upload {
  readonly tempPath: string;
  readonly hash: Hash = createHash("sha256");
  bytes = 0;
  #file: HostFile;
  #open = true;
  #limit: number;
  #realRoot: string;

  private constructor(
    tempPath: string,
    file: HostFile,
    context: ServerContext,
  ) {
    this.tempPath = tempPath;
    this.#file = file;
    this.#limit = context.limits.maxUploadBytes;
    this.#realRoot = context.realRoot;
  }

  /**
   * A fresh temporary in `folder` (strict mode: made in the folder opened
   * from the root, `_server/file_in_folder.ts`), proven inside the root.
   */
  static async create(
    context: ServerContext,
    folder: string,
    wirePath: string,
  ): Promise<Upload> {
    const tempPath = nodePath.join(folder, tempName());
    const file = await createTemporary(context.realRoot, tempPath, wirePath);
    const upload = new Upload(tempPath, file, context);
    try {
      await checkOpened(context.realRoot, tempPath, wirePath, file);
    } catch (error) {
      await upload.discard();
      throw error;
    }
    return upload;
  }

  /** Appends a chunk (counted, hashed, written). */
  async write(chunk: Uint8Array): Promise<void> {
    this.bytes += chunk.length;
    if (this.bytes > this.#limit) {
      throw new FerryError(
        "TOO_LARGE",
        `Upload exceeds the limit of ${this.#limit} bytes`,
      );
    }
    this.hash.update(chunk);
    await writeAll(this.#file, chunk);
  }

  /** Flushes and closes the file; returns its SHA-256. */
  async finish(): Promise<Uint8Array> {
    await this.#file.syncData();
    this.#file.close();
    this.#open = false;
    return this.hash.digest();
  }

  /**
   * Removes the temporary (wherever its name is now, and only if that
   * name is still this file) and closes it.
   */
  async discard(): Promise<void> {
    if (this.#open) {
      await removeOpened(this.#realRoot, this.tempPath, this.#file);
      this.#open = false;
      this.#file.close();
      return;
    }
    await Deno.remove(this.tempPath).catch(() => {
      // Already placed or gone.
    });
  }
}

/**
 * The `sha-256` value of a `Repr-Digest`/`Content-Digest` header, if any.
 *
 * @throws {FerryError} `BAD_REQUEST` if it is malformed.
 */
function expectedSha256(headers: Headers): Uint8Array | undefined {
  for (const name of ["repr-digest", "content-digest"]) {
    const value = headers.get(name);
    if (value === null) continue;
    const match = /(?:^|,)\s*sha-256\s*=\s*:([A-Za-z0-9+/]*={0,2}):/i.exec(
      value,
    );
    if (!match) continue;
    const bytes = Buffer.from(match[1], "base64");
    if (bytes.length !== 32) {
      throw new FerryError("BAD_REQUEST", `Malformed ${name} sha-256 value`);
    }
    return new Uint8Array(bytes);
  }
  return undefined;
}

/** Watches an upload's body for the idle timeout and the drain. */
function watch(exchange: HttpExchange, reader: BodyReader): Transfer {
  const transfer: Transfer = {
    lastActivity: performance.now(),
    cut(reason: Error): void {
      void reader.cancel(reason);
    },
  };
  exchange.transfers.add(transfer);
  return transfer;
}

/**
 * Answers `PUT`: the body becomes the file at the request path.
 *
 * @param exchange The request.
 * @param context The server's settings.
 * @param target The decoded request path.
 * @returns `201`, or `204` when a file was replaced.
 */
export async function handlePutUpload(
  exchange: HttpExchange,
  context: ServerContext,
  target: RequestPath,
): Promise<Response> {
  const { request } = exchange;
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > context.limits.maxUploadBytes) {
    throw new FerryError(
      "TOO_LARGE",
      `Upload of ${declared} bytes exceeds the limit of ${context.limits.maxUploadBytes} bytes`,
    );
  }
  const expected = expectedSha256(request.headers);
  const place_ = await resolveTarget(context.realRoot, target.wirePath);
  const createOnly = request.headers.get("if-none-match")?.trim() === "*";
  if (place_.existing && createOnly) {
    const exists = new FerryError("EXISTS", `Exists: ${target.wirePath}`);
    return errorResponse(exchange, exists, 412);
  }
  await context.uploadParts.sweep(place_.folder);
  const upload = await Upload.create(context, place_.folder, target.wirePath);
  let placed = false;
  const reader = request.body ? new BodyReader(request.body) : undefined;
  const transfer = reader ? watch(exchange, reader) : undefined;
  try {
    let buffer = new Uint8Array(new ArrayBuffer(PUT_BUFFER_BYTES));
    while (reader) {
      const read = await reader.readInto(buffer, 0);
      buffer = read.buffer;
      if (read.done) break;
      transfer!.lastActivity = performance.now();
      await upload.write(buffer.subarray(0, read.n));
      exchange.bytes = upload.bytes;
    }
    if (declared !== null && upload.bytes !== Number(declared)) {
      throw new FerryError("CONNECTION", "Upload cut short");
    }
    const digest = await upload.finish();
    if (expected && !Buffer.from(digest).equals(Buffer.from(expected))) {
      throw new FerryError(
        "INTEGRITY",
        `SHA-256 mismatch, upload discarded: ${target.wirePath}`,
      );
    }
    const ours = await Deno.stat(upload.tempPath);
    await place(upload.tempPath, place_.hostPath, {
      path: target.wirePath,
      overwrite: !createOnly,
    }, context.realRoot);
    placed = true;
    await cacheUpload(context, place_.hostPath, ours, {
      algorithm: "sha256",
      digest,
    });
    const headers = baseHeaders();
    headers.set(
      "repr-digest",
      `sha-256=:${Buffer.from(digest).toString("base64")}:`,
    );
    headers.set("location", hrefOf(target.segments, false));
    if (place_.existing) return new Response(null, { status: 204, headers });
    headers.set("content-type", "text/plain; charset=utf-8");
    return new Response("Created\n", { status: 201, headers });
  } catch (error) {
    if (error instanceof FerryError && error.code === "EXISTS") {
      return errorResponse(exchange, error, 412);
    }
    throw error;
  } finally {
    if (transfer) exchange.transfers.delete(transfer);
    if (!placed) await upload.discard();
    if (reader && !placed) await reader.cancel(new Error("Upload refused"));
  }
}

/**
 * Answers a form `POST` to a folder: each file field becomes a new file in
 * it.
 *
 * @param exchange The request.
 * @param context The server's settings.
 * @param target The decoded request path (a folder).
 * @returns `303` back to the folder's listing.
 */
export async function handleFormUpload(
  exchange: HttpExchange,
  context: ServerContext,
  target: RequestPath,
): Promise<Response> {
  const { request } = exchange;
  const origin = request.headers.get("origin");
  if (origin !== null && origin !== "null") {
    let host: string | undefined;
    try {
      host = new URL(origin).host;
    } catch {
      host = undefined;
    }
    if (host !== request.headers.get("host")) {
      throw new FerryError("FORBIDDEN", "Form posted from another site");
    }
  }
  const boundary = formBoundary(request.headers.get("content-type"));
  const folder = await resolveExisting(context.realRoot, target.wirePath);
  if (!folder.info.isDirectory) {
    throw new FerryError("NOT_FOUND", `Not a folder: ${target.wirePath}`);
  }
  if (!request.body) throw new FerryError("BAD_REQUEST", "Empty form");
  const reader = new BodyReader(request.body);
  const transfer = watch(exchange, reader);
  const form = new MultipartReader(reader, boundary);
  let done = false;
  try {
    for (let count = 0;; count++) {
      const part = await form.nextPart();
      if (part === null) break;
      if (count >= MAX_FORM_PARTS) {
        throw new FerryError("TOO_LARGE", "Too many form parts");
      }
      if (part.filename === undefined || part.filename === "") continue;
      // Some browsers send a path: keep its last name.
      const name = part.filename.split(/[\\/]/).at(-1)!;
      const problem = segmentProblem(name);
      if (problem !== undefined) {
        throw new FerryError(
          "BAD_REQUEST",
          `File name not allowed (${problem})`,
        );
      }
      const segments = [...folder.segments, name];
      const wirePath = segments.join("/");
      refuseTempName(segments, wirePath);
      const file = await resolveTarget(context.realRoot, wirePath);
      if (file.existing) {
        throw new FerryError("EXISTS", `Already exists: ${wirePath}`);
      }
      const upload = await Upload.create(context, file.folder, wirePath);
      let placed = false;
      try {
        await form.readData(async (chunk) => {
          transfer.lastActivity = performance.now();
          await upload.write(chunk);
        });
        const digest = await upload.finish();
        const ours = await Deno.stat(upload.tempPath);
        await place(upload.tempPath, file.hostPath, {
          path: wirePath,
          overwrite: false,
        }, context.realRoot);
        placed = true;
        exchange.bytes += upload.bytes;
        await cacheUpload(context, file.hostPath, ours, {
          algorithm: "sha256",
          digest,
        });
      } finally {
        if (!placed) await upload.discard();
      }
    }
    done = true;
  } finally {
    exchange.transfers.delete(transfer);
    if (!done) await reader.cancel(new Error("Upload refused"));
  }
  const headers = baseHeaders();
  headers.set("location", hrefOf(folder.segments, true));
  return new Response(null, { status: 303, headers });
}
