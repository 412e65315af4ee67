/**
 * Runs of pipelined `GET`s of small files answered without an `await`
 * each: a tree download sends its `GET`s a window at a time, and the
 * request loop would otherwise spend a promise and several awaited calls
 * per file (reading the frame, the handler, the digest, queueing the
 * reply) on top of the file's own system calls. Here each `GET` whose
 * frame is already buffered is decoded in place, its file read by the
 * strict-mode fast path straight into the connection's held replies
 * (`ReplyBatch.room`), and logged; the run stops at the first frame that
 * is not such a `GET`, is not whole, or does not take that path, and the
 * request loop goes on from there with that frame unread, so every other
 * case (and every refusal) takes the usual path and its reporting.
 *
 * @module
 */

import { emit, type ServerContext, type Session } from "./context.ts";
import { strictLibc } from "./dir_handle.ts";
import { HeldFolder } from "./held_folder.ts";
import { checkRequestLimits } from "./limits.ts";
import { kernelNamesUsable } from "./path_jail.ts";
import { answerHeldNow } from "./small_get.ts";
import { decodeFrame, FRAME_TYPES, type GetMessage } from "../protocol.ts";

/**
 * The session's held folder for the small `GET`s' fast path, made by the
 * first call: `null` where strict mode or `/proc/self/fd` is missing.
 *
 * @param session The connection.
 * @param context The server.
 * @returns The binding and the held folder, or `null`.
 */
export function heldFolderOf(
  session: Session,
  context: ServerContext,
): NonNullable<Session["heldFolder"]> | null {
  if (session.heldFolder === undefined) {
    const libc = strictLibc();
    session.heldFolder = libc && kernelNamesUsable(context.realRoot)
      ? { libc, folder: new HeldFolder(libc, context.realRoot) }
      : null;
  }
  return session.heldFolder;
}

/**
 * Answers `first` and the `GET`s buffered behind it, as far as they take
 * the synchronous fast path; the caller must have settled anything whose
 * replies go before (a run of eager `PUT`s).
 *
 * @param session The connection.
 * @param context The server.
 * @param first A `GET` just read.
 * @returns False if `first` was not answered (the caller answers it);
 * true if it was, and the frames consumed behind it with it.
 */
export function answerSmallGets(
  session: Session,
  context: ServerContext,
  first: GetMessage,
): boolean {
  const held = heldFolderOf(session, context);
  if (held === null || !answerOne(session, context, held, first)) return false;
  const reader = session.reader;
  while (!session.stopping && session.replies.roomy) {
    const bytes = reader.bufferedBytes();
    if (bytes.length === 0 || bytes[0] !== FRAME_TYPES.get) break;
    let decoded: ReturnType<typeof decodeFrame>;
    try {
      decoded = decodeFrame(bytes, session.maxFrameBytes);
    } catch {
      break; // the request loop reads it again and reports it
    }
    if (
      decoded === undefined || decoded.message.type !== "get" ||
      !answerOne(session, context, held, decoded.message)
    ) break;
    reader.skip(decoded.size);
  }
  return true;
}

/** One `GET` by {@linkcode answerHeldNow}, held and logged; false if not. */
function answerOne(
  session: Session,
  context: ServerContext,
  held: NonNullable<Session["heldFolder"]>,
  message: GetMessage,
): boolean {
  if (message.offset !== 0 || !session.replies.roomy) return false;
  const started = context.onLog ? performance.now() : 0;
  try {
    checkRequestLimits(message, context.limits);
  } catch {
    return false;
  }
  const answered = answerHeldNow({
    libc: held.libc,
    held: held.folder,
    wirePath: message.path,
    // Asked for once the file is known to be small: a large one takes
    // no room (nor the batch's buffer) here.
    into: () => session.replies.room(),
    algorithm: session.digest,
  });
  if (answered === undefined) return false;
  session.replies.commit(answered.reply);
  // Busy from here, as the request loop marks each request: the loop
  // marks the session idle once nothing more is buffered.
  session.busy = true;
  if (context.onLog) {
    emit(context, {
      protocol: "ferry",
      request: "GET",
      path: message.path,
      bytes: answered.size,
      result: "ok",
      peer: session.peer,
      time: new Date(),
      started,
    });
  }
  return true;
}
