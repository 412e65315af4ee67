/**
 * How the client turns what goes wrong on the wire into `FerryError`s: a
 * server's `ERROR` frame, and a failure of the connection or of the frame
 * decoder.
 *
 * @module
 */

import { messageOf } from "../_common/text.ts";
import { FerryError, isWireErrorCode } from "../errors.ts";
import type { ErrorMessage } from "../protocol.ts";

/** The error for a received `ERROR` frame; unknown codes become `INTERNAL`. */
export function serverError(message: ErrorMessage): FerryError {
  if (isWireErrorCode(message.code)) {
    return new FerryError(message.code, message.message || message.code);
  }
  return new FerryError(
    "INTERNAL",
    message.message ? `${message.code}: ${message.message}` : message.code,
  );
}

/** Maps an error of the connection or of the frame decoder. */
export function transportError(error: unknown, closed: boolean): Error {
  if (error instanceof FerryError) {
    if (error.code === "BAD_REQUEST" || error.code === "TOO_LARGE") {
      return new FerryError(
        "PROTOCOL",
        `Bad frame from the server: ${error.message}`,
        { cause: error },
      );
    }
    return error;
  }
  if (closed) {
    return new FerryError("CONNECTION", "Connection closed", { cause: error });
  }
  return new FerryError(
    "CONNECTION",
    `Connection failed: ${messageOf(error)}`,
    {
      cause: error,
    },
  );
}
