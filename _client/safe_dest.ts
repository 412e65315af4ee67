/**
 * The client's jail for trees it receives: names that come from the server
 * are checked before anything is written, and every folder between the
 * destination and a file is created by the client itself and must be a real
 * folder, never a symbolic link.
 *
 * A hostile server may send `../x`, `/etc/x`, `C:/x`, `a\b`, names with NUL
 * or other control bytes, or count on a symbolic link already present under
 * the destination; none of these lets it write outside the destination.
 *
 * @module
 */

import { escapeControls } from "../_common/escape.ts";
import { localPath } from "./local_path.ts";
import { splitWirePath } from "../_common/wire_path.ts";
import { messageOf } from "../_common/text.ts";
import { FerryError } from "../errors.ts";

/**
 * A name for messages: control bytes shown as `\xNN`, cut at 200
 * characters.
 *
 * @param name A name from the other side.
 * @returns A printable form.
 *
 * @example Show a NUL
 * ```ts
 * import assert from "node:assert/strict";
 * import { printableName } from "./safe_dest.ts";
 * assert(printableName("a\0b") === "a\\x00b");
 * ```
 */
export function printableName(name: string): string {
  const cut = name.length > 200 ? name.slice(0, 200) + "…" : name;
  return escapeControls(cut);
}

/**
 * Checks a name of a recursive listing: relative, `/`-separated, no empty,
 * `.` or `..` segment, no backslash, no control byte, no drive letter, no
 * Windows device name, not too long (the server's own rules,
 * `splitWirePath`), and not the root.
 *
 * @param name The name as the server sent it.
 * @returns Its segments.
 * @throws {FerryError} `FORBIDDEN` if the name is refused.
 *
 * @example Accept a nested name, refuse an escape
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkTreeName } from "./safe_dest.ts";
 * assert(checkTreeName("a/b.txt").length === 2);
 * try {
 *   checkTreeName("../evil");
 *   assert(false);
 * } catch (error) {
 *   assert((error as { code: string }).code === "FORBIDDEN");
 * }
 * ```
 */
export function checkTreeName(name: string): string[] {
  let segments: string[];
  try {
    segments = splitWirePath(name);
  } catch (error) {
    if (!(error instanceof FerryError)) throw error;
    throw new FerryError(
      "FORBIDDEN",
      `Refused name from the server: ${printableName(name)}`,
      { cause: error },
    );
  }
  if (segments.length === 0) {
    throw new FerryError("FORBIDDEN", "Refused empty name from the server");
  }
  return segments;
}

/**
 * A destination folder that files and folders are written under.
 *
 * @example Prepare a file path
 * ```ts ignore
 * import { SafeDest } from "./safe_dest.ts";
 * const dest = await SafeDest.open("./copy");
 * const local = dest.prepareFile(["docs", "a.txt"]);
 * console.log(local);
 * ```
 */
export class SafeDest {
  /** The destination folder, as given. */
  readonly root: string;
  /** Folders (relative, `/`-joined) already checked or created. */
  #known = new Set<string>([""]);
  /** The local paths of the folders {@linkcode ensureFolder} has made sure of. */
  #checked = new Map<string, string>();
  /** Names in a folder (relative, `/`-joined), loosely folded, read once. */
  #listings = new Map<string, Set<string>>();
  /**
   * The file {@linkcode prepareFile} prepared last, if it found no trace of
   * it (not even `.part`).
   */
  #absent: string | undefined;
  /** The folder of the file {@linkcode prepareFile} prepared last. */
  #lastFolder?: {
    segments: readonly string[];
    folder: string;
    listing: Set<string>;
  };

  private constructor(root: string) {
    this.root = root;
  }

  /**
   * Creates the destination folder (and its parents) if needed. The
   * destination itself is the user's choice and may be a link to a folder.
   *
   * @param root The destination folder.
   * @returns The destination.
   * @throws {FerryError} `LOCAL` if it exists and is not a folder, or cannot
   * be created.
   */
  static async open(root: string): Promise<SafeDest> {
    try {
      await Deno.mkdir(root, { recursive: true });
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) {
        throw new FerryError(
          "LOCAL",
          `Cannot create ${root}: ${messageOf(error)}`,
          { cause: error },
        );
      }
    }
    const info = await Deno.stat(root).catch(() => undefined);
    if (!info?.isDirectory) {
      throw new FerryError("LOCAL", `Not a folder: ${root}`);
    }
    return new SafeDest(root);
  }

  /**
   * The local path of checked segments (no checks).
   *
   * @param segments Segments from {@linkcode checkTreeName}.
   * @returns The joined local path.
   */
  localPath(segments: readonly string[]): string {
    return localPath.join(this.root, ...segments);
  }

  /**
   * Makes sure every folder of `segments` exists under the destination as a
   * real folder: each is made with `mkdir` (one at a time, from the top)
   * unless it exists, then checked with `lstat`.
   *
   * @param segments Segments from {@linkcode checkTreeName}.
   * @returns The folder's local path.
   * @throws {FerryError} `FORBIDDEN` if a segment exists as a symbolic link,
   * `EXISTS` if it exists as something other than a folder, `LOCAL` if it
   * cannot be created.
   */
  ensureFolder(segments: readonly string[]): string {
    // A tree names each folder again for each of its files.
    const whole = segments.join("/");
    const checked = this.#checked.get(whole);
    if (checked !== undefined) return checked;
    for (let i = 1; i <= segments.length; i++) {
      const relative = segments.slice(0, i).join("/");
      if (this.#known.has(relative)) continue;
      const path = this.localPath(segments.slice(0, i));
      // Made first, looked at after: a new tree costs no failed lstat (a
      // thrown NotFound costs far more than the call), and mkdir never
      // follows a link that is there already.
      try {
        Deno.mkdirSync(path);
      } catch (error) {
        if (!(error instanceof Deno.errors.AlreadyExists)) {
          throw new FerryError(
            "LOCAL",
            `Cannot create ${path}: ${messageOf(error)}`,
            { cause: error },
          );
        }
      }
      const info = lstatOrUndefined(path);
      if (info?.isSymlink) {
        throw new FerryError(
          "FORBIDDEN",
          `Refused to write through a symbolic link: ${path}`,
        );
      }
      if (!info?.isDirectory) {
        throw new FerryError("EXISTS", `Exists and is not a folder: ${path}`);
      }
      this.#known.add(relative);
    }
    const path = this.localPath(segments);
    this.#checked.set(whole, path);
    return path;
  }

  /**
   * Makes sure a file may be written at `segments`: its folders are real
   * folders (created if missing), and neither the file nor its `.part`
   * exists as a symbolic link or a folder.
   *
   * @param segments Segments from {@linkcode checkTreeName}.
   * @returns The file's local path.
   * @throws {FerryError} `FORBIDDEN` for a symbolic link on the way or at the
   * file, `EXISTS` for a folder where the file goes, `LOCAL` if a folder
   * cannot be created.
   */
  prepareFile(segments: readonly string[]): string {
    const name = segments[segments.length - 1];
    // A listing names the files of one folder one after another: the
    // folder's path and listing are looked up once for the run of them
    // (its segments compared, not joined anew for each file).
    let last = this.#lastFolder;
    if (last === undefined || !sameFolder(last.segments, segments)) {
      const relative = segments.slice(0, -1).join("/");
      const folder = this.ensureFolder(segments.slice(0, -1));
      // One listing per folder spares the two lstat calls per file that
      // fail with NotFound (a thrown error costs far more than the call): a
      // name the listing does not hold, even folded loosely (as a case- or
      // normalization-insensitive file system might match it), is absent;
      // any other is checked with lstat as before. The listing is read
      // while the tree is prepared, before any file is opened, as the lstat
      // calls were.
      last = {
        segments: segments.slice(0, -1),
        folder,
        listing: this.#listing(relative, folder),
      };
      this.#lastFolder = last;
    }
    const { folder, listing } = last;
    // The folder is a joined path (normalized) and the name one checked
    // segment: joined as localPath.join would.
    const path = folder === "."
      ? name
      : folder.endsWith(localPath.sep)
      ? folder + name
      : folder + localPath.sep + name;
    let absent = true;
    for (const suffix of ["", ".part"]) {
      const listed = listing.has(looseName(name + suffix));
      absent &&= !listed;
      if (!listed) continue;
      const candidate = path + suffix;
      const info = lstatOrUndefined(candidate);
      if (info?.isSymlink) {
        throw new FerryError(
          "FORBIDDEN",
          `Refused to write through a symbolic link: ${candidate}`,
        );
      }
      if (info !== undefined && !info.isFile) {
        throw new FerryError(
          "EXISTS",
          `Exists and is not a file: ${candidate}`,
        );
      }
    }
    this.#absent = absent ? path : undefined;
    return path;
  }

  /**
   * Whether the last {@linkcode prepareFile} found nothing at this file
   * path (nor at its `.part`) when it prepared it (asked right after it:
   * no set of every path prepared is kept).
   *
   * @param path The path {@linkcode prepareFile} returned last.
   * @returns True when that was the path and the folder listing held
   * neither name.
   */
  wasAbsent(path: string): boolean {
    return path === this.#absent;
  }

  /** The names in a folder of the destination, folded, read once. */
  #listing(relative: string, folder: string): Set<string> {
    let listing = this.#listings.get(relative);
    if (listing === undefined) {
      listing = new Set();
      try {
        for (const entry of Deno.readDirSync(folder)) {
          listing.add(looseName(entry.name));
        }
      } catch (error) {
        throw new FerryError(
          "LOCAL",
          `Cannot read ${folder}: ${messageOf(error)}`,
          { cause: error },
        );
      }
      this.#listings.set(relative, listing);
    }
    return listing;
  }
}

/** Whether `folder` is the folder of the file at `segments`. */
function sameFolder(
  folder: readonly string[],
  segments: readonly string[],
): boolean {
  if (folder.length !== segments.length - 1) return false;
  for (let i = 0; i < folder.length; i++) {
    if (folder[i] !== segments[i]) return false;
  }
  return true;
}

/**
 * A name folded more loosely than any file system compares names
 * (compatibility normalization, then upper and lower case, so that `ß`
 * meets `ss` and the Kelvin sign meets `k`): two names a file system takes
 * for one always fold alike; names that merely fold alike only cost an
 * lstat call.
 */
export function looseName(name: string): string {
  // Printable ASCII folds to its lower case (NFKC leaves it alone): most
  // names, without the cost of normalization.
  if (PRINTABLE_ASCII.test(name)) return name.toLowerCase();
  return name.normalize("NFKC").toUpperCase().toLowerCase();
}

const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

function lstatOrUndefined(path: string): Deno.FileInfo | undefined {
  try {
    return Deno.lstatSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw new FerryError("LOCAL", `Cannot read ${path}: ${messageOf(error)}`, {
      cause: error,
    });
  }
}
