/**
 * A streaming reader of `multipart/form-data` request bodies (RFC 7578),
 * for the listing page's upload form: one fixed buffer, parts found by
 * searching for the boundary delimiter, each part's data handed on chunk
 * by chunk while a tail that could be the start of a delimiter is kept
 * back. Nothing is buffered whole; part headers are bounded.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { FerryError } from "../../errors.ts";
import type { BodyReader } from "./body_reader.ts";

/** Bytes of the reader's buffer. */
const BUFFER_BYTES = 256 * 1024;
/** Most bytes of one part's headers. */
const MAX_HEADER_BYTES = 16 * 1024;

/** The headers of one part that matter here. */
export interface PartInfo {
  /** The form field's name. */
  name: string;
  /** The file name of a file field (as the browser sent it). */
  filename: string | undefined;
}

const utf8 = new TextDecoder();

/**
 * The boundary of a `multipart/form-data` content type.
 *
 * @param contentType The request's `Content-Type`.
 * @returns The boundary.
 * @throws {FerryError} `BAD_REQUEST` if it is not form data with a
 * boundary of 1 to 70 characters.
 */
export function formBoundary(contentType: string | null): string {
  const match = contentType === null
    ? null
    : /^\s*multipart\/form-data\s*;(.*)$/i.exec(contentType);
  const boundary = match
    ? /(?:^|;)\s*boundary=(?:"([^"]{1,70})"|([^;\s]{1,70}))/i.exec(match[1])
    : null;
  if (!boundary) {
    throw new FerryError(
      "BAD_REQUEST",
      "Expected multipart/form-data with a boundary",
    );
  }
  return boundary[1] ?? boundary[2];
}

/** Reads the parts of a form body one after another. */
export class MultipartReader {
  #body: BodyReader;
  #delimiter: Buffer;
  #buffer = new Uint8Array(new ArrayBuffer(BUFFER_BYTES));
  #start = 0;
  #end = 0;
  #eof = false;
  #atDelimiter = false;
  #finished = false;

  /**
   * @param body The request body.
   * @param boundary From {@linkcode formBoundary}.
   */
  constructor(body: BodyReader, boundary: string) {
    this.#body = body;
    this.#delimiter = Buffer.from(`\r\n--${boundary}`, "latin1");
    // A virtual line break lets the first delimiter match like the others.
    this.#buffer[0] = 0x0d;
    this.#buffer[1] = 0x0a;
    this.#end = 2;
  }

  /**
   * Moves to the next part (dropping what is left of the current one).
   *
   * @returns Its name and file name, or `null` after the last part.
   * @throws {FerryError} `BAD_REQUEST` for a malformed body.
   */
  async nextPart(): Promise<PartInfo | null> {
    if (this.#finished) return null;
    // The preamble, or what the caller left of the current part.
    if (!this.#atDelimiter) await this.readData(() => Promise.resolve());
    this.#atDelimiter = false;
    // After a delimiter: "--" ends the body, else a line break.
    await this.#need(2);
    const b = this.#buffer;
    if (b[this.#start] === 0x2d && b[this.#start + 1] === 0x2d) {
      this.#finished = true;
      return null;
    }
    const headerEnd = await this.#find(
      Buffer.from("\r\n\r\n"),
      MAX_HEADER_BYTES,
    );
    const text = utf8.decode(b.subarray(this.#start, headerEnd));
    this.#start = headerEnd + 4;
    return parsePartHeaders(text);
  }

  /**
   * Hands the current part's data to `onChunk` until its end. A chunk is a
   * view of the reader's buffer, valid until `onChunk`'s promise settles.
   *
   * @param onChunk Receives each chunk.
   * @returns The part's size.
   */
  async readData(
    onChunk: (chunk: Uint8Array) => Promise<void>,
  ): Promise<number> {
    const keep = this.#delimiter.length - 1;
    let total = 0;
    while (true) {
      const window = Buffer.from(
        this.#buffer.buffer,
        this.#buffer.byteOffset + this.#start,
        this.#end - this.#start,
      );
      const at = window.indexOf(this.#delimiter);
      if (at >= 0) {
        if (at > 0) {
          await onChunk(this.#buffer.subarray(this.#start, this.#start + at));
        }
        total += at;
        this.#start += at + this.#delimiter.length;
        this.#atDelimiter = true;
        return total;
      }
      const safe = this.#end - keep;
      if (safe > this.#start) {
        await onChunk(this.#buffer.subarray(this.#start, safe));
        total += safe - this.#start;
        this.#start = safe;
      }
      if (this.#eof) {
        throw new FerryError("BAD_REQUEST", "Form body ended inside a part");
      }
      await this.#fill();
    }
  }

  /** Reads more of the body after what is buffered. */
  async #fill(): Promise<void> {
    if (this.#start > 0) {
      this.#buffer.copyWithin(0, this.#start, this.#end);
      this.#end -= this.#start;
      this.#start = 0;
    }
    if (this.#end === this.#buffer.length) {
      throw new FerryError("BAD_REQUEST", "Form part headers too long");
    }
    const read = await this.#body.readInto(this.#buffer, this.#end);
    this.#buffer = read.buffer;
    this.#end += read.n;
    if (read.done) this.#eof = true;
  }

  /** Makes sure `n` bytes are buffered. */
  async #need(n: number): Promise<void> {
    while (this.#end - this.#start < n) {
      if (this.#eof) {
        throw new FerryError("BAD_REQUEST", "Form body ended early");
      }
      await this.#fill();
    }
  }

  /** The position of `needle` in the buffered bytes, within `limit`. */
  async #find(needle: Buffer, limit: number): Promise<number> {
    while (true) {
      const window = Buffer.from(
        this.#buffer.buffer,
        this.#buffer.byteOffset + this.#start,
        this.#end - this.#start,
      );
      const at = window.indexOf(needle);
      if (at >= 0) return this.#start + at;
      if (this.#end - this.#start > limit) {
        throw new FerryError("BAD_REQUEST", "Form part headers too long");
      }
      if (this.#eof) {
        throw new FerryError("BAD_REQUEST", "Form body ended early");
      }
      await this.#fill();
    }
  }
}

/** The name and file name of a part, from its header lines. */
function parsePartHeaders(text: string): PartInfo {
  let name: string | undefined;
  let filename: string | undefined;
  for (const line of text.split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    if (line.slice(0, colon).trim().toLowerCase() !== "content-disposition") {
      continue;
    }
    const params = line.slice(colon + 1);
    name = param(params, "name");
    filename = param(params, "filename");
  }
  if (name === undefined) {
    throw new FerryError("BAD_REQUEST", "Form part without a name");
  }
  return { name, filename };
}

/** One quoted (or bare) parameter of a header value. */
function param(params: string, key: string): string | undefined {
  const match = new RegExp(
    `;\\s*${key}=(?:"((?:[^"\\\\]|\\\\.)*)"|([^;\\s]*))`,
    "i",
  )
    .exec(params);
  if (!match) return undefined;
  return match[1] !== undefined ? match[1].replace(/\\(.)/g, "$1") : match[2];
}
