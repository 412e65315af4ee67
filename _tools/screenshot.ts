/**
 * Makes the README's screenshot of the HTTP face's folder listing
 * (`docs/listing.png`): serves a small demo folder with uploads allowed,
 * opens it in headless Chromium (`_tools/chromium.ts`) and saves a PNG.
 *
 * ```sh
 * deno task screenshot
 * ```
 *
 * @module
 */

import { serve } from "../server.ts";
import { Chromium, findChromium } from "./chromium.ts";

const OUT = new URL("../docs/listing.png", import.meta.url);

const found = await findChromium();
if ("missing" in found) {
  console.error(`screenshot: ${found.missing}`);
  Deno.exit(1);
}
const root = await Deno.makeTempDir({ prefix: "ferry_demo_" });
const when = new Date("2026-05-01T09:30:00Z");
const files: Record<string, number> = {
  "photos/beach.jpg": 2_400_000,
  "photos/harbour.jpg": 3_100_000,
  "reports/2026-q1.pdf": 840_000,
  "dataset.csv.gz": 57_000_000,
  "notes.md": 2_300,
  "<img src=x onerror=alert(1)>.txt": 12,
};
for (const [name, size] of Object.entries(files)) {
  const path = `${root}/${name}`;
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  const file = await Deno.open(path, { write: true, create: true });
  await file.truncate(size);
  file.close();
  await Deno.utime(path, when, when);
}
for (const folder of ["photos", "reports"]) {
  await Deno.utime(`${root}/${folder}`, when, when);
}
const controller = new AbortController();
const server = await serve({
  root,
  port: 0,
  http: { port: 0 },
  allowUpload: true,
  signal: controller.signal,
});
const browser = await Chromium.launch(found.path, "760,520");
try {
  const page = await browser.newPage();
  await page.navigate(`http://127.0.0.1:${server.httpAddr!.port}/`);
  const shot = await page.send("Page.captureScreenshot", {
    format: "png",
    clip: { x: 0, y: 0, width: 760, height: 420, scale: 1 },
  }) as { data: string };
  const bytes = Uint8Array.from(atob(shot.data), (c) => c.charCodeAt(0));
  await Deno.mkdir(new URL("../docs/", import.meta.url), { recursive: true });
  await Deno.writeFile(OUT, bytes);
  console.log(`screenshot: wrote ${OUT.pathname} (${bytes.length} bytes)`);
  await page.close();
} finally {
  await browser.close();
  controller.abort();
  await server.finished;
  await Deno.remove(root, { recursive: true });
}
