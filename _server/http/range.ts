/**
 * The `Range` header of a `GET` (RFC 9110 section 14): what part of a file
 * of a known size it asks for.
 *
 * - No header, another unit than `bytes`, or a malformed value: the whole
 *   file (the header is ignored, as the RFC allows).
 * - One satisfiable range: that part (`206` with `Content-Range`). `a-b`
 *   with `b` past the end is cut at the end; a suffix `-n` longer than the
 *   file is the whole file; numbers too large to be exact never wrap.
 * - Several ranges of which at least one is satisfiable: the whole file
 *   (`200`; this server does not send multipart bodies).
 * - No satisfiable range (all start at or past the end, or `-0`):
 *   `416` with `Content-Range: bytes *\/size`.
 *
 * @module
 */

/** What a `Range` header asks for. */
export type RangeRequest =
  | { kind: "whole" }
  | { kind: "part"; start: number; end: number }
  | { kind: "unsatisfiable" };

/** Most ranges read from one header; more are a malformed header. */
const MAX_RANGES = 100;

/**
 * Reads a `Range` header against a file of `size` bytes.
 *
 * @param header The header's value, or `null`.
 * @param size The file's size.
 * @returns The whole file, one part (`end` inclusive) or unsatisfiable.
 */
export function parseRange(header: string | null, size: number): RangeRequest {
  if (header === null) return { kind: "whole" };
  const match = /^\s*bytes\s*=(.*)$/i.exec(header);
  if (!match) return { kind: "whole" };
  const specs = match[1].split(",");
  if (specs.length > MAX_RANGES) return { kind: "whole" };
  const parts: { start: number; end: number }[] = [];
  for (const raw of specs) {
    const spec = raw.trim();
    if (spec === "") continue; // RFC 9110 allows empty list elements
    const found = /^(\d*)-(\d*)$/.exec(spec);
    if (!found || (found[1] === "" && found[2] === "")) {
      return { kind: "whole" };
    }
    if (found[1] === "") {
      // Suffix: the last n bytes.
      const n = Number(found[2]);
      if (n === 0 || size === 0) continue;
      parts.push({ start: Math.max(0, size - n), end: size - 1 });
      continue;
    }
    const start = Number(found[1]);
    const end = found[2] === "" ? Infinity : Number(found[2]);
    if (end < start) return { kind: "whole" }; // invalid: ignored
    if (start >= size) continue;
    parts.push({ start, end: Math.min(end, size - 1) });
  }
  if (parts.length === 0) {
    return specs.some((s) => s.trim() !== "")
      ? { kind: "unsatisfiable" }
      : { kind: "whole" };
  }
  if (parts.length > 1) return { kind: "whole" };
  return { kind: "part", ...parts[0] };
}
