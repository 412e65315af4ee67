/**
 * The one escaping of text that came from the other side (names, messages,
 * listing fields) before it reaches a terminal or a log: every control
 * character (C0, DEL, C1) and the invisible characters that reorder or
 * break lines (bidirectional overrides and isolates, line and paragraph
 * separators) become visible escapes, so no peer can clear a screen, set a
 * window title, move the cursor or forge a line.
 *
 * Text output uses {@linkcode escapeControls}; JSON output uses
 * {@linkcode safeJson}, which is exact JSON (it parses back to the same
 * value) with those characters as `\uXXXX` escapes.
 *
 * @module
 */

/** Characters a terminal acts on or that reorder what it shows. */
const UNSAFE =
  // deno-lint-ignore no-control-regex
  /[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** The same, minus what `JSON.stringify` already escapes. */
const UNSAFE_IN_JSON =
  /[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/**
 * Text with every unsafe character shown as an escape: `\xNN` below 0x100,
 * `\u{NNNN}` above.
 *
 * @param text Text from the other side.
 * @returns Text safe to print.
 *
 * @example Escape a screen-clearing name
 * ```ts
 * import assert from "node:assert/strict";
 * import { escapeControls } from "./escape.ts";
 * assert.equal(escapeControls("a\x1b[2Jb\r"), "a\\x1b[2Jb\\x0d");
 * assert.equal(escapeControls("x\u202ey"), "x\\u{202e}y");
 * ```
 */
export function escapeControls(text: string): string {
  return text.replace(UNSAFE, (c) => {
    const code = c.charCodeAt(0);
    return code < 0x100
      ? `\\x${code.toString(16).padStart(2, "0")}`
      : `\\u{${code.toString(16)}}`;
  });
}

/**
 * {@linkcode escapeControls} on each line of `text`: the line breaks stay,
 * everything else unsafe is escaped. For output made of our own lines.
 *
 * @param text Lines joined with `\n`.
 * @returns The same lines, safe to print.
 *
 * @example Keep the lines, escape a carriage return
 * ```ts
 * import assert from "node:assert/strict";
 * import { escapeLines } from "./escape.ts";
 * assert.equal(escapeLines("a\rb\nc"), "a\\x0db\nc");
 * ```
 */
export function escapeLines(text: string): string {
  return text.split("\n").map(escapeControls).join("\n");
}

/**
 * `JSON.stringify` whose output never holds a character a terminal acts on:
 * C1 controls, DEL and the bidirectional and line-breaking characters are
 * written as `\uXXXX` escapes (JSON.stringify already escapes C0). It is
 * still exact JSON: parsing it gives back the same value.
 *
 * @param value Any JSON value.
 * @param indent Spaces to indent with, as for `JSON.stringify`; one line
 * without.
 * @returns The JSON text.
 *
 * @example The same value, printable
 * ```ts
 * import assert from "node:assert/strict";
 * import { safeJson } from "./escape.ts";
 * const line = safeJson({ name: "a\x9bb\u2028" });
 * assert.equal(line, '{"name":"a\\u009bb\\u2028"}');
 * assert.deepEqual(JSON.parse(line), { name: "a\x9bb\u2028" });
 * ```
 */
export function safeJson(value: unknown, indent?: number): string {
  return JSON.stringify(value, null, indent).replace(
    UNSAFE_IN_JSON,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}
