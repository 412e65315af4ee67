/**
 * One HTTP request and its log record: what the handlers fill in (bytes,
 * result) and the single `onLog` event it becomes, emitted when the
 * response is ready or, for a streamed body, when the body ends.
 *
 * @module
 */

import { formatAddress } from "../../_common/text.ts";
import { emit, type ServerContext } from "../context.ts";
import { FerryError } from "../../errors.ts";
import type { Transfers } from "./transfers.ts";
import type { ServerLogEvent } from "../types.ts";

/** One request in progress. */
export class HttpExchange {
  readonly request: Request;
  /** The peer, `host:port`. */
  readonly peer: string;
  /** The peer's host alone (the auth throttle's key). */
  readonly host: string;
  readonly transfers: Transfers;
  /** The decoded wire path, once known. */
  wirePath = "";
  /** The raw query string, without `?`. */
  query = "";
  /** File bytes sent or received. */
  bytes = 0;
  /** `"ok"` or an error code. */
  result: ServerLogEvent["result"] = "ok";
  #context: ServerContext;
  #time = new Date();
  #started = performance.now();
  #deferred = false;
  #ended = false;
  #onEnd: () => void;

  constructor(
    request: Request,
    addr: Deno.NetAddr,
    context: ServerContext,
    transfers: Transfers,
    onEnd: () => void,
  ) {
    this.request = request;
    this.host = addr.hostname;
    this.peer = formatAddress(addr);
    this.#context = context;
    this.transfers = transfers;
    this.#onEnd = onEnd;
  }

  /** The body will call {@linkcode HttpExchange.end} itself. */
  deferEnd(): void {
    this.#deferred = true;
  }

  /** Whether the body will report its own end. */
  get deferred(): boolean {
    return this.#deferred;
  }

  /**
   * The request is over: logs it once.
   *
   * @param bytes File bytes moved (for a streamed body).
   * @param error Why it failed, if it did.
   */
  end(bytes?: number, error?: Error): void {
    if (this.#ended) return;
    this.#ended = true;
    if (bytes !== undefined) this.bytes = bytes;
    if (error !== undefined) {
      this.result = error instanceof FerryError ? error.code : "INTERNAL";
    }
    emit(this.#context, {
      protocol: "http",
      request: logMethod(this.request.method),
      path: this.wirePath,
      bytes: this.bytes,
      result: this.result,
      peer: this.peer,
      time: this.#time,
      started: this.#started,
    });
    this.#onEnd();
  }
}

/** The HTTP methods the log names; any other is `OTHER`. */
const LOGGED_METHODS: ReadonlySet<string> = new Set([
  "GET",
  "HEAD",
  "PUT",
  "POST",
  "DELETE",
  "OPTIONS",
  "PATCH",
  "CONNECT",
  "TRACE",
]);

/** A request method as logged: one of HTTP's, or `OTHER`. */
function logMethod(method: string): ServerLogEvent["request"] {
  return LOGGED_METHODS.has(method)
    ? method as ServerLogEvent["request"]
    : "OTHER";
}
