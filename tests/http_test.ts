/**
 * End-to-end tests of the HTTP face (`serve({ http })`, `server.ts
 * --http`) with the real `curl`: every header case of files and ranges,
 * conditional requests, listings, the jail, uploads, auth, the CLI.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { connect } from "../client.ts";
import { curl, hasCurl } from "./_util/http.ts";
import { sha256, withServer } from "./_util/server.ts";
import {
  CLIENT_SCRIPT,
  exists,
  randomBytes,
  runScript,
  SERVER_SCRIPT,
  withTempDir,
} from "./_util/util.ts";
import { hasOpenssl, makeTestPki } from "./_util/security.ts";

const CURL = await hasCurl();
const SKIP = CURL ? "" : " (skipped: curl is missing)";
const BIG = randomBytes(300_000);
const OLD = new Date(Date.now() - 3600_000);

/** Names in the served folder of most tests. */
const FILES = {
  "a.txt": "hello\n",
  "big.bin": BIG,
  "docs/notes.md": "# notes\n",
  'naïve "q".txt': "q",
  "<img src=x onerror=alert(1)>.txt": "xss",
};

function url(port: number, path: string): string {
  return `http://127.0.0.1:${port}${path}`;
}

function test(name: string, fn: () => Promise<void>): void {
  Deno.test({ name: name + SKIP, ignore: !CURL, fn });
}

test("serve({ http }) answers GET and HEAD of a file with its headers", async () => {
  await withServer(
    { http: { port: 0 }, files: FILES },
    async ({ server, root, logs }) => {
      const port = server.httpAddr!.port;
      const got = await curl(url(port, "/a.txt"));
      assert.equal(got.status, 200);
      assert.equal(got.text, "hello\n");
      assert.equal(got.headers.get("content-length"), "6");
      assert.equal(
        got.headers.get("content-type"),
        "text/plain; charset=utf-8",
      );
      assert.equal(got.headers.get("accept-ranges"), "bytes");
      assert.equal(got.headers.get("x-content-type-options"), "nosniff");
      assert.match(got.headers.get("content-security-policy")!, /sandbox/);
      assert.equal(
        got.headers.get("content-disposition"),
        'inline; filename="a.txt"',
      );
      const mtime = (await Deno.stat(`${root}/a.txt`)).mtime!;
      assert.equal(got.headers.get("last-modified"), mtime.toUTCString());
      assert.match(got.headers.get("etag")!, /^W\/"[0-9a-z-]+"$/);
      assert.equal(got.headers.get("repr-digest"), null);
      assert.equal(got.headers.get("access-control-allow-origin"), null);
      const head = await curl(url(port, "/a.txt"), ["-I"]);
      assert.equal(head.status, 200);
      assert.equal(head.body.length, 0);
      assert.equal(head.headers.get("content-length"), "6");
      assert.equal(head.headers.get("etag"), got.headers.get("etag"));
      const big = await curl(url(port, "/big.bin"));
      assert.equal(big.headers.get("content-type"), "application/octet-stream");
      assert.deepEqual(big.body, BIG);
      const md = await curl(url(port, "/docs/notes.md"));
      assert.equal(
        md.headers.get("content-type"),
        "text/markdown; charset=utf-8",
      );
      const http = logs.filter((e) => e.protocol === "http");
      assert.ok(
        http.some((e) =>
          e.request === "GET" && e.path === "big.bin" &&
          e.bytes === BIG.length && e.result === "ok"
        ),
        JSON.stringify(http),
      );
    },
  );
});

test("serve({ http }) escapes Content-Disposition names (RFC 6266/5987) and offers ?download", async () => {
  await withServer({ http: { port: 0 }, files: FILES }, async ({ server }) => {
    const port = server.httpAddr!.port;
    const got = await curl(url(port, "/na%C3%AFve%20%22q%22.txt?download"));
    assert.equal(got.status, 200);
    assert.equal(
      got.headers.get("content-disposition"),
      `attachment; filename="na_ve _q_.txt"; filename*=UTF-8''na%C3%AFve%20%22q%22.txt`,
    );
  });
});

test("serve({ http }) answers byte ranges exactly: single, open, suffix, clamped, 416, multiple", async () => {
  await withServer({ http: { port: 0 }, files: FILES }, async ({ server }) => {
    const port = server.httpAddr!.port;
    const size = BIG.length;
    const cases: [string, number, number, number][] = [
      ["bytes=10-19", 206, 10, 19],
      ["bytes=299990-", 206, 299990, size - 1],
      ["bytes=-5", 206, size - 5, size - 1],
      ["bytes=-999999", 206, 0, size - 1],
      ["bytes=100-999999999999999999999", 206, 100, size - 1],
      ["bytes=0-0", 206, 0, 0],
      ["bytes=0-9,20-29", 200, 0, size - 1],
      ["bytes=5-1", 200, 0, size - 1],
      ["items=0-1", 200, 0, size - 1],
      ["bytes=abc", 200, 0, size - 1],
    ];
    for (const [range, status, start, end] of cases) {
      const got = await curl(url(port, "/big.bin"), ["-H", `Range: ${range}`]);
      assert.equal(got.status, status, range);
      assert.deepEqual(got.body, BIG.subarray(start, end + 1), range);
      assert.equal(
        got.headers.get("content-length"),
        String(end - start + 1),
        range,
      );
      assert.equal(
        got.headers.get("content-range"),
        status === 206 ? `bytes ${start}-${end}/${size}` : null,
        range,
      );
    }
    for (
      const range of [
        `bytes=${size}-`,
        "bytes=-0",
        `bytes=${size + 5}-${size + 9}`,
      ]
    ) {
      const got = await curl(url(port, "/big.bin"), ["-H", `Range: ${range}`]);
      assert.equal(got.status, 416, range);
      assert.equal(got.headers.get("content-range"), `bytes */${size}`, range);
      assert.equal(got.body.length, 0, range);
    }
    const head = await curl(url(port, "/big.bin"), [
      "-I",
      "-H",
      "Range: bytes=1-2",
    ]);
    assert.equal(head.status, 206);
    assert.equal(head.headers.get("content-range"), `bytes 1-2/${size}`);
    assert.equal(head.body.length, 0);
  });
});

test("serve({ http }) answers If-None-Match and If-Modified-Since with 304", async () => {
  await withServer(
    { http: { port: 0 }, files: FILES },
    async ({ server, root }) => {
      await Deno.utime(`${root}/a.txt`, OLD, OLD);
      const port = server.httpAddr!.port;
      const first = await curl(url(port, "/a.txt"));
      const etag = first.headers.get("etag")!;
      const date = first.headers.get("last-modified")!;
      const cases: [string[], number][] = [
        [["-H", `If-None-Match: ${etag}`], 304],
        [["-H", `If-None-Match: "x", ${etag}`], 304],
        [["-H", `If-None-Match: ${etag.replace(/^W\//, "")}`], 304],
        [["-H", "If-None-Match: *"], 304],
        [["-H", 'If-None-Match: "other"'], 200],
        [["-H", `If-Modified-Since: ${date}`], 304],
        [["-H", `If-Modified-Since: ${new Date().toUTCString()}`], 304],
        [["-H", `If-Modified-Since: ${new Date(0).toUTCString()}`], 200],
        [["-H", "If-Modified-Since: not a date"], 200],
        [
          ["-H", 'If-None-Match: "other"', "-H", `If-Modified-Since: ${date}`],
          200,
        ],
      ];
      for (const [args, status] of cases) {
        const got = await curl(url(port, "/a.txt"), args);
        assert.equal(got.status, status, args.join(" "));
        if (status === 304) {
          assert.equal(got.body.length, 0);
          assert.equal(got.headers.get("etag"), etag);
        } else {
          assert.equal(got.text, "hello\n");
        }
      }
      // A change makes the old tag stale.
      await Deno.writeTextFile(`${root}/a.txt`, "changed\n");
      const after = await curl(url(port, "/a.txt"), [
        "-H",
        `If-None-Match: ${etag}`,
      ]);
      assert.equal(after.status, 200);
      assert.equal(after.text, "changed\n");
    },
  );
});

test("serve({ http }) honours If-Range: a weak tag or another date gives the whole file", async () => {
  await withServer(
    { http: { port: 0 }, files: FILES },
    async ({ server, root }) => {
      await Deno.utime(`${root}/big.bin`, OLD, OLD);
      const port = server.httpAddr!.port;
      const first = await curl(url(port, "/big.bin"), ["-I"]);
      const etag = first.headers.get("etag")!;
      const date = first.headers.get("last-modified")!;
      const range = ["-H", "Range: bytes=5-9"];
      const cases: [string, number][] = [
        [date, 206],
        [new Date(OLD.getTime() - 5000).toUTCString(), 200],
        [etag, 200], // weak: never matches If-Range
        ['"sha256-other"', 200],
      ];
      for (const [value, status] of cases) {
        const got = await curl(url(port, "/big.bin"), [
          ...range,
          "-H",
          `If-Range: ${value}`,
        ]);
        assert.equal(got.status, status, value);
        assert.deepEqual(
          got.body,
          status === 206 ? BIG.subarray(5, 10) : BIG,
          value,
        );
      }
    },
  );
});

test("serve({ http }) sends a strong ETag and Repr-Digest once the hash cache knows the file", async () => {
  await withServer(
    { http: { port: 0 }, files: FILES, allowUpload: true },
    async ({ server, port, logs }) => {
      const httpPort = server.httpAddr!.port;
      await withTempDir(async (dir) => {
        // A ferry upload of a file last modified long ago: its digest is
        // cached as the server renames it into place. The HTTP face reads
        // SHA-256 entries (the hash cache is keyed per digest algorithm),
        // so the upload is made in a SHA-256 session.
        await Deno.writeFile(`${dir}/big.bin`, BIG);
        await Deno.utime(`${dir}/big.bin`, OLD, OLD);
        await using client = await connect({ port, digest: "sha256" });
        const [outcome] = await client.putMany([
          { kind: "file", local: `${dir}/big.bin`, remote: "cached.bin" },
        ]);
        assert.ok(outcome.result, String(outcome.error));
        // The same in a default (XXH3-128) session: cached too, but never
        // made into a strong tag.
        await using xxh3 = await connect({ port });
        const [other] = await xxh3.putMany([
          { kind: "file", local: `${dir}/big.bin`, remote: "xxh3.bin" },
        ]);
        assert.ok(other.result, String(other.error));
        await xxh3.get("xxh3.bin", `${dir}/back.bin`);
      });
      const back = logs.find((e) =>
        e.request === "GET" && e.path === "xxh3.bin"
      );
      assert.equal(back?.cached, true, "the XXH3 digest was cached");
      const weak = await curl(url(httpPort, "/xxh3.bin"), ["-I"]);
      assert.match(weak.headers.get("etag")!, /^W\//);
      assert.equal(weak.headers.get("repr-digest"), null);
      const got = await curl(url(httpPort, "/cached.bin"));
      assert.deepEqual(got.body, BIG);
      const digest = Buffer.from(sha256(BIG));
      assert.equal(
        got.headers.get("etag"),
        `"sha256-${digest.toString("base64url")}"`,
      );
      assert.equal(
        got.headers.get("repr-digest"),
        `sha-256=:${digest.toString("base64")}:`,
      );
      const etag = got.headers.get("etag")!;
      const resumed = await curl(url(httpPort, "/cached.bin"), [
        "-H",
        "Range: bytes=1000-",
        "-H",
        `If-Range: ${etag}`,
      ]);
      assert.equal(resumed.status, 206);
      assert.deepEqual(resumed.body, BIG.subarray(1000));
      const same = await curl(url(httpPort, "/cached.bin"), [
        "-H",
        `If-None-Match: ${etag}`,
      ]);
      assert.equal(same.status, 304);
    },
  );
});

test("serve({ http }) lists a folder as HTML with escaped names, folders first and breadcrumbs", async () => {
  await withServer({ http: { port: 0 }, files: FILES }, async ({ server }) => {
    const port = server.httpAddr!.port;
    const page = await curl(url(port, "/"));
    assert.equal(page.status, 200);
    assert.equal(page.headers.get("content-type"), "text/html; charset=utf-8");
    assert.equal(page.headers.get("x-content-type-options"), "nosniff");
    const csp = page.headers.get("content-security-policy")!;
    assert.match(csp, /default-src 'none'/);
    assert.doesNotMatch(csp, /script-src/);
    assert.ok(!page.text.includes("<img"), "raw tag in the page");
    assert.ok(page.text.includes("&#60;img src=x onerror=alert(1)&#62;.txt"));
    assert.ok(
      page.text.includes(
        'href="/%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E.txt"',
      ),
    );
    assert.ok(
      page.text.indexOf('href="/docs/"') < page.text.indexOf('href="/a.txt"'),
    );
    assert.ok(!page.text.includes("<form"), "upload form without allowUpload");
    const sub = await curl(url(port, "/docs/"));
    assert.ok(
      sub.text.includes('<a href="/">root</a> / <a href="/docs/">docs</a>'),
    );
    assert.ok(sub.text.includes('href="/docs/notes.md"'));
    const noSlash = await curl(url(port, "/docs"));
    assert.equal(noSlash.status, 200);
    const head = await curl(url(port, "/docs/"), ["-I"]);
    assert.equal(head.body.length, 0);
    const fileSlash = await curl(url(port, "/a.txt/"));
    assert.equal(fileSlash.status, 404);
  });
});

test("serve({ http }) lists a folder as JSON, the same entries as client.ts ls --json", async () => {
  await withServer(
    { http: { port: 0 }, files: FILES },
    async ({ server, port }) => {
      const httpPort = server.httpAddr!.port;
      const byQuery = await curl(url(httpPort, "/?json"));
      const byAccept = await curl(url(httpPort, "/"), [
        "-H",
        "Accept: application/json",
      ]);
      assert.equal(
        byQuery.headers.get("content-type"),
        "application/json; charset=utf-8",
      );
      assert.equal(byAccept.text, byQuery.text);
      const cli = await runScript(CLIENT_SCRIPT, [
        "--port",
        String(port),
        "ls",
        "--json",
      ]);
      assert.equal(cli.code, 0, cli.stderr);
      assert.deepEqual(JSON.parse(byQuery.text), JSON.parse(cli.stdout));
    },
  );
});

test("serve({ http }) keeps requests in the root: encoded dots, slashes, NUL, overlong UTF-8, //, links out", async () => {
  await withServer(
    { http: { port: 0 }, files: FILES },
    async ({ server, root, base, canary }) => {
      await Deno.symlink(`${base}/canary.txt`, `${root}/out.txt`);
      await Deno.symlink(base, `${root}/outdir`);
      const port = server.httpAddr!.port;
      const paths = [
        "/../canary.txt",
        "/%2e%2e/canary.txt",
        "/%2E%2E%2fcanary.txt",
        "/docs%2f..%2f..%2fcanary.txt",
        "/docs/..%5c..%5ccanary.txt",
        "/a.txt%00.png",
        "/%C0%AE%C0%AE/canary.txt",
        "/%E0%80%AE%E0%80%AE/canary.txt",
        "//canary.txt",
        "/docs//notes.md",
        "/out.txt",
        "/outdir/canary.txt",
        "/outdir/",
        "/%zz",
        "/.ferry-0123abcd.part",
      ];
      for (const path of paths) {
        const got = await curl(url(port, path));
        assert.ok(
          [400, 403, 404].includes(got.status),
          `${path}: ${got.status}`,
        );
        assert.ok(!got.text.includes(canary), path);
      }
      const listing = await curl(url(port, "/?json"));
      assert.ok(!listing.text.includes("out.txt"));
    },
  );
});

test("serve({ http }) without allowUpload refuses every write method and changes nothing", async () => {
  await withServer(
    { http: { port: 0 }, files: FILES },
    async ({ server, root }) => {
      const port = server.httpAddr!.port;
      await withTempDir(async (dir) => {
        await Deno.writeTextFile(`${dir}/up.txt`, "up");
        const put = await curl(url(port, "/up.txt"), ["-T", `${dir}/up.txt`]);
        assert.equal(put.status, 403);
        const over = await curl(url(port, "/a.txt"), ["-T", `${dir}/up.txt`]);
        assert.equal(over.status, 403);
        const form = await curl(url(port, "/"), ["-F", `file=@${dir}/up.txt`]);
        assert.equal(form.status, 403);
      });
      for (const method of ["DELETE", "PATCH", "MKCOL", "MOVE"]) {
        const got = await curl(url(port, "/a.txt"), ["-X", method]);
        assert.equal(got.status, 403, method);
      }
      const odd = await curl(url(port, "/a.txt"), ["-X", "BREW"]);
      assert.equal(odd.status, 405);
      assert.equal(odd.headers.get("allow"), "GET, HEAD, OPTIONS");
      assert.equal(await Deno.readTextFile(`${root}/a.txt`), "hello\n");
      assert.ok(!(await exists(`${root}/up.txt`)));
    },
  );
});

test("serve({ http }) takes PUT uploads with digest checks, replace rules and the size limit", async () => {
  await withServer(
    {
      http: { port: 0 },
      files: FILES,
      allowUpload: true,
      maxUploadBytes: 400_000,
    },
    async ({ server, root }) => {
      const port = server.httpAddr!.port;
      await withTempDir(async (dir) => {
        const data = randomBytes(350_000);
        await Deno.writeFile(`${dir}/up.bin`, data);
        const created = await curl(url(port, "/docs/up.bin"), [
          "-T",
          `${dir}/up.bin`,
        ]);
        assert.equal(created.status, 201);
        assert.deepEqual(await Deno.readFile(`${root}/docs/up.bin`), data);
        const digest = Buffer.from(sha256(data)).toString("base64");
        assert.equal(created.headers.get("repr-digest"), `sha-256=:${digest}:`);
        const replaced = await curl(url(port, "/docs/up.bin"), [
          "-T",
          `${dir}/up.bin`,
          "-H",
          `Repr-Digest: sha-256=:${digest}:`,
        ]);
        assert.equal(replaced.status, 204);
        const createOnly = await curl(url(port, "/docs/up.bin"), [
          "-T",
          `${dir}/up.bin`,
          "-H",
          "If-None-Match: *",
        ]);
        assert.equal(createOnly.status, 412);
        const wrong = Buffer.from(sha256(new Uint8Array(1))).toString("base64");
        const mismatch = await curl(url(port, "/bad.bin"), [
          "-T",
          `${dir}/up.bin`,
          "-H",
          `Content-Digest: sha-256=:${wrong}:`,
        ]);
        assert.equal(mismatch.status, 400);
        assert.match(mismatch.text, /SHA-256 mismatch/);
        await Deno.writeFile(`${dir}/huge.bin`, randomBytes(450_000));
        const huge = await curl(url(port, "/huge.bin"), [
          "-T",
          `${dir}/huge.bin`,
        ]);
        assert.equal(huge.status, 413);
        const outside = await curl(url(port, "/%2e%2e/x.bin"), [
          "-T",
          `${dir}/up.bin`,
        ]);
        assert.equal(outside.status, 403);
      });
      assert.ok(!(await exists(`${root}/bad.bin`)));
      assert.ok(!(await exists(`${root}/huge.bin`)));
      const left = [
        ...Deno.readDirSync(root),
        ...Deno.readDirSync(`${root}/docs`),
      ]
        .filter((e) => e.name.endsWith(".part"));
      assert.deepEqual(left, []);
    },
  );
});

test("serve({ http }) takes form uploads streamed to disk, never over an existing file", async () => {
  await withServer(
    { http: { port: 0 }, files: FILES, allowUpload: true },
    async ({ server, root }) => {
      const port = server.httpAddr!.port;
      const page = await curl(url(port, "/docs/"));
      assert.ok(
        page.text.includes(
          '<form method="post" enctype="multipart/form-data" action="/docs/">',
        ),
      );
      await withTempDir(async (dir) => {
        const one = randomBytes(700_000);
        const two = new TextEncoder().encode("second\r\n--not-a-boundary\r\n");
        await Deno.writeFile(`${dir}/one.bin`, one);
        await Deno.writeFile(`${dir}/two.txt`, two);
        const posted = await curl(url(port, "/docs/"), [
          "-F",
          "note=hi",
          "-F",
          `file=@${dir}/one.bin`,
          "-F",
          `file=@${dir}/two.txt`,
        ]);
        assert.equal(posted.status, 303);
        assert.equal(posted.headers.get("location"), "/docs/");
        assert.deepEqual(await Deno.readFile(`${root}/docs/one.bin`), one);
        assert.deepEqual(await Deno.readFile(`${root}/docs/two.txt`), two);
        const again = await curl(url(port, "/docs/"), [
          "-F",
          `file=@${dir}/two.txt`,
        ]);
        assert.equal(again.status, 409);
        const foreign = await curl(url(port, "/"), [
          "-H",
          "Origin: http://evil.example",
          "-F",
          `file=@${dir}/two.txt`,
        ]);
        assert.equal(foreign.status, 403);
        assert.ok(!(await exists(`${root}/two.txt`)));
      });
      const left = [...Deno.readDirSync(`${root}/docs`)].filter((e) =>
        e.name.endsWith(".part")
      );
      assert.deepEqual(left, []);
    },
  );
});

test("serve({ http }) with a token wants Bearer or Basic credentials and never logs them", async () => {
  const token = "s3cret-token";
  await withServer(
    { http: { port: 0 }, files: FILES, token, authFailureDelayMs: 1 },
    async ({ server, logs }) => {
      const port = server.httpAddr!.port;
      const none = await curl(url(port, "/a.txt"));
      assert.equal(none.status, 401);
      assert.match(
        none.headers.get("www-authenticate")!,
        /Basic realm="ferry"/,
      );
      const bearer = await curl(url(port, "/a.txt"), [
        "-H",
        `Authorization: Bearer ${token}`,
      ]);
      assert.equal(bearer.status, 200);
      assert.equal(bearer.text, "hello\n");
      const basic = await curl(url(port, "/a.txt"), ["-u", `anyone:${token}`]);
      assert.equal(basic.status, 200);
      const wrong = await curl(url(port, "/a.txt"), ["-u", "anyone:wrong"]);
      assert.equal(wrong.status, 401);
      const wrongBearer = await curl(url(port, "/a.txt"), [
        "-H",
        "Authorization: Bearer nope",
      ]);
      assert.equal(wrongBearer.status, 401);
      assert.ok(!JSON.stringify(logs).includes(token));
      assert.ok(
        logs.some((e) => e.protocol === "http" && e.result === "UNAUTHORIZED"),
      );
    },
  );
});

Deno.test({
  name: `server.ts --http prints its URL, and https with --cert/--key${
    CURL ? "" : " (skipped: curl is missing)"
  }`,
  ignore: !CURL,
  async fn() {
    const openssl = await hasOpenssl();
    await withTempDir(async (dir) => {
      await Deno.writeTextFile(`${dir}/a.txt`, "hello\n");
      for (const tls of openssl ? [false, true] : [false]) {
        const pki = tls ? await makeTestPki(`${dir}`) : undefined;
        const args = [
          "--root",
          dir,
          "--port",
          "0",
          "--http",
          "127.0.0.1:0",
          "--quiet",
        ];
        if (pki) args.push("--cert", pki.certPath, "--key", pki.keyPath);
        const child = new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", SERVER_SCRIPT, ...args],
          stdin: "null",
          stdout: "piped",
          stderr: "null",
        }).spawn();
        try {
          const reader = child.stdout.pipeThrough(new TextDecoderStream())
            .getReader();
          let text = "";
          while (!/Listening on https?:\/\/\S+\n/.test(text)) {
            const { value, done } = await reader.read();
            if (done) break;
            text += value;
          }
          reader.releaseLock();
          const found = /Listening on (https?):\/\/127\.0\.0\.1:(\d+)\n/.exec(
            text,
          );
          assert.ok(found, text);
          assert.equal(found[1], tls ? "https" : "http");
          const got = await curl(
            `${found[1]}://127.0.0.1:${found[2]}/a.txt`,
            pki ? ["--cacert", pki.caPath] : [],
          );
          assert.equal(got.text, "hello\n");
        } finally {
          child.kill("SIGTERM");
          await child.status;
          await child.stdout.cancel().catch(() => {});
        }
      }
    });
  },
});

test("serve({ http }) cuts a download whose client stopped reading, and a stop waits only the drain time", async () => {
  const big = new Uint8Array(48 * 1024 * 1024);
  {
    await withServer(
      {
        http: { port: 0 },
        files: { "huge.bin": big },
        idleTimeoutMs: 300,
        drainMs: 100,
      },
      async ({ server, waitForLog }) => {
        const port = server.httpAddr!.port;
        // A client that asks and never reads.
        const stalled = await Deno.connect({ hostname: "127.0.0.1", port });
        try {
          await stalled.write(
            new TextEncoder().encode(
              "GET /huge.bin HTTP/1.1\r\nHost: x\r\n\r\n",
            ),
          );
          const event = await waitForLog((e) =>
            e.protocol === "http" && e.path === "huge.bin"
          );
          assert.equal(event.result, "TIMEOUT");
          assert.ok(event.bytes < big.length);
        } finally {
          stalled.close();
        }
        const second = await Deno.connect({ hostname: "127.0.0.1", port });
        try {
          await second.write(
            new TextEncoder().encode(
              "GET /huge.bin HTTP/1.1\r\nHost: x\r\n\r\n",
            ),
          );
          await second.read(new Uint8Array(1024));
          await server.shutdown();
        } finally {
          second.close();
        }
      },
    );
  }
});

Deno.test("server.ts --http refuses a malformed address with exit 2 and the usage", async () => {
  for (const value of ["nope", "host:", "1.2.3.4:99999", "[::1]"]) {
    const result = await runScript(SERVER_SCRIPT, [
      "--port",
      "0",
      "--http",
      value,
    ]);
    assert.equal(result.code, 2, value);
    assert.match(result.stderr, /bad --http address/, value);
    assert.match(result.stderr, /USAGE:/, value);
  }
});
