/**
 * The HTTP face in a real browser: Debian's `chromium`, headless, driven
 * over the DevTools protocol (`_tools/chromium.ts`). Ignored, with the
 * reason in its name, when Chromium is not installed (`.ci/run` installs
 * it with apt-get when it can).
 *
 * @module
 */

import assert from "node:assert/strict";
import { Chromium, findChromium } from "../_tools/chromium.ts";
import { withServer } from "./_util/server.ts";
import { randomBytes, withTempDir } from "./_util/util.ts";

const FOUND = await findChromium();
const XSS = "<img src=x onerror=alert(1)>.txt";

Deno.test({
  name:
    "a browser lists, enters a folder, downloads, uploads and shows a hostile name as text" +
    ("missing" in FOUND ? ` (skipped: ${FOUND.missing})` : ""),
  ignore: "missing" in FOUND,
  async fn() {
    const data = randomBytes(200_000);
    const upload = randomBytes(150_000);
    await withServer(
      {
        http: { port: 0 },
        allowUpload: true,
        files: { "sub/data.bin": data, [XSS]: "just text" },
      },
      async ({ server, root }) => {
        const base = `http://127.0.0.1:${server.httpAddr!.port}`;
        await withTempDir(async (dir) => {
          const browser = await Chromium.launch(
            (FOUND as { path: string }).path,
          );
          try {
            const page = await browser.newPage();
            const dialogs: string[] = [];
            page.on((method, params) => {
              if (method === "Page.javascriptDialogOpening") {
                dialogs.push(String(params.message));
                void page.send("Page.handleJavaScriptDialog", {
                  accept: false,
                });
              }
            });
            // The dialog watch works: a probe alert is seen and dismissed.
            const probe = page.waitFor("Page.javascriptDialogOpening");
            await page.evaluate("setTimeout(() => alert('probe'), 0)");
            await probe;
            assert.deepEqual(dialogs.splice(0), ["probe"]);
            // The listing: the hostile name is text, no image was made.
            await page.navigate(`${base}/`);
            const names = await page.evaluate<string[]>(
              "[...document.querySelectorAll('td.name a')].map((a) => a.textContent)",
            );
            assert.deepEqual(names, ["sub/", XSS]);
            assert.equal(
              await page.evaluate<number>("document.images.length"),
              0,
            );
            // Into the folder by clicking its link.
            const loaded = page.waitFor("Page.loadEventFired");
            await page.evaluate(
              "document.querySelector('a[href=\"/sub/\"]').click()",
            );
            await loaded;
            assert.equal(
              await page.evaluate<string>("location.pathname"),
              "/sub/",
            );
            assert.deepEqual(
              await page.evaluate<string[]>(
                "[...document.querySelectorAll('td.name a')].map((a) => a.textContent)",
              ),
              ["../", "data.bin"],
            );
            // A download, compared byte for byte.
            const downloads = `${dir}/downloads`;
            await Deno.mkdir(downloads);
            await browser.browser.send("Browser.setDownloadBehavior", {
              behavior: "allow",
              downloadPath: downloads,
              eventsEnabled: true,
            });
            const done = browser.browser.waitFor(
              "Browser.downloadProgress",
              (p) => p.state === "completed" || p.state === "canceled",
            );
            await page.send("Page.navigate", {
              url: `${base}/sub/data.bin?download`,
            });
            assert.equal((await done).state, "completed");
            assert.deepEqual(
              await Deno.readFile(`${downloads}/data.bin`),
              data,
            );
            // An upload through the form.
            await page.navigate(`${base}/sub/`);
            await Deno.writeFile(`${dir}/sent.bin`, upload);
            const { root: doc } = await page.send("DOM.getDocument") as {
              root: { nodeId: number };
            };
            const { nodeId } = await page.send("DOM.querySelector", {
              nodeId: doc.nodeId,
              selector: "input[type=file]",
            });
            await page.send("DOM.setFileInputFiles", {
              nodeId,
              files: [`${dir}/sent.bin`],
            });
            const posted = page.waitFor("Page.loadEventFired");
            await page.evaluate(
              "document.querySelector('form button').click()",
            );
            await posted;
            assert.equal(
              await page.evaluate<string>("location.pathname"),
              "/sub/",
            );
            assert.deepEqual(
              await Deno.readFile(`${root}/sub/sent.bin`),
              upload,
            );
            // The hostile file itself: shown as text, nothing runs.
            await page.navigate(`${base}/${encodeURIComponent(XSS)}`);
            assert.equal(
              await page.evaluate<string>("document.contentType"),
              "text/plain",
            );
            assert.equal(
              await page.evaluate<string>("document.body.innerText"),
              "just text",
            );
            assert.deepEqual(dialogs, []);
            await page.close();
          } finally {
            await browser.close();
          }
        });
      },
    );
  },
});
