#!/usr/bin/env -S deno run --allow-net --allow-read --allow-env=FERRY_TOKEN
/**
 * The ferry server: serves one folder over TCP to ferry clients (the
 * protocol in `protocol.ts`) and, on the same port, to the lab's classic
 * client.
 *
 * Run it from a shell (uploads with `--allow-upload` also need
 * `--allow-write`):
 *
 * ```sh
 * deno run --allow-net --allow-read server.ts --root ./public
 * deno run --allow-net --allow-read --allow-write server.ts --root ./inbox --allow-upload
 * FERRY_TOKEN=s3cret deno run --allow-net --allow-read --allow-env=FERRY_TOKEN \
 *   server.ts --host 0.0.0.0 --cert cert.pem --key key.pem
 * ```
 *
 * With a token (`--token SECRET`, else `--token-file PATH`, else
 * `FERRY_TOKEN`, which needs `--allow-env=FERRY_TOKEN`) every client must
 * answer the `AUTH` challenge (see `_server/auth.ts`); with `--cert` and
 * `--key` the server speaks TLS. `--max-connections`, `--idle-timeout`,
 * `--drain-seconds` and `--max-upload-bytes` set its limits, `--log json`
 * makes its request log JSON Lines and `--quiet` silences it;
 * `--http [HOST:]PORT` also answers browsers and `curl` over HTTP (HTTPS
 * with `--cert`/`--key`) from the same root (see `_server/http/`); `--help`
 * lists every flag with its default. On Linux, run it with `-A` so that it
 * can ask `/proc/self/fd` where each opened file really is (Deno grants
 * that read with `--allow-all` only; see `_server/path_jail.ts`).
 *
 * Each connection is its own task: the first byte decides the protocol
 * (`0x00`, the start of a ferry `HELLO`, or anything else for a classic file
 * name), and a failure in one connection never reaches another. Every path
 * goes through the root jail in `_server/path_jail.ts`; uploads are written to a
 * temporary `.ferry-<hex>.part` file in the target folder and renamed into
 * place only after their SHA-256 checked out.
 *
 * @example Serve a folder from a program
 * ```ts ignore
 * import { serve } from "./server.ts";
 * const controller = new AbortController();
 * const server = await serve({ root: "./public", port: 0, signal: controller.signal });
 * console.log(`Listening on port ${server.addr.port}`);
 * controller.abort();
 * await server.finished;
 * ```
 *
 * @module
 */
import { main } from "./_server/cli.ts";

export { CLASSIC_SIZE_GAP_MS } from "./_server/classic.ts";
export {
  DEFAULT_DRAIN_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_LIST_ENTRIES,
  DEFAULT_MAX_PATH_DEPTH,
} from "./_server/limits.ts";
export type { LimitOptions } from "./_server/limits.ts";

export { serve } from "./_server/serve.ts";
export {
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_PORT,
  type FerryServer,
  type HttpOptions,
  type ServeOptions,
  type ServerLogEvent,
} from "./_server/types.ts";

if (import.meta.main) {
  await main();
}
