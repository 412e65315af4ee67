/**
 * One ferry connection on the server: protocol detection, the `HELLO` (and
 * `AUTH`) handshake, and the request loop that dispatches to the handlers
 * (`_server/list.ts`, `_server/get.ts`, `_server/put.ts`,
 * `_server/mkdir.ts`, `_server/delete.ts`, `_server/sum.ts`) and turns their failures into `ERROR` frames.
 *
 * @module
 */

import { serveClassic } from "./classic.ts";
import { clientHelloBytes, makeServerNonce, verifyAuth } from "./auth.ts";
import { makeFolder } from "./mkdir.ts";
import { checkRequestLimits } from "./limits.ts";
import { lingerClose } from "./linger_close.ts";
import {
  emit,
  label,
  type RequestState,
  type ServerContext,
  type Session,
} from "./context.ts";
import { handleGet } from "./get.ts";
import { handleList, handleStat } from "./list.ts";
import { handlePut } from "./put.ts";
import { deleteInside } from "./delete.ts";
import { handleSum } from "./sum.ts";
import { answerSmallGets } from "./small_get_run.ts";
import { TEMP_NAME } from "./temp.ts";
import { EagerRun } from "./eager_put.ts";
import { strictLibc } from "./dir_handle.ts";
import { FerryError, type FerryErrorCode, isWireErrorCode } from "../errors.ts";
import {
  chooseDigest,
  DIGEST_ALGORITHMS,
  encodeMessage,
  FRAME_TYPES,
  HELLO_AUTH_REQUIRED,
  HELLO_EAGER_PUT,
  type Message,
  PROTOCOL_VERSION,
  writeAll,
} from "../protocol.ts";

/**
 * Serves one connection until it ends: the first byte picks the protocol
 * (ferry `HELLO` or a classic file name), then the handshake and the
 * request loop run. Never throws for what the peer does.
 */
export async function handleConnection(
  session: Session,
  context: ServerContext,
): Promise<void> {
  try {
    // Small frames (and the classic EXISTS) must leave at once. TCP
    // connections have setNoDelay; a TLS one would set it on its TCP side.
    (session.conn as Partial<Deno.TcpConn>).setNoDelay?.(true);
  } catch {
    // The peer may already be gone; the first read will tell.
  }
  const stopDeadline = session.deadline(context.handshakeTimeoutMs);
  try {
    let first: Uint8Array | null;
    try {
      first = await session.reader.peek();
    } catch {
      return; // reset, or closed by the deadline or a shutdown
    }
    if (first === null) return;
    if (first[0] !== FRAME_TYPES.hello) {
      stopDeadline();
      if (!context.classic) return;
      const time = new Date();
      const started = performance.now();
      if (context.auth) {
        // Classic clients cannot authenticate: closed without an answer.
        emit(context, {
          protocol: "classic",
          request: "GET",
          path: "",
          bytes: 0,
          result: "UNAUTHORIZED",
          peer: session.peer,
          time,
          started,
        });
        return;
      }
      // The whole classic session is one request: a stopping server lets
      // it finish (within the drain time).
      if (session.stopping) return;
      session.busy = true;
      await serveClassic(session, {
        realRoot: context.realRoot,
        handshakeTimeoutMs: context.handshakeTimeoutMs,
        log: (record) =>
          emit(context, {
            protocol: "classic",
            ...record,
            peer: session.peer,
            time,
            started,
          }),
      });
      return;
    }
    const agreed = await handshake(session, context);
    stopDeadline();
    if (agreed) await serveRequests(session, context);
  } finally {
    stopDeadline();
    session.heldFolder?.folder.close();
    session.close();
    // A classic session's copy may have failed with a write in flight.
    session.releaseBuffers(false);
  }
}

/** Reads the client's `HELLO` and answers it; true when a version is agreed. */
async function handshake(
  session: Session,
  context: ServerContext,
): Promise<boolean> {
  const time = new Date();
  const started = performance.now();
  const fail = async (
    code: FerryErrorCode,
    message: string,
  ): Promise<false> => {
    emit(context, {
      protocol: "ferry",
      request: "HELLO",
      path: "",
      bytes: 0,
      result: code,
      peer: session.peer,
      time,
      started,
    });
    if (code !== "TIMEOUT" && code !== "CONNECTION") {
      await sendError(session, code, message);
    }
    return false;
  };
  /** The next handshake frame; false once the handshake has failed. */
  const next = async (): Promise<Message | null | false> => {
    try {
      return await session.reader.readMessage();
    } catch (error) {
      if (session.timedOut) return await fail("TIMEOUT", "");
      if (error instanceof FerryError && isWireErrorCode(error.code)) {
        return await fail(error.code, error.message);
      }
      return await fail("CONNECTION", "");
    }
  };
  const hello = await next();
  if (!hello) return false;
  if (hello.type !== "hello") {
    return await fail("BAD_REQUEST", `Expected HELLO, got ${label(hello)}`);
  }
  if (
    hello.minVersion > PROTOCOL_VERSION || hello.maxVersion < PROTOCOL_VERSION
  ) {
    return await fail(
      "UNSUPPORTED_VERSION",
      `This server speaks version ${PROTOCOL_VERSION} only, the client ${hello.minVersion} to ${hello.maxVersion}`,
    );
  }
  // Version 2 clients send DIGESTS right after HELLO: the algorithm for
  // every HASH of the session.
  const offer = await next();
  if (!offer) return false;
  if (offer.type !== "digests") {
    return await fail("BAD_REQUEST", `Expected DIGESTS, got ${label(offer)}`);
  }
  const digest = chooseDigest(offer.algorithms);
  if (digest === undefined) {
    return await fail(
      "UNSUPPORTED_VERSION",
      `No digest algorithm in common: the client accepts ${
        offer.algorithms.join(", ")
      }, this server ${DIGEST_ALGORITHMS.join(", ")}`,
    );
  }
  session.digest = digest;
  const nonce = makeServerNonce();
  const serverHello = encodeMessage({
    type: "hello",
    minVersion: PROTOCOL_VERSION,
    maxVersion: PROTOCOL_VERSION,
    flags: (context.auth ? HELLO_AUTH_REQUIRED : 0) | HELLO_EAGER_PUT,
    nonce,
  });
  const chosen = encodeMessage({ type: "digests", algorithms: [digest] });
  const reply = new Uint8Array(serverHello.length + chosen.length);
  reply.set(serverHello);
  reply.set(chosen, serverHello.length);
  try {
    await writeAll(session.conn, reply);
  } catch {
    return false;
  }
  if (!context.auth) return true;
  const result = await verifyAuth(
    {
      reader: session.reader,
      writer: session.conn,
      host: session.peerHost,
      signal: session.signal,
    },
    {
      token: context.auth.token,
      version: PROTOCOL_VERSION,
      serverNonce: nonce,
      clientHello: clientHelloBytes(hello),
      serverHello,
    },
    context.auth.throttle,
    () => session.timedOut,
  );
  if (result === "ok") return true;
  emit(context, {
    protocol: "ferry",
    request: "HELLO",
    path: "",
    bytes: 0,
    result,
    peer: session.peer,
    time,
    started,
  });
  return false;
}

/**
 * Answers requests one after another until the peer leaves or the server
 * stops. In strict mode, eager `PUT`s are taken in runs
 * (`_server/eager_put.ts`): a run is placed and answered before any other
 * request, before the loop waits for the client, and when it is full.
 */
async function serveRequests(
  session: Session,
  context: ServerContext,
): Promise<void> {
  const libc = strictLibc();
  const run = libc === undefined ? undefined : new EagerRun(libc);
  try {
    await serveLoop(session, context, run);
  } finally {
    if (run !== undefined) {
      // Uploads that arrived whole are placed, and answered if the peer
      // is still there.
      await run.settle(session, context, true);
      await session.replies.flush(true).catch(() => {});
    }
  }
}

async function serveLoop(
  session: Session,
  context: ServerContext,
  run: EagerRun | undefined,
): Promise<void> {
  while (!session.stopping) {
    let message: Message | null;
    try {
      await session.settleWatch();
      // Replies held back go out before the server waits for the client
      // (which may be waiting for them): a run of eager PUTs is placed and
      // answered first. The batch's memory goes back when nothing more is
      // pipelined.
      if (!session.reader.frameBuffered) {
        // The run received so far goes to be placed; the one being placed
        // writes its replies itself once placed (this thread may be
        // waiting for the client by then).
        await run?.post(session, context);
        session.busy = false;
        const idle = session.reader.buffered === 0;
        if (!run?.placing) {
          await session.replies.flush(idle);
          if (idle) await run?.settle(session, context, true);
        }
        if (idle) session.heldFolder?.folder.close();
      }
      message = await session.reader.readMessage();
    } catch (error) {
      if (error instanceof FerryError && isWireErrorCode(error.code)) {
        await run?.settle(session, context);
        emit(context, {
          protocol: "ferry",
          request: "INVALID",
          path: "",
          bytes: 0,
          result: error.code,
          peer: session.peer,
          time: new Date(),
          started: performance.now(),
        });
        await sendError(session, error.code, error.message);
      }
      return; // a frame we cannot parse leaves the stream unusable
    }
    if (message === null) return;
    // A run of GETs of small files, answered without an await each (after
    // the replies that go before theirs).
    if (message.type === "get" && session.heldFolder !== null) {
      try {
        await run?.settle(session, context);
        if (!session.replies.roomy) await session.replies.flush();
      } catch {
        return; // the connection is gone
      }
      if (answerSmallGets(session, context, message)) continue;
    }
    session.busy = true;
    const time = new Date();
    const started = performance.now();
    const state: RequestState = {
      bytes: 0,
      closeOnError: false,
      silentOnError: false,
    };
    let result: "ok" | FerryErrorCode = "ok";
    try {
      // An eager PUT joins the run; its reply and log come when it is placed.
      if (run !== undefined && message.type === "put" && message.eager) {
        await run.receive(session, context, message, state, {
          time,
          started,
        });
        if (run.full) await run.post(session, context);
        continue;
      }
      await run?.settle(session, context);
      // An eager PUT's limits are checked once its bytes are read past.
      if (message.type !== "put" || !message.eager) {
        checkRequestLimits(message, context.limits);
      }
      switch (message.type) {
        case "list":
          await handleList(session, context, message);
          break;
        case "stat":
          await handleStat(session, context, message);
          break;
        case "get":
          await handleGet(session, context, message, state);
          break;
        case "put":
          await handlePut(session, context, message, state);
          break;
        case "mkdir":
          if (!context.allowUpload) {
            throw new FerryError("FORBIDDEN", "Uploads are not allowed");
          }
          await makeFolder(context.realRoot, message.path, {
            mtime: message.mtime,
            hidden: TEMP_NAME,
          });
          // Held with the other replies (a tree upload pipelines a MKDIR
          // per folder, twice): written before the loop waits.
          await session.replies.queue(encodeMessage({ type: "ok" }));
          break;
        case "delete":
          if (!context.allowDelete) {
            throw new FerryError("FORBIDDEN", "Deletes are not allowed");
          }
          await deleteInside(context.realRoot, message.path, {
            recursive: message.recursive,
          });
          await writeAll(session.conn, encodeMessage({ type: "ok" }));
          break;
        case "sum":
          await handleSum(session, context, message, state);
          break;
        default:
          state.closeOnError = true;
          throw new FerryError(
            "BAD_REQUEST",
            `Unexpected ${label(message)} message`,
          );
      }
    } catch (error) {
      const wire = toWireError(error, session);
      result = wire.code;
      await run?.settle(session, context);
      if (!state.silentOnError && isWireErrorCode(wire.code)) {
        if (!await sendError(session, wire.code, wire.message)) {
          state.closeOnError = true;
        }
      }
      if (!isWireErrorCode(wire.code)) state.closeOnError = true;
    }
    emit(context, {
      protocol: "ferry",
      request: label(message),
      path: "path" in message ? message.path : "",
      bytes: state.bytes,
      result,
      ...(state.cached ? { cached: true } : {}),
      peer: session.peer,
      time,
      started,
    });
    // A request that broke its stream may have left a read or a write in
    // flight on the buffers: those are dropped, not pooled.
    const broken = result !== "ok" && state.closeOnError;
    session.releaseBuffers(!broken);
    if (broken) return;
    session.busy = false;
  }
  await session.settleWatch();
  await run?.settle(session, context, true);
  await session.replies.flush(true).catch(() => {}); // gone: nothing to send
  await lingerClose(session.conn, session.reader); // the server is stopping
}

/** Maps anything a handler threw to a code and a message safe to send. */
function toWireError(
  error: unknown,
  session: Session,
): { code: FerryErrorCode; message: string } {
  if (session.timedOut) return { code: "TIMEOUT", message: "" };
  if (error instanceof FerryError) {
    return { code: error.code, message: error.message };
  }
  if (session.signal.aborted) return { code: "CONNECTION", message: "" };
  if (
    error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.ConnectionAborted ||
    error instanceof Deno.errors.NotConnected ||
    error instanceof Deno.errors.UnexpectedEof ||
    error instanceof Deno.errors.BadResource ||
    error instanceof Deno.errors.Interrupted
  ) {
    return { code: "CONNECTION", message: "" };
  }
  // Host details (paths, errno) stay on the server.
  return { code: "INTERNAL", message: "Internal server error" };
}

/** Sends `ERROR`; false when the connection is gone. */
async function sendError(
  session: Session,
  code: string,
  message: string,
): Promise<boolean> {
  try {
    await writeAll(
      session.conn,
      encodeMessage({ type: "error", code, message: message.slice(0, 1000) }),
    );
    return true;
  } catch {
    return false;
  }
}
