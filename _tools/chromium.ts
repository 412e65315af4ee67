/**
 * A headless Chromium driven over the DevTools protocol with Deno's own
 * `WebSocket` (no dependency): start it, open pages, run script in them,
 * set a file input, allow downloads, take screenshots. Used by the browser
 * test (`tests/browser_test.ts`) and the README screenshot
 * (`deno task screenshot`).
 *
 * @module
 */

import { within } from "../tests/_util/faults.ts";

/** Where Debian (and most Linux systems) install Chromium. */
const CANDIDATES = [
  "/usr/bin/chromium",
  "/usr/bin/chromium-browser",
  "/usr/bin/google-chrome",
];

/** Flags that run here: headless, no sandbox (root in a container), quiet. */
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-dev-shm-usage",
  "--remote-debugging-port=0",
];

/**
 * The Chromium executable, or why there is none.
 *
 * @returns `{ path }` or `{ missing: reason }`.
 */
export async function findChromium(): Promise<
  { path: string } | { missing: string }
> {
  for (const path of CANDIDATES) {
    try {
      if ((await Deno.stat(path)).isFile) return { path };
    } catch {
      // Not there.
    }
  }
  return { missing: "chromium is not installed (apt-get install chromium)" };
}

type Params = Record<string, unknown>;

/** One DevTools protocol connection (a browser or a page target). */
export class CdpSession {
  #socket: WebSocket;
  #next = 1;
  #pending = new Map<
    number,
    { resolve: (v: Params) => void; reject: (e: Error) => void }
  >();
  #listeners = new Set<(method: string, params: Params) => void>();
  #closed: Promise<void>;

  private constructor(socket: WebSocket) {
    this.#socket = socket;
    socket.onmessage = (event) => {
      const message = JSON.parse(String(event.data));
      if (message.id !== undefined) {
        const waiter = this.#pending.get(message.id);
        this.#pending.delete(message.id);
        if (message.error) {
          waiter?.reject(new Error(`${message.error.message}`));
        } else waiter?.resolve(message.result ?? {});
      } else {
        for (const listener of this.#listeners) {
          listener(message.method, message.params ?? {});
        }
      }
    };
    this.#closed = new Promise((resolve) => {
      socket.onclose = () => {
        for (const waiter of this.#pending.values()) {
          waiter.reject(new Error("DevTools connection closed"));
        }
        this.#pending.clear();
        resolve();
      };
    });
  }

  /** Connects to a DevTools WebSocket URL. */
  static async connect(url: string): Promise<CdpSession> {
    const socket = new WebSocket(url);
    await within(
      new Promise<void>((resolve, reject) => {
        socket.onopen = () => resolve();
        socket.onerror = () => reject(new Error(`Cannot connect to ${url}`));
      }),
      10_000,
      "DevTools connect",
    );
    return new CdpSession(socket);
  }

  /** Sends a command and waits for its result (at most 20 s). */
  send(method: string, params: Params = {}): Promise<Params> {
    const id = this.#next++;
    const result = new Promise<Params>((resolve, reject) =>
      this.#pending.set(id, { resolve, reject })
    );
    this.#socket.send(JSON.stringify({ id, method, params }));
    return within(result, 20_000, method);
  }

  /** Calls `listener` with every event. */
  on(listener: (method: string, params: Params) => void): void {
    this.#listeners.add(listener);
  }

  /** Resolves with the first event `method` that `match` accepts. */
  waitFor(
    method: string,
    match: (params: Params) => boolean = () => true,
    ms = 20_000,
  ): Promise<Params> {
    let listener: (m: string, p: Params) => void;
    const found = new Promise<Params>((resolve) => {
      listener = (m, p) => {
        if (m === method && match(p)) resolve(p);
      };
      this.#listeners.add(listener);
    });
    return within(found, ms, `waiting for ${method}`).finally(() =>
      this.#listeners.delete(listener)
    );
  }

  /** Evaluates an expression in the page and returns its value. */
  async evaluate<T>(expression: string): Promise<T> {
    const result = await this.send("Runtime.evaluate", {
      expression,
      returnByValue: true,
      awaitPromise: true,
    });
    if (result.exceptionDetails) {
      throw new Error(
        `Script failed: ${JSON.stringify(result.exceptionDetails)}`,
      );
    }
    return (result.result as { value: T }).value;
  }

  /** Navigates and waits for the page's load event. */
  async navigate(url: string): Promise<void> {
    const loaded = this.waitFor("Page.loadEventFired");
    await this.send("Page.navigate", { url });
    await loaded;
  }

  /** Closes the connection. */
  async close(): Promise<void> {
    this.#socket.close();
    await this.#closed;
  }
}

/** A running headless Chromium. */
export class Chromium {
  #child: Deno.ChildProcess;
  #profile: string;
  /** The browser-level session. */
  readonly browser: CdpSession;
  #port: number;

  private constructor(
    child: Deno.ChildProcess,
    profile: string,
    browser: CdpSession,
    port: number,
  ) {
    this.#child = child;
    this.#profile = profile;
    this.browser = browser;
    this.#port = port;
  }

  /**
   * Starts Chromium with a fresh profile.
   *
   * @param path The executable.
   * @param windowSize `width,height` of the window.
   */
  static async launch(
    path: string,
    windowSize = "1000,700",
  ): Promise<Chromium> {
    const profile = await Deno.makeTempDir({ prefix: "ferry_chromium_" });
    const child = new Deno.Command(path, {
      args: [
        ...FLAGS,
        `--user-data-dir=${profile}`,
        `--window-size=${windowSize}`,
        "about:blank",
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    try {
      const reader = child.stderr.pipeThrough(new TextDecoderStream())
        .getReader();
      let text = "";
      let url: string | undefined;
      await within(
        (async () => {
          while (url === undefined) {
            const { value, done } = await reader.read();
            if (done) throw new Error(`chromium exited: ${text.slice(-500)}`);
            text += value;
            url = /DevTools listening on (ws:\/\/\S+)/.exec(text)?.[1];
          }
        })(),
        30_000,
        "chromium start",
      );
      // Keep draining stderr so that chromium never blocks on it.
      (async () => {
        try {
          while (!(await reader.read()).done) { /* discard */ }
        } catch {
          // Closed.
        }
      })();
      const port = Number(new URL(url!).port);
      return new Chromium(child, profile, await CdpSession.connect(url!), port);
    } catch (error) {
      child.kill("SIGKILL");
      await child.status;
      await removeProfile(profile);
      throw error;
    }
  }

  /** Opens a new page and returns its session (Page and Runtime enabled). */
  async newPage(): Promise<CdpSession> {
    const { targetId } = await this.browser.send("Target.createTarget", {
      url: "about:blank",
    });
    const response = await fetch(`http://127.0.0.1:${this.#port}/json/list`);
    const targets = await response.json() as {
      id: string;
      webSocketDebuggerUrl: string;
    }[];
    const target = targets.find((t) => t.id === targetId)!;
    const page = await CdpSession.connect(target.webSocketDebuggerUrl);
    await page.send("Page.enable");
    await page.send("Runtime.enable");
    await page.send("DOM.enable");
    return page;
  }

  /** Stops the browser and removes its profile. */
  async close(): Promise<void> {
    await this.browser.close().catch(() => {});
    try {
      this.#child.kill("SIGTERM");
    } catch {
      // Already gone.
    }
    await this.#child.status;
    await removeProfile(this.#profile);
  }
}

/**
 * Removes a profile folder. Chromium's helper processes may still be
 * writing into it for a moment after the browser process exited, which
 * makes a recursive remove fail with a folder that is not empty: retry for
 * up to five seconds.
 */
async function removeProfile(profile: string): Promise<void> {
  for (let attempt = 0;; attempt++) {
    try {
      await Deno.remove(profile, { recursive: true });
      return;
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return;
      if (attempt >= 50) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
