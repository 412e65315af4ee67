/**
 * Test data for the benchmark: big files built from one random 1 MiB block
 * written repeatedly with a varying prefix (nothing in the benchmark
 * compresses, so this is as honest as fully random data and far quicker to
 * make), trees of small files in nested folders, warming the page cache,
 * and checking what arrived.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { MIB } from "./_stats.ts";

/**
 * Makes one block of random bytes.
 *
 * @param size Block size in bytes.
 * @returns The block.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { randomBlock } from "./_data.ts";
 * assert(randomBlock(1024).length === 1024);
 * ```
 */
export function randomBlock(size: number = MIB): Uint8Array {
  const block = new Uint8Array(size);
  for (let at = 0; at < size; at += 65536) {
    crypto.getRandomValues(block.subarray(at, Math.min(size, at + 65536)));
  }
  return block;
}

/**
 * Writes a file of `bytes` bytes: the random block over and over, each copy
 * stamped with its index and a salt in its first 12 bytes so that no two
 * blocks (and no two files) are equal.
 *
 * @param path Where to write.
 * @param bytes File size.
 * @param block The random block.
 * @param salt Distinguishes files of the same size.
 * @returns When written.
 *
 * @example
 * ```ts ignore
 * await writeBigFile("/tmp/x.bin", 8 * MIB, randomBlock(), 1);
 * ```
 */
export async function writeBigFile(
  path: string,
  bytes: number,
  block: Uint8Array,
  salt: number,
): Promise<void> {
  const buffer = new Uint8Array(block);
  const view = new DataView(buffer.buffer);
  using file = await Deno.open(path, {
    write: true,
    create: true,
    truncate: true,
  });
  let index = 0;
  for (let done = 0; done < bytes; done += buffer.length, index++) {
    view.setUint32(0, index);
    view.setUint32(4, salt);
    view.setUint32(8, bytes % 0x1_0000_0000);
    const chunk = buffer.subarray(0, Math.min(buffer.length, bytes - done));
    await writeAllTo(file, chunk);
  }
}

async function writeAllTo(file: Deno.FsFile, chunk: Uint8Array): Promise<void> {
  for (let at = 0; at < chunk.length;) {
    at += await file.write(chunk.subarray(at));
  }
}

/** A tree of small files made by {@linkcode writeFileTree}. */
export interface FileTree {
  /** The tree's folder, relative to the data root (`files_1000x4k`). */
  name: string;
  /** Number of files. */
  count: number;
  /** Size of each file. */
  size: number;
  /** Relative paths of the files inside the tree, `/`-separated. */
  files: string[];
}

/**
 * Writes `count` files of `size` bytes in nested folders under
 * `root/name`: `t<i % 10>/s<(i / 10) % 10>/f<i>.bin`, so up to 100 leaf
 * folders two levels deep.
 *
 * @param root The data root.
 * @param name The tree's folder name.
 * @param count How many files.
 * @param size Bytes per file (at most the block size).
 * @param block Random block the contents are cut from.
 * @returns The tree's description.
 *
 * @example
 * ```ts ignore
 * const tree = await writeFileTree("/tmp/src", "files_10x4k", 10, 4096, randomBlock());
 * ```
 */
export async function writeFileTree(
  root: string,
  name: string,
  count: number,
  size: number,
  block: Uint8Array,
): Promise<FileTree> {
  const files: string[] = [];
  const folders = new Set<string>();
  for (let i = 0; i < count; i++) {
    const folder = `t${i % 10}/s${Math.floor(i / 10) % 10}`;
    folders.add(folder);
    files.push(`${folder}/f${i}.bin`);
  }
  for (const folder of folders) {
    await Deno.mkdir(`${root}/${name}/${folder}`, { recursive: true });
  }
  const content = new Uint8Array(size);
  const view = new DataView(content.buffer);
  const span = Math.max(1, block.length - size);
  for (let i = 0; i < count; i++) {
    const offset = (i * 4099) % span;
    content.set(block.subarray(offset, offset + size));
    if (size >= 4) view.setUint32(0, i);
    await Deno.writeFile(`${root}/${name}/${files[i]}`, content);
  }
  return { name, count, size, files };
}

/**
 * Reads files once so that their pages are in the page cache.
 *
 * @param paths Files to read.
 * @returns When read.
 *
 * @example
 * ```ts ignore
 * await warm(["/tmp/src/big_1g.bin"]);
 * ```
 */
export async function warm(paths: readonly string[]): Promise<void> {
  const buffer = new Uint8Array(MIB);
  for (const path of paths) {
    using file = await Deno.open(path);
    while ((await file.read(buffer)) !== null) {
      // only the reading matters
    }
  }
}

/**
 * SHA-256 of a file, hex.
 *
 * @param path The file.
 * @returns Lowercase hex digest.
 *
 * @example
 * ```ts ignore
 * const hex = await sha256File("/tmp/src/big_64m.bin");
 * ```
 */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  const buffer = new Uint8Array(MIB);
  using file = await Deno.open(path);
  while (true) {
    const n = await file.read(buffer);
    if (n === null) break;
    hash.update(buffer.subarray(0, n));
  }
  return hash.digest("hex");
}

/** Count and total size of the regular files in a folder tree. */
export interface TreeCount {
  /** Number of regular files. */
  files: number;
  /** Sum of their sizes. */
  bytes: number;
}

/**
 * Counts the regular files under a folder and adds up their sizes.
 *
 * @param dir The folder (missing counts as empty).
 * @returns Files and bytes.
 *
 * @example
 * ```ts ignore
 * const { files, bytes } = await countTree("/tmp/dst");
 * ```
 */
export async function countTree(dir: string): Promise<TreeCount> {
  const total: TreeCount = { files: 0, bytes: 0 };
  let entries: AsyncIterable<Deno.DirEntry>;
  try {
    entries = Deno.readDir(dir);
    for await (const entry of entries) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory) {
        const sub = await countTree(path);
        total.files += sub.files;
        total.bytes += sub.bytes;
      } else if (entry.isFile) {
        total.files++;
        total.bytes += (await Deno.stat(path)).size;
      }
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return total;
}

/**
 * Size of a file, or -1 when it does not exist.
 *
 * @param path The file.
 * @returns Its size in bytes, or -1.
 *
 * @example
 * ```ts ignore
 * import assert from "node:assert/strict";
 * assert((await fileSize("/nonexistent")) === -1);
 * ```
 */
export async function fileSize(path: string): Promise<number> {
  try {
    return (await Deno.stat(path)).size;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return -1;
    throw error;
  }
}

/**
 * Removes a file or folder tree if it exists.
 *
 * @param path What to remove.
 * @returns When gone.
 *
 * @example
 * ```ts ignore
 * await removeIfExists("/tmp/dst");
 * ```
 */
export async function removeIfExists(path: string): Promise<void> {
  try {
    await Deno.remove(path, { recursive: true });
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}
