/**
 * Pipelined downloads: many `GET`s on one connection, up to a window of
 * requests sent ahead of their replies (which the server sends in request
 * order), and the copy of a remote folder tree built on them.
 *
 * Every file goes through the same local end and receive path as a single
 * download (`openReceiver`, `receiveFile`: `DEST.part`, digest check,
 * rename). A refusal of one
 * file (`NOT_FOUND`, `FORBIDDEN`, `CHANGED`, an integrity failure, a local
 * error before the transfer) is reported and the rest go on; only a broken
 * session stops them.
 *
 * @module
 */

import { localPath } from "./local_path.ts";
import { receiveFile, type ReceiveFileOptions } from "./receive.ts";
import {
  receiveBuffered,
  receiveBufferedNow,
  wholeReplyBytes,
} from "./receive_buffered.ts";
import {
  type NativeTarget,
  openReceiverSync,
  type Receiver,
} from "./receiver.ts";
import { HeldFolders, type NativeWrite, nativeWrite } from "./native_write.ts";
import { checkTreeName, looseName, SafeDest } from "./safe_dest.ts";
import {
  asFerryError,
  type FileOutcome,
  type SessionIo,
  windowOf,
} from "./session_io.ts";
import type { TransferResult } from "./types.ts";
import { FerryError } from "../errors.ts";
import {
  encodeMessage,
  encodeMessageInto,
  type Entry,
  MAX_PATH_BYTES,
  type Message,
  writeAll,
} from "../protocol.ts";

/**
 * One file of {@linkcode pipelineGet}.
 *
 * @example Get a file into a local path
 * ```ts
 * import assert from "node:assert/strict";
 * import type { GetManyItem } from "./tree_get.ts";
 * const item: GetManyItem = { path: "docs/a.txt", destination: "a.txt" };
 * assert(item.destination === "a.txt");
 * ```
 */
export interface GetManyItem {
  /** File on the server. */
  path: string;
  /** Local file path. */
  destination: string;
}

/**
 * Options of {@linkcode pipelineGet} (and `FerryClient.getMany`).
 *
 * @example A small window
 * ```ts
 * import assert from "node:assert/strict";
 * import type { GetManyOptions } from "./tree_get.ts";
 * const options: GetManyOptions = { window: 4, overwrite: true };
 * assert(options.window === 4);
 * ```
 */
export interface GetManyOptions {
  /**
   * Most requests sent ahead of their replies.
   *
   * @default {128}
   */
  window?: number;
  /**
   * Replace existing local files.
   *
   * @default {false}
   */
  overwrite?: boolean;
  /** Called when a file's data starts, with its size. */
  onStart?: (path: string, size: number) => void;
  /** Called after each chunk of a file. */
  onProgress?: (path: string, done: number, total: number) => void;
  /** Called once per item, in order, when it succeeded or failed. */
  onFile?: (outcome: FileOutcome) => void;
}

/**
 * Requests a download keeps ahead of its replies by default: requests go
 * out half a window at a time, so 64 GETs share a write, and the server
 * answers as many small files in one (`_server/reply_batch.ts`); each
 * request in flight holds its open `DEST.part`.
 */
const GET_WINDOW = 128;

/**
 * An item {@linkcode getTree} made for a path it has just found free (see
 * `SafeDest.wasAbsent`): its local end skips the check for an existing
 * file, and saves it with libc where `native` is set
 * (`./native_write.ts`). A class of this module, so that no caller can
 * make one; not a mark kept in weak collections (a tree makes thousands).
 */
class CheckedItem implements GetManyItem {
  path: string;
  destination: string;
  native: NativeTarget | undefined;

  constructor(path: string, destination: string) {
    this.path = path;
    this.destination = destination;
  }
}

/**
 * Largest listed size saved with libc: its writes are synchronous, as the
 * `Deno` path's writes of at most 64 KiB are (larger files are written
 * asynchronously, so that hashing overlaps the write).
 */
const NATIVE_MAX_BYTES = 64 * 1024;

/** A request sent, waiting for its reply. */
interface InFlight {
  index: number;
  receiver: Receiver;
  /** Local names it writes ({@linkcode localNames}). */
  names: LocalNames;
}

/**
 * The local names a download writes, `DEST` and `DEST.part`, folded
 * loosely (as a case-insensitive file system might take them for one):
 * the folder they are in, resolved, and their names there. Kept apart, so
 * that the files of one folder share its key (a string hashed once) and
 * each adds only its short names.
 */
interface LocalNames {
  /** The folder, resolved and folded. */
  folder: string;
  /** `DEST` and `DEST.part` in it, folded. */
  names: [string, string];
}

/** The folder {@linkcode localNames} resolved last, and its key. */
interface LastFolder {
  folder?: string;
  resolved?: string;
  loose?: string;
}

/**
 * The local names a download to `destination` writes ({@linkcode
 * LocalNames}). `folders` keeps the last folder resolved: the files of a
 * tree come folder by folder, and resolving a folder joined with a plain
 * name is resolving the folder, then joining.
 */
function localNames(
  cwd: string,
  destination: string,
  folders: LastFolder,
): LocalNames {
  let cut = destination.lastIndexOf("/");
  let name = destination.slice(cut + 1);
  let folder: string;
  if (
    POSIX_PATHS && name !== "" && name !== "." && name !== ".." && cut > 0
  ) {
    const given = destination.slice(0, cut);
    if (given !== folders.folder) {
      folders.folder = given;
      folders.resolved = localPath.resolve(cwd, given);
      folders.loose = looseName(folders.resolved);
    }
    folder = folders.loose!;
  } else {
    // A resolved path ends in a name after its last separator.
    const whole = localPath.resolve(cwd, destination);
    cut = Math.max(whole.lastIndexOf("/"), whole.lastIndexOf(localPath.sep));
    name = whole.slice(cut + 1);
    folder = looseName(cut === 0 ? whole.slice(0, 1) : whole.slice(0, cut));
  }
  const loose = looseName(name);
  return { folder, names: [loose, `${loose}.part`] };
}

/** Counts of local names, by folder ({@linkcode LocalNames}). */
class NameCounts {
  #folders = new Map<string, Map<string, number>>();

  has(local: LocalNames, which: 0 | 1): boolean {
    return this.#folders.get(local.folder)?.has(local.names[which]) ?? false;
  }

  hasAny(local: LocalNames): boolean {
    const names = this.#folders.get(local.folder);
    return names !== undefined &&
      (names.has(local.names[0]) || names.has(local.names[1]));
  }

  add(local: LocalNames, which: 0 | 1): void {
    let names = this.#folders.get(local.folder);
    if (names === undefined) this.#folders.set(local.folder, names = new Map());
    const name = local.names[which];
    names.set(name, (names.get(name) ?? 0) + 1);
  }

  remove(local: LocalNames, which: 0 | 1): void {
    const names = this.#folders.get(local.folder);
    if (names === undefined) return;
    const name = local.names[which];
    const count = (names.get(name) ?? 1) - 1;
    if (count > 0) names.set(name, count);
    else {
      names.delete(name);
      if (names.size === 0) this.#folders.delete(local.folder);
    }
  }
}

/** Paths are POSIX paths here (`/` their only separator). */
const POSIX_PATHS = Deno.build.os !== "windows";

/**
 * Downloads `items` over one session, keeping up to `window` `GET`s ahead of
 * the replies.
 *
 * @param io The session, from inside the client's request queue.
 * @param items Files and their local paths.
 * @param options Window, overwrite, callbacks.
 * @returns One outcome per item, in order.
 */
export async function pipelineGet(
  io: SessionIo,
  items: readonly GetManyItem[],
  options: GetManyOptions = {},
): Promise<FileOutcome[]> {
  return await new GetPipeline(io, items, options).run();
}

/**
 * Options of {@linkcode pipelineListed} (and `FerryClient.getListed`).
 *
 * @example Count the files once the listing is in
 * ```ts
 * import type { GetListedOptions } from "./tree_get.ts";
 * const options: GetListedOptions = { onListed: () => console.log("listed") };
 * options.onListed?.();
 * ```
 */
export interface GetListedOptions extends GetManyOptions {
  /**
   * Called once the whole listing has arrived and been planned. If it
   * throws, the call fails with that error as if the plan had thrown: the
   * `GET`s already sent are not waited for, and the session closes.
   */
  onListed?: () => void;
}

/**
 * A listing that {@linkcode pipelineListed} downloads from as it arrives.
 */
export interface ListedSource {
  /** The entries of each `ENTRIES` frame (`LIST` is sent on the first call). */
  listing: AsyncIterator<readonly Entry[]>;
  /** Turns entries into files to get, in order. */
  plan: (entries: readonly Entry[]) => GetManyItem[];
}

/**
 * Downloads the files `source.plan` picks from a listing while it still
 * arrives: each batch of entries is planned as it comes and the first
 * window of `GET`s leaves at once (the server answers them after the
 * listing's `END`), so the client's preparation overlaps the server's walk
 * and no round trip separates the listing from the first file.
 *
 * @param io The session, from inside the client's request queue.
 * @param source The listing and the plan.
 * @param options Window, overwrite, callbacks.
 * @returns One outcome per file planned, in order.
 * @throws {FerryError} What the listing or the plan throws; the session is
 * closed if `GET`s were sent by then.
 */
export async function pipelineListed(
  io: SessionIo,
  source: ListedSource,
  options: GetListedOptions = {},
): Promise<FileOutcome[]> {
  const items: GetManyItem[] = [];
  const pipeline = new GetPipeline(io, items, options);
  await pipeline.list(async () => {
    const next = await source.listing.next();
    if (next.done) {
      // Inside the listing's step: if it throws, the GETs sent so far are
      // discarded (their parts removed) as when the plan throws.
      options.onListed?.();
      return false;
    }
    for (const item of source.plan(next.value)) items.push(item);
    return true;
  });
  return await pipeline.run();
}

/**
 * The state of one {@linkcode pipelineGet}: the outcomes so far, the
 * requests in flight, and the local names they write.
 */
class GetPipeline {
  #io: SessionIo;
  #items: readonly GetManyItem[];
  #options: GetManyOptions;
  #window: number;
  #outcomes: FileOutcome[];
  #inFlight: InFlight[] = [];
  #next = 0;
  // Local names of the requests in flight, and every destination opened:
  // a download never starts while another one writes one of its names
  // (`a` and `a.part`, or the same file twice), since one's rename would
  // land on the other's part.
  #claimed = new NameCounts();
  #opened = new NameCounts();
  // Relative destinations are resolved against the working folder read
  // once (a resolve alone asks the system for it on every call).
  #cwd = Deno.cwd();
  #lastFolder: LastFolder = {};
  /**
   * The options {@linkcode GetPipeline.#receiveHeadNow} gives each reply
   * taken whole: one object, its path set per file, its callbacks made
   * once (not two closures a file).
   */
  #nowOptions: ReceiveFileOptions;
  /** Where {@linkcode GetPipeline.#send} encodes a batch (grown as needed). */
  #sendBuffer = new Uint8Array(16 * 1024);

  constructor(
    io: SessionIo,
    items: readonly GetManyItem[],
    options: GetManyOptions,
  ) {
    this.#window = windowOf(options.window ?? GET_WINDOW);
    this.#io = io;
    this.#items = items;
    this.#options = options;
    this.#outcomes = new Array(items.length);
    const { onStart, onProgress } = options;
    const now: ReceiveFileOptions = { path: "" };
    if (onStart) now.onStart = (size) => onStart(now.path, size);
    if (onProgress) {
      now.onProgress = (done, total) => onProgress(now.path, done, total);
    }
    this.#nowOptions = now;
  }

  /**
   * Reads a listing to its end with `more` (which adds the items of one
   * frame, false at the end), sending the first window of `GET`s as soon
   * as there are items: their replies come after the listing.
   */
  async list(more: () => Promise<boolean>): Promise<void> {
    try {
      while (await more()) {
        const batch = this.#refill();
        if (batch.length > 0) await this.#send(batch);
      }
    } catch (error) {
      if (this.#inFlight.length > 0) {
        // Replies are owed to GETs sent: the session cannot go on.
        for (const { receiver } of this.#inFlight) await receiver.discard();
        this.#inFlight.length = 0;
        this.#io.close();
      }
      throw error;
    }
  }

  /** Requests and receives every item; a broken session fails the rest. */
  async run(): Promise<FileOutcome[]> {
    let fatal: FerryError | undefined;
    try {
      while (this.#next < this.#items.length || this.#inFlight.length > 0) {
        const batch = this.#refill();
        if (batch.length > 0) await this.#send(batch);
        // Most replies of small files are whole in memory: taken without
        // an await each (a promise per file costs more than its bytes).
        if (this.#receiveHeadNow()) continue;
        const head = this.#inFlight[0];
        if (
          head !== undefined && await this.#awaitWhole(head) &&
          this.#receiveHeadNow()
        ) continue;
        fatal = await this.#receiveHead();
        if (fatal !== undefined) break;
      }
    } catch (error) {
      fatal = asFerryError(error); // a send failed: the session is gone
    } finally {
      for (const { index, receiver } of this.#inFlight) {
        await receiver.discard();
        this.#fail(index, fatal ?? connectionLost());
      }
      this.#inFlight.length = 0;
    }
    if (fatal !== undefined) {
      this.#io.close();
      while (this.#next < this.#items.length) this.#fail(this.#next++, fatal);
    }
    return this.#outcomes;
  }

  /**
   * Sends a batch of `GET`s in one write, encoded in place in a reused
   * buffer (`io.send` encodes each into an array of its own and copies);
   * anything that does not encode that way goes through `io.send`, which
   * reports it.
   */
  async #send(batch: Message[]): Promise<void> {
    let out = this.#sendBuffer;
    let at = 0;
    for (const message of batch) {
      let n: number;
      try {
        while ((n = encodeMessageInto(message, out, at)) === 0) {
          const grown = new Uint8Array(out.length * 2);
          grown.set(out.subarray(0, at));
          out = this.#sendBuffer = grown;
        }
      } catch {
        return await this.#io.send(batch); // nothing was sent yet
      }
      at += n;
    }
    await writeAll(this.#io.sink, out.subarray(0, at));
  }

  /**
   * Opens the local ends of the next requests. Requests go out in batches:
   * the window is refilled once half of it is answered, so that one write
   * carries many requests (a write per file costs more than the file's own
   * bytes when files are small).
   */
  #refill(): Message[] {
    const batch: Message[] = [];
    if (this.#inFlight.length > this.#window / 2) return batch;
    while (
      this.#next < this.#items.length && this.#inFlight.length < this.#window
    ) {
      const names = localNames(
        this.#cwd,
        this.#items[this.#next].destination,
        this.#lastFolder,
      );
      if (this.#claimed.hasAny(names)) {
        if (this.#inFlight.length > 0) break; // wait until those are done
      }
      const message = this.#open(this.#next++, names);
      if (message !== undefined) batch.push(message);
    }
    return batch;
  }

  /** Opens one item's local end; its `GET`, or undefined if it failed. */
  #open(index: number, names: LocalNames): Message | undefined {
    const item = this.#items[index];
    let receiver: Receiver;
    const message: Message = { type: "get", path: item.path, offset: 0 };
    try {
      if (this.#opened.has(names, 1)) {
        // Its part would replace a file saved by this same call.
        throw new FerryError(
          "LOCAL",
          `Cannot save ${item.destination}: its temporary name ${item.destination}.part is a file this download saved`,
        );
      }
      // A path too long fails here, not mid-batch (a UTF-16 unit is at
      // most 3 bytes of UTF-8: most paths need no encoding to tell).
      if (item.path.length * 3 > MAX_PATH_BYTES) encodeMessage(message);
      // A name seen free is not free once a file was saved there.
      const checked = item instanceof CheckedItem &&
        !this.#opened.has(names, 0);
      receiver = openReceiverSync(
        item.destination,
        this.#options.overwrite ?? false,
        {
          checked,
          native: checked ? (item as CheckedItem).native : undefined,
        },
      );
    } catch (error) {
      this.#fail(index, error);
      return undefined;
    }
    this.#opened.add(names, 0);
    this.#claimed.add(names, 0);
    this.#claimed.add(names, 1);
    this.#inFlight.push({ index, receiver, names });
    return message;
  }

  /**
   * Receives the reply to the oldest request in flight; returns the error
   * that broke the session, if one did.
   */
  async #receiveHead(): Promise<FerryError | undefined> {
    const head = this.#inFlight[0];
    if (head === undefined) return undefined;
    const item = this.#items[head.index];
    const onProgress = this.#options.onProgress;
    try {
      const options = {
        path: item.path,
        onStart: (size: number) => this.#options.onStart?.(item.path, size),
        onProgress: onProgress &&
          ((done: number, total: number) => onProgress(item.path, done, total)),
      };
      // A small file's whole reply is often in memory already.
      const result = await receiveBuffered(this.#io, head.receiver, options) ??
        await receiveFile(this.#io, head.receiver, options);
      this.#succeed(head, result);
    } catch (error) {
      this.#done(head);
      this.#fail(head.index, error);
      if (!this.#io.recoverable(error)) return asFerryError(error);
    }
    return undefined;
  }

  /**
   * Takes the reply to the oldest request in flight if it is whole in
   * memory and all of it synchronous (`receiveBufferedNow`); false if it
   * left it to {@linkcode GetPipeline.#receiveHead}.
   */
  #receiveHeadNow(): boolean {
    const head = this.#inFlight[0];
    if (head === undefined || head.receiver.saveWhole === undefined) {
      return false;
    }
    const now = this.#nowOptions;
    now.path = this.#items[head.index].path;
    let result: TransferResult | undefined;
    try {
      result = receiveBufferedNow(this.#io, head.receiver, now);
    } catch (error) {
      // A local failure after the reply was consumed: still in step.
      this.#done(head);
      this.#fail(head.index, error);
      return true;
    }
    if (result === undefined) return false;
    this.#succeed(head, result);
    return true;
  }

  /**
   * Waits for the rest of a small reply that is partly received (it
   * straddles the end of a read, about one in sixty of 1 KiB files), so
   * that {@linkcode GetPipeline.#receiveHeadNow} takes it whole instead of
   * `receiveFile` reading it frame by frame; false where that does not
   * apply or the session ended (`receiveFile` then reads and reports).
   */
  async #awaitWhole(head: InFlight): Promise<boolean> {
    const io = this.#io;
    if (head.receiver.saveWhole === undefined || !io.fill || !io.buffered) {
      return false;
    }
    // At most twice: the DATA header first if it is cut, then the rest.
    for (let round = 0; round < 2; round++) {
      const view = io.buffered();
      const need = wholeReplyBytes(view, io.digest, NATIVE_MAX_BYTES);
      if (need === undefined) return false;
      if (view.length >= need) return true;
      if (!await io.fill(need)) return false;
    }
    return true;
  }

  /** The head request's file is saved. */
  #succeed(head: InFlight, result: TransferResult): void {
    this.#done(head);
    const item = this.#items[head.index];
    this.#report(head.index, {
      path: item.path,
      kind: "file",
      local: item.destination,
      result,
    });
  }

  /** The head request is answered: its local names are free again. */
  #done(head: InFlight): void {
    this.#inFlight.shift();
    this.#claimed.remove(head.names, 0);
    this.#claimed.remove(head.names, 1);
  }

  #report(index: number, outcome: FileOutcome): void {
    this.#outcomes[index] = outcome;
    this.#options.onFile?.(outcome);
  }

  #fail(index: number, error: unknown): void {
    const item = this.#items[index];
    this.#report(index, {
      path: item.path,
      kind: "file",
      local: item.destination,
      error: asFerryError(error),
    });
  }
}

function connectionLost(): FerryError {
  return new FerryError("CONNECTION", "Connection lost");
}

/**
 * What {@linkcode getTree} needs of a client.
 *
 * @example The shape
 * ```ts
 * import assert from "node:assert/strict";
 * import type { TreeGetClient } from "./tree_get.ts";
 * const methods: (keyof TreeGetClient)[] = ["stat", "getListed"];
 * assert(methods.length === 2);
 * ```
 */
export interface TreeGetClient {
  /** `STAT`. */
  stat(path: string): Promise<Entry>;
  /** A recursive `LIST` with the `GET`s of its files pipelined behind it. */
  getListed(
    path: string,
    plan: (entries: readonly Entry[]) => GetManyItem[],
    options?: GetListedOptions,
  ): Promise<FileOutcome[]>;
}

/**
 * Options of {@linkcode getTree}.
 *
 * @example Overwrite
 * ```ts
 * import assert from "node:assert/strict";
 * import type { GetTreeOptions } from "./tree_get.ts";
 * const options: GetTreeOptions = { overwrite: true };
 * assert(options.overwrite);
 * ```
 */
export interface GetTreeOptions extends GetManyOptions {
  /**
   * Called once with the listing's totals, when it has all arrived (the
   * first files may be requested before: their replies come after it):
   * every file listed, those refused locally (reported as failed) too,
   * and the bytes of those requested. If it throws, the call fails as
   * {@linkcode GetListedOptions.onListed} says.
   */
  onListed?: (files: number, bytes: number) => void;
}

/**
 * What {@linkcode getTree} did.
 *
 * @example Count failures
 * ```ts
 * import assert from "node:assert/strict";
 * import type { TreeReport } from "./tree_get.ts";
 * const report: TreeReport = { outcomes: [], total: 0, failed: 0 };
 * assert(report.failed === 0);
 * ```
 */
export interface TreeReport {
  /** One outcome per entry (files and folders) and per refused name. */
  outcomes: FileOutcome[];
  /** Number of entries. */
  total: number;
  /** Number of entries that failed. */
  failed: number;
}

/**
 * Copies the remote folder `remoteDir` into the local folder `destination`:
 * one `STAT`, one recursive `LIST`, then pipelined `GET`s on the same
 * connection. Folders (empty ones too) are created, and every folder's
 * modification time is set after its contents. Names from the server are
 * checked ({@linkcode checkTreeName}) and nothing is written through a
 * symbolic link under `destination`; a refused name is reported and the rest
 * goes on.
 *
 * @param client A connected client.
 * @param remoteDir Folder on the server; `""` is the root.
 * @param destination Local folder, created if missing.
 * @param options Overwrite, window, callbacks.
 * @returns One outcome per entry.
 * @throws {FerryError} `NOT_FOUND` if `remoteDir` is not a folder, `LOCAL`
 * if `destination` cannot be made, and whatever breaks the session before
 * the files are requested.
 */
export async function getTree(
  client: TreeGetClient,
  remoteDir: string,
  destination: string,
  options: GetTreeOptions = {},
): Promise<TreeReport> {
  const top = await client.stat(remoteDir);
  if (top.kind !== "dir") {
    throw new FerryError("NOT_FOUND", `Not a folder: ${remoteDir}`);
  }
  const dest = await SafeDest.open(destination);
  // libc is bound by the first plan (a few milliseconds), once the LIST is
  // out: while the server walks, not before it is asked to.
  let native: NativeWrite | undefined;
  let held: HeldFolders | undefined;
  let bound = false;
  const prefix = remoteDir === "" ? "" : `${remoteDir}/`;
  const outcomes: FileOutcome[] = [];
  const report = (outcome: FileOutcome) => {
    outcomes.push(outcome);
    options.onFile?.(outcome);
  };
  const folders: { local: string; mtime: number }[] = [];
  // The files of a folder come one after another: they share its segments
  // and key (`NativeTarget`).
  let lastFolder = { prefix: "", key: "", segments: [] as string[] };
  let files = 0;
  let bytes = 0;
  // Each batch of the listing is checked and prepared as it arrives.
  function plan(entries: readonly Entry[]): GetManyItem[] {
    if (!bound) {
      bound = true;
      native = nativeWrite();
      held = native && new HeldFolders(native, destination);
    }
    const items: GetManyItem[] = [];
    for (const entry of entries) {
      const remote = prefix + entry.name;
      try {
        const segments = checkTreeName(entry.name);
        if (entry.kind === "dir") {
          const local = dest.ensureFolder(segments);
          folders.push({ local, mtime: entry.mtime });
          report({ path: remote, kind: "dir", local });
          continue;
        }
        const local = dest.prepareFile(segments);
        let item: GetManyItem;
        if (!dest.wasAbsent(local)) item = { path: remote, destination: local };
        else {
          const checked = new CheckedItem(remote, local);
          item = checked;
          if (held && entry.size <= NATIVE_MAX_BYTES) {
            const prefix = entry.name.slice(0, entry.name.lastIndexOf("/") + 1);
            if (prefix !== lastFolder.prefix) {
              const folder = segments.slice(0, -1);
              lastFolder = { prefix, key: folder.join("/"), segments: folder };
            }
            checked.native = {
              native: native!,
              folders: held,
              folder: lastFolder.segments,
              key: lastFolder.key,
              name: segments[segments.length - 1],
            };
          }
        }
        items.push(item);
        files++;
        bytes += entry.size;
      } catch (error) {
        // A refused file is one of the listing's files (progress counts it
        // done), its bytes are not: they are never moved.
        if (entry.kind === "file") files++;
        report({ path: remote, kind: entry.kind, error: asFerryError(error) });
      }
    }
    return items;
  }
  try {
    await client.getListed(remoteDir, plan, {
      ...options,
      onFile: report,
      onListed: () => options.onListed?.(files, bytes),
    });
  } finally {
    held?.close();
  }
  // Deepest first, so that setting a folder's time is the last change in
  // it; the destination itself takes the remote folder's time last.
  folders.reverse().push({ local: destination, mtime: top.mtime });
  for (const { local, mtime } of folders) {
    try {
      await Deno.utime(local, new Date(mtime), new Date(mtime));
    } catch {
      // A time that cannot be set does not fail the copy.
    }
  }
  const failed = outcomes.filter((outcome) => outcome.error).length;
  return { outcomes, total: outcomes.length, failed };
}
