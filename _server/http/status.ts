/**
 * The status code of each {@linkcode FerryError} code on the HTTP face,
 * and the plain-text error response (see the table in
 * `_server/http/handler.ts`).
 *
 * @module
 */

import { FerryError } from "../../errors.ts";
import type { HttpExchange } from "./exchange.ts";
import { baseHeaders } from "./headers.ts";

/** Status code of each error code; others are 500. */
const STATUS_OF: Record<string, number> = {
  BAD_REQUEST: 400,
  INTEGRITY: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  EXISTS: 409,
  CHANGED: 409,
  TOO_LARGE: 413,
  BUSY: 503,
};

/**
 * A plain-text error response for a failed request; records the error
 * code as the request's result.
 *
 * @param exchange The request.
 * @param error What went wrong.
 * @param status The status, when it is not the error code's.
 * @returns The response.
 */
export function errorResponse(
  exchange: HttpExchange,
  error: unknown,
  status?: number,
): Response {
  const code = error instanceof FerryError ? error.code : "INTERNAL";
  exchange.result = code;
  const headers = baseHeaders();
  headers.set("content-type", "text/plain; charset=utf-8");
  if (code === "BUSY") headers.set("retry-after", "1");
  const message = error instanceof FerryError
    ? error.message
    : "Internal server error";
  return new Response(message + "\n", {
    status: status ?? STATUS_OF[code] ?? 500,
    headers,
  });
}
