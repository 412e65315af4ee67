/**
 * One folder descriptor a connection keeps between requests, for the
 * strict-mode fast path of small `GET`s (`_server/small_get.ts`): a tree
 * download asks for the files of one folder one after another, and the
 * folder is walked from the root once for all of them (with
 * `openat(O_NOFOLLOW | O_DIRECTORY)` per segment, `openFolderAt`) instead
 * of once per file. What is opened in it is still proven afterwards by the
 * kernel's name of the file's own descriptor ({@linkcode HeldFolder.names}),
 * so a folder renamed since it was opened only costs a walk again.
 *
 * @module
 */

import { type Libc, openFolderAt } from "./dir_handle.ts";
import { MAX_PATH_BYTES } from "../protocol.ts";

const ENCODER = new TextEncoder();

/**
 * The descriptor of the folder of the last small `GET`, held open until
 * another folder is asked for or {@linkcode HeldFolder.close}.
 *
 * @example Hold a folder
 * ```ts
 * import assert from "node:assert/strict";
 * import { strictLibc } from "./dir_handle.ts";
 * import { HeldFolder } from "./held_folder.ts";
 * const libc = strictLibc();
 * if (libc) {
 *   const dir = await Deno.realPath(
 *     await Deno.makeTempDir({ prefix: "ferry_test_" }),
 *   );
 *   const held = new HeldFolder(libc, dir);
 *   try {
 *     await Deno.mkdir(`${dir}/a`);
 *     const fd = held.open(["a", "x.txt"], 1, "a/x.txt");
 *     assert.equal(held.open(["a", "y.txt"], 1, "a/y.txt"), fd);
 *   } finally {
 *     held.close();
 *     await Deno.remove(dir, { recursive: true });
 *   }
 * }
 * ```
 */
export class HeldFolder {
  #libc: Libc;
  #realRoot: string;
  #key: string | undefined;
  #fd = -1;
  /** The root and `/` as bytes, then room for a wire path. */
  #expected: Uint8Array;
  #prefix: number;
  /** A kernel name read back (one byte more, to see a longer one). */
  #actual: Uint8Array<ArrayBuffer>;

  /**
   * Holds folders below `realRoot`.
   *
   * @param libc The binding.
   * @param realRoot The served folder, already resolved with `Deno.realPath`.
   */
  constructor(libc: Libc, realRoot: string) {
    this.#libc = libc;
    this.#realRoot = realRoot;
    const prefix = ENCODER.encode(realRoot === "/" ? "/" : `${realRoot}/`);
    this.#prefix = prefix.length;
    this.#expected = new Uint8Array(prefix.length + MAX_PATH_BYTES);
    this.#expected.set(prefix);
    this.#actual = new Uint8Array(this.#expected.length + 1);
  }

  /**
   * The descriptor of the folder made of the first `count` segments (the
   * held one if it is that folder, else walked from the root and held).
   *
   * @param segments Checked wire path segments.
   * @param count How many of them make the folder.
   * @param wirePath The request's path, for messages.
   * @returns The folder's descriptor (the holder closes it).
   * @throws {FerryError} As `openFolderAt`: `FORBIDDEN` for a link or a
   * file on the way, `NOT_FOUND` for a missing folder.
   */
  open(segments: readonly string[], count: number, wirePath: string): number {
    // The folder of a file's path is the path up to its last `/` (the
    // segments are that path split at each): no join per request.
    const key = count === segments.length - 1
      ? wirePath.slice(0, Math.max(wirePath.lastIndexOf("/"), 0))
      : segments.slice(0, count).join("/");
    if (key === this.#key) return this.#fd;
    this.close();
    this.#fd = openFolderAt(
      this.#libc,
      this.#realRoot,
      segments.slice(0, count),
      wirePath,
    );
    this.#key = key;
    return this.#fd;
  }

  /**
   * Whether the kernel's name of the descriptor `fd` (`/proc/self/fd`) is
   * exactly the root joined with `wirePath`: the file opened is the one at
   * that path now, inside the root. Compared as bytes in reused buffers.
   *
   * @param fd A descriptor opened in a held folder.
   * @param wirePath The request's checked path.
   * @returns Whether the name is that path.
   */
  names(fd: number, wirePath: string): boolean {
    const expected = this.#expected;
    const { read, written } = ENCODER.encodeInto(
      wirePath,
      expected.subarray(this.#prefix),
    );
    if (read !== wirePath.length) return false;
    const length = this.#prefix + written;
    const actual = this.#actual;
    if (this.#libc.kernelNameOf(fd, actual) !== length) return false;
    for (let i = 0; i < length; i++) {
      if (actual[i] !== expected[i]) return false;
    }
    return true;
  }

  /** Closes the held descriptor, if any. */
  close(): void {
    if (this.#key === undefined) return;
    this.#key = undefined;
    this.#libc.close(this.#fd);
    this.#fd = -1;
  }
}
