/**
 * ferry: file transfer over TCP, verified end to end.
 *
 * A server serves one folder (its root), read-only unless uploads are
 * allowed; a client lists, downloads and uploads. Every transfer ends with
 * the SHA-256 of the whole file, checked by the receiver, and files appear
 * whole or not at all. The wire protocol is specified in
 * [`./protocol`](./protocol.ts).
 *
 * @example Serve a folder and fetch a file from it
 * ```ts ignore
 * import { connect, serve } from "jsr:@ferry/ferry";
 *
 * const controller = new AbortController();
 * const server = await serve({ root: ".", port: 0, signal: controller.signal });
 * await using client = await connect({ port: server.addr.port });
 * console.log(await client.list());
 * await client.get("README.md", "copy_of_readme.md");
 * controller.abort();
 * await server.finished;
 * ```
 *
 * @module
 */

export {
  type FerryServer,
  serve,
  type ServeOptions,
  type ServerLogEvent,
} from "./server.ts";
export type { LimitOptions } from "./_server/limits.ts";
export {
  classicGet,
  type ClassicGetOptions,
  connect,
  type ConnectOptions,
  FerryClient,
  type FileOutcome,
  type GetListedOptions,
  type GetManyItem,
  type GetManyOptions,
  type PutManyItem,
  type PutManyOptions,
  type SyncOptions,
  type SyncPutReport,
  type SyncRecord,
  type SyncReport,
  type SyncStatus,
  type TransferOptions,
  type TransferResult,
} from "./client.ts";
export {
  FERRY_ERROR_CODES,
  FerryError,
  type FerryErrorCode,
  toFerryErrorCode,
} from "./errors.ts";
export type { ByteReader, ByteWriter, Entry } from "./protocol.ts";
