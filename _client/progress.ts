/**
 * The command line's progress line: one line on a terminal, redrawn in
 * place at most ten times a second, erased when the transfer ends.
 *
 * ```text
 * docs/report.pdf  12.0 MiB / 40.0 MiB  8.1 MiB/s  ETA 0:03  17/120 files
 * ```
 *
 * It uses no colour (so `NO_COLOR` is honoured trivially) and writes
 * nothing at all unless stderr is a terminal and `--quiet` is off. The
 * terminal test, the clock and the width are injectable for tests.
 *
 * @module
 */

import { escapeControls } from "../_common/escape.ts";
import { formatBytes } from "../_common/format_bytes.ts";

/** Shortest time between two redraws, in milliseconds (10 per second). */
export const REDRAW_INTERVAL_MS = 100;

/** Moves to the start of the line and erases it. */
export const CLEAR_LINE = "\r\x1b[2K";

/**
 * Options of {@linkcode ProgressLine}.
 *
 * @example Drive it by hand in a test
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ProgressOptions } from "./progress.ts";
 * let now = 0;
 * const options: ProgressOptions = {
 *   write: () => {}, isTerminal: true, now: () => now, columns: 80,
 * };
 * assert(options.isTerminal);
 * ```
 */
export interface ProgressOptions {
  /** Where the line goes (stderr). */
  write: (text: string) => void;
  /**
   * Whether the output is a terminal.
   *
   * @default {Deno.stderr.isTerminal()}
   */
  isTerminal?: boolean;
  /**
   * Draw nothing (`--quiet`).
   *
   * @default {false}
   */
  quiet?: boolean;
  /**
   * Clock in milliseconds.
   *
   * @default {performance.now}
   */
  now?: () => number;
  /**
   * Terminal width; the line is cut to fit.
   *
   * @default {Deno.consoleSize().columns, or 80}
   */
  columns?: number;
}

/**
 * A progress line for one file or a whole tree.
 *
 * @example Two updates within 100 ms draw once
 * ```ts
 * import assert from "node:assert/strict";
 * import { ProgressLine } from "./progress.ts";
 * let now = 0;
 * let text = "";
 * const line = new ProgressLine({
 *   write: (t) => text += t, isTerminal: true, now: () => now, columns: 80,
 * });
 * line.update("a.txt", 10, 100);
 * now = 50;
 * line.update("a.txt", 20, 100);
 * assert(line.redraws === 1);
 * line.finish();
 * assert(text.endsWith("\r\x1b[2K"));
 * ```
 */
export class ProgressLine {
  /** Whether anything is drawn at all. */
  readonly enabled: boolean;
  #write: (text: string) => void;
  #now: () => number;
  #columns: number;
  #started: number;
  #lastDraw = -Infinity;
  #redraws = 0;
  #name = "";
  #fileDone = 0;
  #fileTotal = 0;
  #doneBefore = 0;
  #files: { done: number; total: number } | undefined;
  /** Files finished, counted before the totals are known too. */
  #filesDone = 0;
  #totalBytes: number | undefined;
  #finished = false;

  /**
   * Makes a progress line.
   *
   * @param options Output, terminal test, clock, width.
   */
  constructor(options: ProgressOptions) {
    this.#write = options.write;
    this.#now = options.now ?? (() => performance.now());
    this.enabled = !(options.quiet ?? false) &&
      (options.isTerminal ?? Deno.stderr.isTerminal());
    this.#columns = options.columns ?? terminalColumns();
    this.#started = this.#now();
  }

  /** How many times the line was drawn. */
  get redraws(): number {
    return this.#redraws;
  }

  /**
   * Switches to tree mode: files done / total are shown, and the byte total
   * is the tree's. It may come once files are done (a tree upload knows its
   * totals once its walk has ended): they are counted.
   *
   * @param files Number of files.
   * @param bytes Their total size, when known beforehand.
   */
  setTotals(files: number, bytes?: number): void {
    this.#files = { done: this.#filesDone, total: files };
    this.#totalBytes = bytes;
  }

  /**
   * Reports bytes of the current file.
   *
   * @param name The file's name.
   * @param done Its bytes moved so far.
   * @param total Its size.
   */
  update(name: string, done: number, total: number): void {
    this.#name = name; // escaped when drawn: most updates are not
    this.#fileDone = done;
    this.#fileTotal = total;
    this.#draw();
  }

  /**
   * Counts one file of a tree as finished (whether it succeeded or not).
   *
   * @param bytes Its size, added to the bytes done.
   */
  fileDone(bytes: number): void {
    this.#doneBefore += bytes;
    this.#fileDone = 0;
    this.#fileTotal = 0;
    this.#filesDone++;
    if (this.#files) this.#files.done++;
    this.#draw();
  }

  /** Erases the line; nothing is drawn after this. */
  finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    if (this.enabled && this.#redraws > 0) this.#write(CLEAR_LINE);
  }

  /** The text of the line, as it would be drawn now. */
  text(): string {
    const done = this.#doneBefore + this.#fileDone;
    const total = this.#totalBytes ?? this.#doneBefore + this.#fileTotal;
    const seconds = Math.max(0, (this.#now() - this.#started) / 1000);
    const rate = seconds > 0 ? done / seconds : 0;
    const eta = rate > 0 && total >= done
      ? formatDuration((total - done) / rate)
      : "-:--";
    let tail = `  ${formatBytes(done)} / ${formatBytes(total)}  ${
      formatBytes(rate)
    }/s  ETA ${eta}`;
    if (this.#files) {
      tail += `  ${this.#files.done}/${this.#files.total} files`;
    }
    const room = this.#columns - 1 - tail.length;
    let name = escapeControls(this.#name);
    if (room < 8) return (name + tail).slice(0, Math.max(0, this.#columns - 1));
    if (name.length > room) name = "…" + name.slice(name.length - room + 1);
    return name + tail;
  }

  #draw(): void {
    if (!this.enabled || this.#finished) return;
    const now = this.#now();
    if (now - this.#lastDraw < REDRAW_INTERVAL_MS) return;
    this.#lastDraw = now;
    this.#redraws++;
    this.#write(CLEAR_LINE + this.text());
  }
}

export { formatBytes };

/**
 * A duration as `m:ss` (or `h:mm:ss`).
 *
 * @param seconds The duration.
 * @returns The text.
 *
 * @example Format 75 seconds
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatDuration } from "./progress.ts";
 * assert(formatDuration(75) === "1:15");
 * ```
 */
export function formatDuration(seconds: number): string {
  const total = Math.ceil(seconds);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

function terminalColumns(): number {
  try {
    return Deno.consoleSize().columns || 80;
  } catch {
    return 80;
  }
}
