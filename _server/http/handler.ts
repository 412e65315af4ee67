/**
 * The request handler of the HTTP face: authentication, the request path
 * through the jail, dispatch by method (`GET`/`HEAD` of files and
 * folders, `PUT` and form `POST` uploads when allowed, `OPTIONS`), and
 * the mapping of {@linkcode FerryError} codes to status codes.
 *
 * | code                    | status |
 * | ----------------------- | ------ |
 * | `BAD_REQUEST`           | 400    |
 * | `UNAUTHORIZED`          | 401    |
 * | `FORBIDDEN`             | 403    |
 * | `NOT_FOUND`             | 404    |
 * | `EXISTS`, `CHANGED`     | 409    |
 * | `EXISTS` on `PUT` with `If-None-Match: *` | 412 |
 * | `TOO_LARGE`             | 413    |
 * | `INTEGRITY`             | 400    |
 * | `BUSY`                  | 503    |
 * | anything else           | 500    |
 *
 * Write methods without `--allow-upload` get `403` (`PUT`, `POST`,
 * `DELETE`, `PATCH`, WebDAV's) before their path is even looked at;
 * unknown methods get `405` with `Allow`. No response carries CORS
 * headers.
 *
 * @module
 */

import { resolveExisting } from "../path_jail.ts";
import type { ServerContext } from "../context.ts";
import { refuseTempName } from "../temp.ts";
import { FerryError } from "../../errors.ts";
import { checkHttpAuth } from "./auth.ts";
import { HttpExchange } from "./exchange.ts";
import { serveFile } from "./files.ts";
import { baseHeaders } from "./headers.ts";
import { errorResponse } from "./status.ts";
import { serveListing } from "./listing.ts";
import { requestPath } from "./request_path.ts";
import type { Transfers } from "./transfers.ts";
import { handleFormUpload, handlePutUpload } from "./upload.ts";

/** What the handler shares with the listener. */
export interface HttpFaceState {
  /** The bodies being streamed. */
  transfers: Transfers;
  /** Aborted when the server stops. */
  signal: AbortSignal;
  /** Requests in progress (counted against `maxConnections`). */
  active: number;
  /** The server is stopping: new requests get `503`. */
  stopping: boolean;
  /** Called when a request ends (the listener may be waiting to stop). */
  onRequestEnd(): void;
}

const WRITE_METHODS: ReadonlySet<string> = new Set([
  "PUT",
  "POST",
  "DELETE",
  "PATCH",
  "MKCOL",
  "COPY",
  "MOVE",
  "PROPPATCH",
  "LOCK",
  "UNLOCK",
]);

/**
 * Answers one HTTP request.
 *
 * @param request The request.
 * @param addr The peer's address.
 * @param context The server's settings.
 * @param face The listener's shared state.
 * @returns The response (never throws).
 */
export async function handleHttp(
  request: Request,
  addr: Deno.NetAddr,
  context: ServerContext,
  face: HttpFaceState,
): Promise<Response> {
  face.active++;
  const exchange = new HttpExchange(
    request,
    addr,
    context,
    face.transfers,
    () => {
      face.active--;
      face.onRequestEnd();
    },
  );
  let response: Response;
  try {
    response = await route(exchange, context, face);
  } catch (error) {
    response = errorResponse(exchange, error);
  }
  if (!exchange.deferred) exchange.end();
  return response;
}

async function route(
  exchange: HttpExchange,
  context: ServerContext,
  face: HttpFaceState,
): Promise<Response> {
  const { request } = exchange;
  if (face.stopping) {
    throw new FerryError("BUSY", "Server is stopping");
  }
  if (face.active > context.limits.maxConnections) {
    throw new FerryError("BUSY", "Too many requests at once, try again");
  }
  const denied = await checkHttpAuth(
    request,
    exchange.host,
    context,
    face.signal,
  );
  if (denied) {
    exchange.result = "UNAUTHORIZED";
    return denied;
  }
  const method = request.method;
  if (WRITE_METHODS.has(method) && !context.allowUpload) {
    throw new FerryError("FORBIDDEN", "Uploads are not allowed");
  }
  if (method === "OPTIONS") {
    const headers = baseHeaders();
    headers.set("allow", allowed(context));
    return new Response(null, { status: 204, headers });
  }
  if (
    method !== "GET" && method !== "HEAD" && method !== "PUT" &&
    method !== "POST"
  ) {
    const headers = baseHeaders();
    headers.set("allow", allowed(context));
    exchange.result = "BAD_REQUEST";
    return new Response("Method not allowed\n", { status: 405, headers });
  }
  const target = requestPath(request.url, context.limits.maxPathDepth);
  exchange.wirePath = target.wirePath;
  exchange.query = target.query;
  refuseTempName(target.segments, target.wirePath);
  if (method === "PUT") return await handlePutUpload(exchange, context, target);
  if (method === "POST") {
    return await handleFormUpload(exchange, context, target);
  }
  const found = await resolveExisting(context.realRoot, target.wirePath);
  if (found.info.isDirectory) {
    return await serveListing(exchange, context, found);
  }
  if (!found.info.isFile) {
    throw new FerryError("FORBIDDEN", `Not a file: ${target.wirePath}`);
  }
  if (target.trailingSlash) {
    throw new FerryError("NOT_FOUND", `Not a folder: ${target.wirePath}`);
  }
  return await serveFile(exchange, context, found);
}

function allowed(context: ServerContext): string {
  return context.allowUpload
    ? "GET, HEAD, PUT, POST, OPTIONS"
    : "GET, HEAD, OPTIONS";
}
