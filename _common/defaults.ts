/**
 * Defaults both sides share, with one home each: the port (the classic lab
 * port), the client's host and the idle timeout.
 *
 * @module
 */

/** The port ferry listens on and connects to unless told otherwise. */
export const DEFAULT_PORT = 65432;

/**
 * Most entries one listing holds: the server sends no more, the client
 * takes no more.
 */
export const DEFAULT_MAX_LIST_ENTRIES = 1_000_000;

/** Most bytes of names one listing holds on the client: 256 MiB. */
export const DEFAULT_MAX_LIST_BYTES: number = 256 * 1024 * 1024;

/** The host the client connects to unless told otherwise. */
export const DEFAULT_HOSTNAME = "127.0.0.1";

/**
 * How long either side waits without a byte moving before it gives up on a
 * peer, in milliseconds.
 */
export const DEFAULT_IDLE_TIMEOUT_MS = 60_000;
