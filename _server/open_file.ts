/**
 * {@linkcode openResolvedFile}: opens a file the jail resolved, for
 * reading, proven inside the root and still a regular file.
 *
 * @module
 */

import { openInside } from "./path_jail.ts";
import type { HostFile } from "./host_file.ts";
import { FerryError } from "../errors.ts";

/** A served file, open for reading, with its status when it was opened. */
export interface OpenedFile {
  /** The open file; the caller closes it. */
  file: HostFile;
  /** Its `stat()` right after opening. */
  before: Deno.FileInfo;
  /** `Date.now()` taken just before `before` (for the hash cache). */
  observedAt: number;
}

/**
 * Opens `hostPath` for reading, proves it is the file inside the root (a
 * folder on the path may have been swapped for a link out of it since the
 * check) and that it is a regular file.
 *
 * @param realRoot The served folder, already resolved.
 * @param hostPath The resolved host path.
 * @param wirePath The path from the request, for messages.
 * @returns The open file and its status.
 * @throws {FerryError} `FORBIDDEN` if it is not a file or not inside the
 * root, `NOT_FOUND` if it vanished.
 */
export async function openResolvedFile(
  realRoot: string,
  hostPath: string,
  wirePath: string,
): Promise<OpenedFile> {
  const file = await openInside(realRoot, hostPath, wirePath);
  try {
    const observedAt = Date.now();
    const before = await file.stat();
    if (!before.isFile) {
      throw new FerryError("FORBIDDEN", `Not a file: ${wirePath}`);
    }
    return { file, before, observedAt };
  } catch (error) {
    file.close();
    throw error;
  }
}
