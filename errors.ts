/**
 * The one error class of ferry, {@linkcode FerryError}, and its codes.
 *
 * Codes that travel on the wire (in an `ERROR` frame) and codes for local
 * failures share one namespace, so a script can switch on `error.code`
 * whichever side detected the problem.
 *
 * @module
 */

/**
 * Every code a {@linkcode FerryError} can carry.
 *
 * Wire codes (sent by a peer in an `ERROR` frame): `NOT_FOUND`, `FORBIDDEN`,
 * `EXISTS`, `BAD_REQUEST`, `TOO_LARGE`, `UNSUPPORTED_VERSION`, `INTERNAL`,
 * `UNAUTHORIZED`, `BUSY`, `CHANGED`, `INTEGRITY`.
 *
 * Local codes (raised on this side only): `CONNECTION` (cannot connect, or the
 * peer closed the connection mid-transfer), `TRUNCATED` (the stream ended
 * inside a frame), `PROTOCOL` (the peer sent something this side did not
 * expect), `TIMEOUT`, `LOCAL` (a local file could not be read or written).
 *
 * @example Switch on a code
 * ```ts
 * import assert from "node:assert/strict";
 * import { FerryError, type FerryErrorCode } from "./errors.ts";
 * const code: FerryErrorCode = new FerryError("NOT_FOUND", "Not found").code;
 * assert(code === "NOT_FOUND");
 * ```
 */
export type FerryErrorCode =
  | "NOT_FOUND"
  | "FORBIDDEN"
  | "EXISTS"
  | "BAD_REQUEST"
  | "TOO_LARGE"
  | "UNSUPPORTED_VERSION"
  | "INTERNAL"
  | "UNAUTHORIZED"
  | "BUSY"
  | "CHANGED"
  | "INTEGRITY"
  | "CONNECTION"
  | "TRUNCATED"
  | "PROTOCOL"
  | "TIMEOUT"
  | "LOCAL";

/**
 * The codes that travel in `ERROR` frames, as listed in the error code table
 * of `protocol.ts`'s wire spec. A receiver maps any other code to `INTERNAL`;
 * the remaining {@linkcode FerryErrorCode}s are raised locally only.
 *
 * @example Tell a wire code from a local one
 * ```ts
 * import assert from "node:assert/strict";
 * import { WIRE_ERROR_CODES } from "./errors.ts";
 * assert(WIRE_ERROR_CODES.has("NOT_FOUND"));
 * assert(!WIRE_ERROR_CODES.has("TIMEOUT"));
 * ```
 */
export const WIRE_ERROR_CODES: ReadonlySet<FerryErrorCode> = new Set<
  FerryErrorCode
>([
  "NOT_FOUND",
  "FORBIDDEN",
  "EXISTS",
  "BAD_REQUEST",
  "TOO_LARGE",
  "UNSUPPORTED_VERSION",
  "INTERNAL",
  "UNAUTHORIZED",
  "BUSY",
  "CHANGED",
  "INTEGRITY",
]);

/**
 * All codes of {@linkcode FerryErrorCode}, for validation and documentation:
 * the {@linkcode WIRE_ERROR_CODES} first, then the local ones.
 *
 * @example Check a code read from somewhere else
 * ```ts
 * import assert from "node:assert/strict";
 * import { FERRY_ERROR_CODES } from "./errors.ts";
 * assert(FERRY_ERROR_CODES.includes("EXISTS"));
 * ```
 */
export const FERRY_ERROR_CODES: readonly FerryErrorCode[] = [
  ...WIRE_ERROR_CODES,
  "CONNECTION",
  "TRUNCATED",
  "PROTOCOL",
  "TIMEOUT",
  "LOCAL",
];

/**
 * Tells whether `code` may be sent in an `ERROR` frame (see
 * {@linkcode WIRE_ERROR_CODES}).
 *
 * @param code Any string, such as the code of a received `ERROR` frame.
 * @returns `true` when `code` is a wire error code, narrowed to
 * {@linkcode FerryErrorCode}.
 *
 * @example Check a received code
 * ```ts
 * import assert from "node:assert/strict";
 * import { isWireErrorCode } from "./errors.ts";
 * assert(isWireErrorCode("BUSY"));
 * assert(!isWireErrorCode("LOCAL"));
 * assert(!isWireErrorCode("NOPE"));
 * ```
 */
export function isWireErrorCode(code: string): code is FerryErrorCode {
  return (WIRE_ERROR_CODES as ReadonlySet<string>).has(code);
}

/**
 * Returns `code` as a {@linkcode FerryErrorCode} when it is one, else
 * `undefined`.
 *
 * @param code Any string, such as the code of a received `ERROR` frame.
 * @returns The code, typed, or `undefined` when ferry does not know it.
 *
 * @example Map a wire code
 * ```ts
 * import assert from "node:assert/strict";
 * import { toFerryErrorCode } from "./errors.ts";
 * assert(toFerryErrorCode("BUSY") === "BUSY");
 * assert(toFerryErrorCode("NOPE") === undefined);
 * ```
 */
export function toFerryErrorCode(code: string): FerryErrorCode | undefined {
  return (FERRY_ERROR_CODES as readonly string[]).includes(code)
    ? code as FerryErrorCode
    : undefined;
}

/**
 * The error ferry throws for every expected failure, with a machine-readable
 * {@linkcode FerryErrorCode}.
 *
 * @example Catch a missing file
 * ```ts
 * import { FerryError } from "./errors.ts";
 * try {
 *   throw new FerryError("NOT_FOUND", "Not found: notes.txt");
 * } catch (error) {
 *   if (!(error instanceof FerryError) || error.code !== "NOT_FOUND") throw error;
 * }
 * ```
 */
export class FerryError extends Error {
  /** The machine-readable reason, stable across versions. */
  readonly code: FerryErrorCode;

  /**
   * Makes an error with a code and a message in sentence case.
   *
   * @param code The machine-readable reason.
   * @param message One line for people, without a final period.
   * @param options The standard `cause`, when this wraps another error.
   */
  constructor(code: FerryErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "FerryError";
    this.code = code;
  }
}
