/**
 * {@linkcode KeptParts}: the bound on resumable upload parts that cut
 * uploads leave behind. At most one part is kept per target path (a new
 * resumable upload of the same path drops the older part), and the kept
 * parts together hold at most `maxPartBytes`: past it the oldest go first.
 * The caller removes what these methods hand back and logs it.
 *
 * Parts kept before the server started are not counted; the stale-part
 * sweep (`_server/upload_part.ts`) removes them after 24 h.
 *
 * @module
 */

/** One part kept after a cut upload. */
export interface KeptPart {
  /** Host path of the part. */
  path: string;
  /** Host path of the upload's target. */
  target: string;
  /** The upload's wire path, for the log. */
  wirePath: string;
  /** Bytes in the part. */
  bytes: number;
}

/**
 * The kept parts, oldest first.
 *
 * @example Evict the oldest part past the bound
 * ```ts
 * import assert from "node:assert/strict";
 * import { KeptParts } from "./kept_parts.ts";
 * const parts = new KeptParts(10);
 * assert.deepEqual(parts.keep({ path: "/p1", target: "/a", wirePath: "a", bytes: 6 }), []);
 * const evicted = parts.keep({ path: "/p2", target: "/b", wirePath: "b", bytes: 6 });
 * assert.deepEqual(evicted.map((part) => part.path), ["/p1"]);
 * ```
 */
export class KeptParts {
  #maxBytes: number;
  #byPath = new Map<string, KeptPart>();
  #byTarget = new Map<string, string>();
  #total = 0;

  /**
   * An empty set of kept parts.
   *
   * @param maxBytes The bound on their total size.
   */
  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  /** Bytes of all kept parts. */
  get totalBytes(): number {
    return this.#total;
  }

  /**
   * An upload starts writing `path` for `target`: that part is no longer
   * counted as kept, and another part kept for the same target is handed
   * back for removal.
   *
   * @param path Host path of the part being written.
   * @param target Host path of its target.
   * @returns The older part of the same target, to remove, if any.
   */
  take(path: string, target: string): KeptPart[] {
    this.#drop(path);
    const older = this.#byTarget.get(target);
    if (older === undefined) return [];
    const part = this.#drop(older);
    return part === undefined ? [] : [part];
  }

  /**
   * A cut upload keeps its part: it becomes the newest, replacing any other
   * part of its target, and the oldest parts past the bound are handed
   * back. The newest is never evicted (a single upload larger than the
   * bound can still resume): the total stays within the larger of the
   * bound and that one part.
   *
   * @param part The part kept.
   * @returns The parts to remove.
   */
  keep(part: KeptPart): KeptPart[] {
    const evicted = this.take(part.path, part.target);
    this.#byPath.set(part.path, part);
    this.#byTarget.set(part.target, part.path);
    this.#total += part.bytes;
    for (const oldest of this.#byPath.values()) {
      if (this.#total <= this.#maxBytes || oldest === part) break;
      this.#drop(oldest.path);
      evicted.push(oldest);
    }
    return evicted;
  }

  /**
   * A part is gone (completed, removed): it is no longer counted.
   *
   * @param path Host path of the part.
   */
  forget(path: string): void {
    this.#drop(path);
  }

  #drop(path: string): KeptPart | undefined {
    const part = this.#byPath.get(path);
    if (part === undefined) return undefined;
    this.#byPath.delete(path);
    if (this.#byTarget.get(part.target) === path) {
      this.#byTarget.delete(part.target);
    }
    this.#total -= part.bytes;
    return part;
  }
}
