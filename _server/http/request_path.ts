/**
 * The path of an HTTP request as a ferry wire path: the raw request target
 * is split on `/`, each segment is percent-decoded once (as bytes, then
 * strict UTF-8, so overlong forms and stray bytes are refused), and the
 * segments go through the same lexical rules as a ferry request
 * (`_common/wire_path.ts`). A decoded `/` (`%2f`) or `\` (`%5c`) stays
 * inside its segment and is refused there; `%2e%2e` decodes to a `..`
 * segment and is refused; `//` is an empty segment and is refused. One
 * trailing `/` is allowed (a folder's URL ends with one).
 *
 * The target is taken from the request's URL string as the runtime
 * received it, never through `new URL()`, whose dot-segment removal would
 * quietly turn `/a/../b` into `/b`.
 *
 * @module
 */

import { FerryError } from "../../errors.ts";
import { printable, splitWirePath } from "../../_common/wire_path.ts";

/** A request target, decoded and checked. */
export interface RequestPath {
  /** The wire path (`""` for the root). */
  wirePath: string;
  /** The wire path's segments. */
  segments: string[];
  /** Whether the target ended with `/`. */
  trailingSlash: boolean;
  /** The raw query string, without `?` (`""` when absent). */
  query: string;
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Decodes and checks the path of a request URL.
 *
 * @param url The request's URL as the runtime gives it (`Request.url`).
 * @param maxDepth Most segments allowed.
 * @returns The wire path, its segments, and the query.
 * @throws {FerryError} `BAD_REQUEST` for a malformed target or escape,
 * `FORBIDDEN` for a path the jail's lexical rules refuse, `TOO_LARGE` past
 * `maxDepth` segments.
 */
export function requestPath(url: string, maxDepth: number): RequestPath {
  const scheme = url.indexOf("://");
  const slash = scheme < 0 ? -1 : url.indexOf("/", scheme + 3);
  let target = slash < 0 ? "/" : url.slice(slash);
  let query = "";
  const mark = target.indexOf("?");
  if (mark >= 0) {
    query = target.slice(mark + 1);
    target = target.slice(0, mark);
  }
  const hash = target.indexOf("#");
  if (hash >= 0) target = target.slice(0, hash);
  if (!target.startsWith("/")) {
    throw new FerryError("BAD_REQUEST", "Request target must start with /");
  }
  const raw = target.slice(1).split("/");
  let trailingSlash = false;
  if (raw.length > 0 && raw.at(-1) === "") {
    raw.pop();
    trailingSlash = true;
  }
  if (raw.length > maxDepth) {
    throw new FerryError("TOO_LARGE", `Path deeper than ${maxDepth} segments`);
  }
  const decoded = raw.map(decodeSegment);
  const wirePath = decoded.join("/");
  const segments = splitWirePath(wirePath);
  if (segments.length !== decoded.length) {
    // A decoded "/" made more segments than the target had.
    throw new FerryError(
      "FORBIDDEN",
      `Path not allowed (slash in a name): ${printable(wirePath)}`,
    );
  }
  return { wirePath, segments, trailingSlash, query };
}

/** Percent-decodes one segment: bytes first, then strict UTF-8. */
function decodeSegment(segment: string): string {
  if (!segment.includes("%")) return segment;
  const bytes = new Uint8Array(segment.length * 3);
  let length = 0;
  for (let i = 0; i < segment.length; i++) {
    const code = segment.charCodeAt(i);
    if (code === 0x25) {
      const hex = segment.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) {
        throw new FerryError("BAD_REQUEST", "Malformed percent-encoding");
      }
      bytes[length++] = parseInt(hex, 16);
      i += 2;
    } else if (code < 0x80) {
      bytes[length++] = code;
    } else {
      // Raw non-ASCII in a target: encode it as UTF-8, as a browser would.
      const char = String.fromCodePoint(segment.codePointAt(i)!);
      const encoded = new TextEncoder().encode(char);
      bytes.set(encoded, length);
      length += encoded.length;
      i += char.length - 1;
    }
  }
  try {
    return utf8.decode(bytes.subarray(0, length));
  } catch {
    throw new FerryError("BAD_REQUEST", "Path is not valid UTF-8");
  }
}
