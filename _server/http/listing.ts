/**
 * Folder listings of the HTTP face: an HTML page (name, size, modified
 * time; folders first; breadcrumbs; an upload form when uploads are
 * allowed) that needs no JavaScript and fits a phone's screen, or, for
 * `Accept: application/json` or `?json`, the same JSON array as
 * `client.ts ls --json` prints. Both come from the same folder reader as a
 * ferry `LIST` (`_server/list.ts`), so both faces show the same entries.
 *
 * Every name is HTML-escaped where it is text and percent-encoded where
 * it is a URL; the page carries a `Content-Security-Policy` without
 * scripts, so even a name that slipped through could not run one.
 *
 * @module
 */

import { readChildren } from "../list.ts";
import type { ResolvedPath } from "../path_jail.ts";
import type { ServerContext } from "../context.ts";
import { FerryError } from "../../errors.ts";
import { formatBytes } from "../../_common/format_bytes.ts";
import type { Entry } from "../../protocol.ts";
import { baseHeaders, LISTING_CSP } from "./headers.ts";
import type { HttpExchange } from "./exchange.ts";

/**
 * Answers `GET` or `HEAD` of a folder with its listing.
 *
 * @param exchange The request.
 * @param context The server's settings.
 * @param found The folder, resolved by the jail.
 * @returns The HTML or JSON listing.
 * @throws {FerryError} `TOO_LARGE` past `maxListEntries`.
 */
export async function serveListing(
  exchange: HttpExchange,
  context: ServerContext,
  found: ResolvedPath,
): Promise<Response> {
  const children = await readChildren(context.realRoot, found.hostPath);
  if (children.length > context.limits.maxListEntries) {
    throw new FerryError(
      "TOO_LARGE",
      `Listing has more than ${context.limits.maxListEntries} entries`,
    );
  }
  const entries = children.map((child) => child.entry);
  const headers = baseHeaders();
  const json = new URLSearchParams(exchange.query).has("json") ||
    wantsJson(exchange.request.headers.get("accept"));
  headers.set("vary", "accept");
  let body: string;
  if (json) {
    headers.set("content-type", "application/json; charset=utf-8");
    body = JSON.stringify(entries, null, 2) + "\n";
  } else {
    headers.set("content-type", "text/html; charset=utf-8");
    headers.set("content-security-policy", LISTING_CSP);
    headers.set("x-frame-options", "DENY");
    body = listingPage(found.segments, entries, context.allowUpload);
  }
  const bytes = new TextEncoder().encode(body);
  headers.set("content-length", String(bytes.length));
  const method = exchange.request.method;
  return new Response(method === "HEAD" ? null : bytes, { headers });
}

/** Whether an `Accept` header prefers JSON to HTML. */
function wantsJson(accept: string | null): boolean {
  if (accept === null) return false;
  const types = accept.toLowerCase().split(",").map((t) => t.trim());
  const json = types.findIndex((t) => t.startsWith("application/json"));
  const html = types.findIndex((t) => t.startsWith("text/html"));
  return json >= 0 && (html < 0 || json < html);
}

/** Text safe inside an HTML element or a quoted attribute. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The absolute URL path of a wire path's segments. */
export function hrefOf(segments: string[], folder: boolean): string {
  const path = "/" + segments.map(encodeURIComponent).join("/");
  return folder && segments.length > 0 ? path + "/" : path;
}

const STYLE = `
body{font:16px/1.4 system-ui,sans-serif;margin:0 auto;max-width:60rem;padding:1rem;color:#222;background:#fff}
nav{font-size:1.1rem;margin-bottom:1rem;word-break:break-all}
table{width:100%;border-collapse:collapse}
th,td{text-align:left;padding:.4rem .5rem;border-bottom:1px solid #eee;vertical-align:top}
td.name{word-break:break-all}
td.size,th.size{text-align:right;white-space:nowrap}
td.time{white-space:nowrap;color:#555}
a{color:#0550ae;text-decoration:none}
a:hover{text-decoration:underline}
tr.dir a{font-weight:600}
form{margin-top:1.5rem;padding:1rem;border:1px solid #ddd;border-radius:.5rem}
footer{margin-top:1rem;color:#777;font-size:.9rem}
@media (max-width:40rem){td.time,th.time{display:none}body{padding:.5rem}}
@media (prefers-color-scheme:dark){body{color:#ddd;background:#111}a{color:#6cb6ff}th,td{border-color:#333}}
`.trim();

/** The HTML page of a listing. */
function listingPage(
  segments: string[],
  entries: Entry[],
  allowUpload: boolean,
): string {
  const title = "/" + segments.map((s) => s + "/").join("");
  const crumbs = [`<a href="/">root</a>`];
  for (let i = 0; i < segments.length; i++) {
    crumbs.push(
      `<a href="${escapeHtml(hrefOf(segments.slice(0, i + 1), true))}">${
        escapeHtml(segments[i])
      }</a>`,
    );
  }
  const rows: string[] = [];
  if (segments.length > 0) {
    rows.push(
      `<tr class="dir"><td class="name"><a href="${
        escapeHtml(hrefOf(segments.slice(0, -1), true))
      }">../</a></td><td class="size"></td><td class="time"></td></tr>`,
    );
  }
  for (const entry of entries) {
    const dir = entry.kind === "dir";
    const href = hrefOf([...segments, entry.name], dir);
    const time = new Date(entry.mtime).toISOString();
    rows.push(
      `<tr class="${dir ? "dir" : "file"}"><td class="name"><a href="${
        escapeHtml(href)
      }">${escapeHtml(entry.name)}${dir ? "/" : ""}</a></td><td class="size">${
        dir ? "" : escapeHtml(formatBytes(entry.size))
      }</td><td class="time"><time datetime="${time}">${
        time.slice(0, 16).replace("T", " ")
      }</time></td></tr>`,
    );
  }
  const upload = allowUpload
    ? `<form method="post" enctype="multipart/form-data" action="${
      escapeHtml(hrefOf(segments, true))
    }"><label>Upload files here: <input type="file" name="file" multiple required></label> <button type="submit">Upload</button></form>`
    : "";
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Index of ${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<nav>${crumbs.join(" / ")} /</nav>
<table>
<thead><tr><th>Name</th><th class="size">Size</th><th class="time">Modified (UTC)</th></tr></thead>
<tbody>
${rows.join("\n")}
</tbody>
</table>
${upload}
<footer>${entries.length} ${
    entries.length === 1 ? "entry" : "entries"
  } · <a href="?json">JSON</a></footer>
</body>
</html>
`;
}
