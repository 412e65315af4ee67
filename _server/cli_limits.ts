/**
 * The server command line's limit flags: their `parseArgs` options, help
 * lines and conversion to {@linkcode LimitOptions}. Only the CLI imports it.
 *
 * @module
 */

import {
  DEFAULT_DRAIN_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
  DEFAULT_MAX_PART_BYTES,
  type LimitOptions,
  resolveLimits,
} from "./limits.ts";

/**
 * The server command line's limit flags, for `parseArgs` (all strings,
 * checked by {@linkcode limitsFromFlags}).
 *
 * @example Parse a flag
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseArgs } from "node:util";
 * import { LIMIT_FLAGS, limitsFromFlags } from "./cli_limits.ts";
 * const { values } = parseArgs({ args: ["--max-connections", "8"], options: LIMIT_FLAGS });
 * assert(limitsFromFlags(values).maxConnections === 8);
 * ```
 */
export const LIMIT_FLAGS = {
  "max-connections": { type: "string" },
  "idle-timeout": { type: "string" },
  "drain-seconds": { type: "string" },
  "max-upload-bytes": { type: "string" },
  "max-part-bytes": { type: "string" },
  "max-connections-per-address": { type: "string" },
} as const;

/**
 * The help lines of {@linkcode LIMIT_FLAGS}, one flag a line with its
 * default.
 *
 * @example Print them
 * ```ts
 * import assert from "node:assert/strict";
 * import { LIMITS_USAGE } from "./cli_limits.ts";
 * assert(LIMITS_USAGE.includes("--max-connections"));
 * ```
 */
export const LIMITS_USAGE: string = [
  `  --max-connections N   connections at once; more get BUSY (default: ${DEFAULT_MAX_CONNECTIONS})`,
  `  --idle-timeout SECONDS  close a connection whose peer stalls (default: ${
    DEFAULT_IDLE_TIMEOUT_MS / 1000
  })`,
  `  --drain-seconds SECONDS  on SIGINT/SIGTERM, time for running requests (default: ${
    DEFAULT_DRAIN_MS / 1000
  })`,
  "  --max-upload-bytes N  refuse larger uploads with TOO_LARGE (default: no limit)",
  `  --max-part-bytes N    total of kept parts of cut uploads, oldest removed first (default: ${DEFAULT_MAX_PART_BYTES})`,
  `  --max-connections-per-address N  connections at once from one address or IPv6 /64; more evict its idlest or get BUSY (default: ${DEFAULT_MAX_CONNECTIONS_PER_ADDRESS})`,
].join("\n");

/**
 * Turns the limit flags' values into limit options.
 *
 * @param values What `parseArgs` found for {@linkcode LIMIT_FLAGS}.
 * @returns The limits given (the others stay at their defaults).
 * @throws {RangeError} With a one-line message, for a value that is not a
 * number in range.
 *
 * @example Seconds become milliseconds
 * ```ts
 * import assert from "node:assert/strict";
 * import { limitsFromFlags } from "./cli_limits.ts";
 * assert(limitsFromFlags({ "idle-timeout": "1.5" }).idleTimeoutMs === 1500);
 * ```
 */
export function limitsFromFlags(
  values: { [K in keyof typeof LIMIT_FLAGS]?: string },
): LimitOptions {
  const options: LimitOptions = {};
  const connections = values["max-connections"];
  if (connections !== undefined) {
    if (!/^\d+$/.test(connections) || !(Number(connections) >= 1)) {
      throw new RangeError(`bad --max-connections: ${connections}`);
    }
    options.maxConnections = Number(connections);
  }
  const idle = values["idle-timeout"];
  if (idle !== undefined) {
    if (!/^\d+(\.\d+)?$/.test(idle) || !(Number(idle) > 0)) {
      throw new RangeError(`bad --idle-timeout: ${idle}`);
    }
    options.idleTimeoutMs = Number(idle) * 1000;
  }
  const drain = values["drain-seconds"];
  if (drain !== undefined) {
    if (!/^\d+(\.\d+)?$/.test(drain)) {
      throw new RangeError(`bad --drain-seconds: ${drain}`);
    }
    options.drainMs = Math.round(Number(drain) * 1000);
  }
  const upload = values["max-upload-bytes"];
  if (upload !== undefined) {
    if (!/^\d+$/.test(upload) || !Number.isSafeInteger(Number(upload))) {
      throw new RangeError(`bad --max-upload-bytes: ${upload}`);
    }
    options.maxUploadBytes = Number(upload);
  }
  const parts = values["max-part-bytes"];
  if (parts !== undefined) {
    if (!/^\d+$/.test(parts) || !Number.isSafeInteger(Number(parts))) {
      throw new RangeError(`bad --max-part-bytes: ${parts}`);
    }
    options.maxPartBytes = Number(parts);
  }
  const perAddress = values["max-connections-per-address"];
  if (perAddress !== undefined) {
    if (!/^\d+$/.test(perAddress) || !(Number(perAddress) >= 1)) {
      throw new RangeError(`bad --max-connections-per-address: ${perAddress}`);
    }
    options.maxConnectionsPerAddress = Number(perAddress);
  }
  try {
    resolveLimits(options);
  } catch {
    throw new RangeError("a limit is out of range");
  }
  return options;
}
