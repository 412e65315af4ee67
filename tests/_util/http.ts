/**
 * Test helpers for the HTTP face: run the real `curl` against it and split
 * its output into status, headers and body bytes.
 *
 * @module
 */

import { hasCommand } from "./util.ts";

/** One response as curl received it. */
export interface CurlResponse {
  /** The final status (after any `100 Continue`). */
  status: number;
  /** The final response's headers. */
  headers: Headers;
  /** The body, byte for byte. */
  body: Uint8Array;
  /** The body as text. */
  text: string;
}

/** Whether `curl` can be run. */
export function hasCurl(): Promise<boolean> {
  return hasCommand("curl", ["--version"]);
}

const decoder = new TextDecoder();

/**
 * Runs `curl -si --path-as-is ARGS URL` and parses what it printed.
 *
 * @param url The URL (its path is sent as is).
 * @param args More curl arguments (`-H`, `-r`, `-T`, `-X`, ...).
 */
export async function curl(
  url: string,
  args: string[] = [],
): Promise<CurlResponse> {
  const { success, stdout, stderr } = await new Deno.Command("curl", {
    args: [
      "-s",
      "-S",
      "-i",
      "--http1.1",
      "--path-as-is",
      "--max-time",
      "20",
      ...args,
      url,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!success) throw new Error(`curl failed: ${decoder.decode(stderr)}`);
  let rest = stdout;
  while (true) {
    const end = indexOfCrlfCrlf(rest);
    if (end < 0) throw new Error("curl printed no header block");
    const lines = decoder.decode(rest.subarray(0, end)).split("\r\n");
    const status = Number(lines[0].split(" ")[1]);
    rest = rest.subarray(end + 4);
    if (status >= 100 && status < 200) continue;
    const headers = new Headers();
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(":");
      headers.append(line.slice(0, colon), line.slice(colon + 1).trim());
    }
    return { status, headers, body: rest, text: decoder.decode(rest) };
  }
}

function indexOfCrlfCrlf(bytes: Uint8Array): number {
  for (let i = 0; i + 3 < bytes.length; i++) {
    if (
      bytes[i] === 13 && bytes[i + 1] === 10 && bytes[i + 2] === 13 &&
      bytes[i + 3] === 10
    ) return i;
  }
  return -1;
}
