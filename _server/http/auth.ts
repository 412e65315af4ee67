/**
 * Authentication on the HTTP face: with a token, every request must carry
 * `Authorization: Bearer TOKEN`, or `Basic` credentials whose password is
 * the token (any user name), so that a browser can ask for it. A request
 * without credentials gets `401` with `WWW-Authenticate` at once (that is
 * how a browser learns to prompt); wrong credentials count as a failure of
 * the peer's address in the server's throttle (`_server/auth.ts`) and are
 * answered only after its delay. Tokens are compared in constant time
 * (HMAC-SHA-256 of both under a per-process key, then `timingSafeEqual`)
 * and never logged.
 *
 * @module
 */

import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { Buffer } from "node:buffer";
import { delay } from "../../_common/delay.ts";
import type { ServerContext } from "../context.ts";
import { baseHeaders } from "./headers.ts";

const KEY = randomBytes(32);

/** Constant-time equality of two secrets of any length. */
function sameSecret(a: string, b: string): boolean {
  const x = createHmac("sha256", KEY).update(a).digest();
  const y = createHmac("sha256", KEY).update(b).digest();
  return timingSafeEqual(x, y);
}

/** The token a request presents, `undefined` without credentials. */
function presented(authorization: string | null): string | undefined {
  if (authorization === null) return undefined;
  const match = /^\s*(Bearer|Basic)\s+(\S+)\s*$/i.exec(authorization);
  if (!match) return "";
  if (match[1].toLowerCase() === "bearer") return match[2];
  const decoded = Buffer.from(match[2], "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  return colon < 0 ? "" : decoded.slice(colon + 1);
}

/**
 * Checks a request's credentials.
 *
 * @param request The request.
 * @param host The peer's host (the throttle's key).
 * @param context The server's settings.
 * @param signal Aborted when the server stops (cuts the delay short).
 * @returns `undefined` when the request may proceed, else the `401`.
 */
export async function checkHttpAuth(
  request: Request,
  host: string,
  context: ServerContext,
  signal: AbortSignal,
): Promise<Response | undefined> {
  const auth = context.auth;
  if (auth === undefined) return undefined;
  const token = presented(request.headers.get("authorization"));
  if (token !== undefined && token !== "" && sameSecret(token, auth.token)) {
    auth.throttle.succeed(host);
    return undefined;
  }
  if (token !== undefined) {
    await delay(auth.throttle.fail(host), signal);
  }
  const headers = baseHeaders();
  headers.append("www-authenticate", 'Basic realm="ferry", charset="UTF-8"');
  headers.append("www-authenticate", 'Bearer realm="ferry"');
  headers.set("content-type", "text/plain; charset=utf-8");
  return new Response("Authentication required\n", { status: 401, headers });
}
