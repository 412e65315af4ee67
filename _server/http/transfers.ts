/**
 * The response bodies an HTTP face is streaming, so that one sweep can
 * cut those whose client stopped reading for longer than the idle timeout,
 * and a stopping server can cut the rest after its drain time.
 *
 * @module
 */

/** One streaming body. */
export interface Transfer {
  /** `performance.now()` of the client's last pull (or of the start). */
  lastActivity: number;
  /** Cuts the body: its file closes and its connection ends early. */
  cut(reason: Error): void;
}

/** The bodies in progress. */
export class Transfers {
  #active = new Set<Transfer>();

  /** Number of bodies in progress. */
  get size(): number {
    return this.#active.size;
  }

  /** Starts tracking a body. */
  add(transfer: Transfer): void {
    this.#active.add(transfer);
  }

  /** Stops tracking a body that ended. */
  delete(transfer: Transfer): void {
    this.#active.delete(transfer);
  }

  /** Cuts the bodies idle for longer than `idleMs` at `now`. */
  sweep(now: number, idleMs: number, reason: () => Error): void {
    for (const transfer of [...this.#active]) {
      if (now - transfer.lastActivity > idleMs) transfer.cut(reason());
    }
  }

  /** Cuts every body. */
  cutAll(reason: Error): void {
    for (const transfer of [...this.#active]) transfer.cut(reason);
  }
}
