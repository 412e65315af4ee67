import assert from "node:assert/strict";
import { isInside, resolveExisting, resolveTarget } from "./path_jail.ts";
import { segmentProblem, splitWirePath } from "../_common/wire_path.ts";
import { FerryError } from "../errors.ts";
import { MAX_PATH_BYTES } from "../protocol.ts";
import {
  RawClient,
  sha256,
  treeNames,
  withServer,
} from "../tests/_util/server.ts";

function code(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (error) {
    if (error instanceof FerryError) return error.code;
    throw error;
  }
}

async function asyncCode(
  fn: () => Promise<unknown>,
): Promise<string | undefined> {
  try {
    await fn();
    return undefined;
  } catch (error) {
    if (error instanceof FerryError) return error.code;
    throw error;
  }
}

const LEXICALLY_FORBIDDEN = [
  "..",
  ".",
  "../canary.txt",
  "a/../../canary.txt",
  "a/./b",
  "./a",
  "a/..",
  "/etc/passwd",
  "/",
  "a//b",
  "a/",
  "//server/share",
  "..\\canary.txt",
  "a\\b",
  "C:\\Windows\\win.ini",
  "C:/Windows",
  "c:canary.txt",
  "z:",
  "a\u0000b",
  "\u0000",
  "a\nb",
  "tab\there",
  "del\u007f",
  "\u001b[31mred",
  "CON",
  "con.txt",
  "docs/nul",
  "Aux.tar.gz",
  "COM1",
  "com9.log",
  "LPT1",
  "lpt9.anything",
  "PRN",
  "COM¹",
  "nul .txt",
  "x".repeat(MAX_PATH_BYTES + 1),
  "é".repeat(MAX_PATH_BYTES / 2 + 1),
];

Deno.test("splitWirePath() refuses hostile names with FORBIDDEN", () => {
  for (const name of LEXICALLY_FORBIDDEN) {
    assert.equal(
      code(() => splitWirePath(name)),
      "FORBIDDEN",
      JSON.stringify(name),
    );
    assert.equal(
      code(() => splitWirePath(name, { windows: true })),
      "FORBIDDEN",
      JSON.stringify(name),
    );
  }
});

Deno.test("splitWirePath() accepts ordinary names and splits them", () => {
  assert.deepEqual(splitWirePath(""), []);
  assert.deepEqual(splitWirePath("a"), ["a"]);
  assert.deepEqual(splitWirePath("docs/sub/file.txt"), [
    "docs",
    "sub",
    "file.txt",
  ]);
  for (
    const name of [
      "...",
      "..a",
      "a..",
      ".hidden",
      "%2e%2e",
      "%2e%2e/canary.txt",
      "..%2fcanary.txt",
      "name with spaces.txt",
      "é/日本.txt",
      "console.txt",
      "com10",
      "CONx",
      "auxiliary",
      "ab:c",
      "x".repeat(MAX_PATH_BYTES),
    ]
  ) {
    assert.equal(
      code(() => splitWirePath(name, { windows: false })),
      undefined,
      name,
    );
  }
});

Deno.test("splitWirePath() applies the Windows rules on request", () => {
  assert.equal(
    code(() => splitWirePath("a:b", { windows: true })),
    "FORBIDDEN",
  );
  assert.equal(
    code(() => splitWirePath("file.txt:stream", { windows: true })),
    "FORBIDDEN",
  );
  assert.equal(
    code(() => splitWirePath("trailing.", { windows: true })),
    "FORBIDDEN",
  );
  assert.equal(
    code(() => splitWirePath("trailing ", { windows: true })),
    "FORBIDDEN",
  );
  assert.equal(
    code(() => splitWirePath("trailing.", { windows: false })),
    undefined,
  );
  assert.equal(segmentProblem("ok.txt", { windows: true }), undefined);
});

Deno.test("splitWirePath() messages never echo raw control bytes", () => {
  try {
    splitWirePath("a\u001b[2Jb/../x");
    assert.fail("should refuse");
  } catch (error) {
    assert.ok(error instanceof FerryError);
    assert.ok(!error.message.includes("\u001b"), error.message);
    assert.match(error.message, /\\x1b/);
  }
});

Deno.test("isInside() compares whole path segments", () => {
  assert.ok(isInside("/srv/files", "/srv/files"));
  assert.ok(isInside("/srv/files", "/srv/files/a/b"));
  assert.ok(isInside("/srv/files", "/srv/files/..a"));
  assert.ok(!isInside("/srv/files", "/srv/files2"));
  assert.ok(!isInside("/srv/files", "/srv"));
  assert.ok(!isInside("/srv/files", "/etc/passwd"));
});

/** A root with symbolic links pointing in and out; the canary sits outside. */
async function withJail(
  fn: (base: string, root: string) => Promise<void>,
): Promise<void> {
  const base = await Deno.realPath(
    await Deno.makeTempDir({ prefix: "ferry_test_" }),
  );
  try {
    const root = `${base}/root`;
    await Deno.mkdir(`${root}/sub`, { recursive: true });
    await Deno.writeTextFile(`${base}/canary.txt`, "CANARY");
    await Deno.writeTextFile(`${root}/a.txt`, "a");
    await Deno.symlink(`${base}/canary.txt`, `${root}/out`);
    await Deno.symlink(base, `${root}/outdir`);
    await Deno.symlink("a.txt", `${root}/in`);
    await fn(base, root);
  } finally {
    await Deno.remove(base, { recursive: true });
  }
}

Deno.test("resolveExisting() follows links inside the root and refuses links out", async () => {
  await withJail(async (_base, root) => {
    assert.equal((await resolveExisting(root, "in")).hostPath, `${root}/a.txt`);
    assert.equal((await resolveExisting(root, "")).hostPath, root);
    assert.equal(
      await asyncCode(() => resolveExisting(root, "out")),
      "FORBIDDEN",
    );
    assert.equal(
      await asyncCode(() => resolveExisting(root, "outdir/canary.txt")),
      "FORBIDDEN",
    );
    assert.equal(
      await asyncCode(() => resolveExisting(root, "missing")),
      "NOT_FOUND",
    );
    assert.equal(
      await asyncCode(() => resolveExisting(root, "a.txt/x")),
      "NOT_FOUND",
    );
    assert.equal(
      await asyncCode(() => resolveExisting(root, "../missing")),
      "FORBIDDEN",
    );
  });
});

Deno.test("resolveTarget() refuses link targets, folders and parents outside the root", async () => {
  await withJail(async (_base, root) => {
    const fresh = await resolveTarget(root, "sub/new.txt");
    assert.equal(fresh.hostPath, `${root}/sub/new.txt`);
    assert.equal(fresh.folder, `${root}/sub`);
    assert.equal(fresh.existing, undefined);
    assert.equal((await resolveTarget(root, "a.txt")).existing?.size, 1);
    assert.equal(await asyncCode(() => resolveTarget(root, "in")), "FORBIDDEN");
    assert.equal(
      await asyncCode(() => resolveTarget(root, "out")),
      "FORBIDDEN",
    );
    assert.equal(
      await asyncCode(() => resolveTarget(root, "outdir/new.txt")),
      "FORBIDDEN",
    );
    assert.equal(
      await asyncCode(() => resolveTarget(root, "sub")),
      "FORBIDDEN",
    );
    assert.equal(await asyncCode(() => resolveTarget(root, "")), "FORBIDDEN");
    assert.equal(
      await asyncCode(() => resolveTarget(root, "nope/new.txt")),
      "NOT_FOUND",
    );
    assert.equal(
      await asyncCode(() => resolveTarget(root, "a.txt/new.txt")),
      "NOT_FOUND",
    );
  });
});

// Names that must never reach the canary, whatever the request.
const HOSTILE_OVER_THE_WIRE: [string, "FORBIDDEN" | "NOT_FOUND"][] = [
  ["../canary.txt", "FORBIDDEN"],
  ["..", "FORBIDDEN"],
  [".", "FORBIDDEN"],
  ["./canary.txt", "FORBIDDEN"],
  ["sub/../../canary.txt", "FORBIDDEN"],
  ["sub/./../../canary.txt", "FORBIDDEN"],
  ["/canary.txt", "FORBIDDEN"],
  ["//canary.txt", "FORBIDDEN"],
  ["sub//x", "FORBIDDEN"],
  ["sub/", "FORBIDDEN"],
  ["..\\canary.txt", "FORBIDDEN"],
  ["sub\\..\\..\\canary.txt", "FORBIDDEN"],
  ["C:\\canary.txt", "FORBIDDEN"],
  ["c:canary.txt", "FORBIDDEN"],
  ["..\u0000/canary.txt", "FORBIDDEN"],
  ["canary.txt\u0000", "FORBIDDEN"],
  ["a\nb", "FORBIDDEN"],
  ["\u007f", "FORBIDDEN"],
  ["CON", "FORBIDDEN"],
  ["nul.txt", "FORBIDDEN"],
  ["sub/aux", "FORBIDDEN"],
  ["LPT1.log", "FORBIDDEN"],
  ["com3", "FORBIDDEN"],
  ["out", "FORBIDDEN"], // symlink to the canary
  ["abs", "FORBIDDEN"], // absolute symlink to the canary
  ["outdir/canary.txt", "FORBIDDEN"], // symlinked folder pointing out
  ["outdir", "FORBIDDEN"],
  ["sub/up/canary.txt", "FORBIDDEN"], // relative ../.. link in a subfolder
  ["chain1", "FORBIDDEN"], // chain1 -> chain2 -> canary
  ["chain2", "FORBIDDEN"],
  ["sub/outparent/canary.txt", "FORBIDDEN"], // sub/outparent -> ../..
  ["loop1", "NOT_FOUND"], // loop1 <-> loop2
  ["dangling", "NOT_FOUND"],
  ["%2e%2e/canary.txt", "NOT_FOUND"], // literal name, not an escape
  ["%2e%2e", "NOT_FOUND"],
  ["..%2fcanary.txt", "NOT_FOUND"],
  ["．．/canary.txt", "NOT_FOUND"], // fullwidth dots
  ["...", "NOT_FOUND"],
  ["canary.txt", "NOT_FOUND"],
];

Deno.test("serve() never lets a hostile path reach the canary outside the root", async () => {
  await withServer({
    allowUpload: true,
    files: { "a.txt": "inside", "sub/b.txt": "b" },
  }, async (t) => {
    const canaryPath = `${t.base}/canary.txt`;
    await Deno.symlink(canaryPath, `${t.root}/abs`);
    await Deno.symlink("../canary.txt", `${t.root}/out`);
    await Deno.symlink("..", `${t.root}/outdir`);
    await Deno.symlink("../..", `${t.root}/sub/up`);
    await Deno.symlink(`${t.base}`, `${t.root}/sub/outparent`);
    await Deno.symlink("chain2", `${t.root}/chain1`);
    await Deno.symlink("../canary.txt", `${t.root}/chain2`);
    await Deno.symlink("loop2", `${t.root}/loop1`);
    await Deno.symlink("loop1", `${t.root}/loop2`);
    await Deno.symlink("nowhere", `${t.root}/dangling`);
    await Deno.symlink("a.txt", `${t.root}/inside-link`);
    const baseBefore = await treeNames(t.base);
    assert.ok(HOSTILE_OVER_THE_WIRE.length >= 30);

    const created: string[] = [];
    const client = await RawClient.open(t.port, true);
    try {
      for (const [name, expected] of HOSTILE_OVER_THE_WIRE) {
        const requests = [
          { type: "get", path: name, offset: 0 },
          { type: "stat", path: name },
          { type: "list", path: name, recursive: true },
          { type: "put", path: name, size: 6, overwrite: true, resume: false },
        ] as const;
        for (const request of requests) {
          await client.send(request);
          const reply = await client.next();
          const what = `${request.type} ${JSON.stringify(name)}: ${
            JSON.stringify(reply)
          }`;
          if (
            request.type === "put" && expected === "NOT_FOUND" &&
            reply?.type === "ready"
          ) {
            // A literal name inside the root may be created: it must land there.
            const content = new TextEncoder().encode("placed");
            await client.sendBytes(content);
            await client.send({ type: "hash", digest: sha256(content) });
            assert.equal((await client.next())?.type, "ok", what);
            assert.equal(
              await Deno.readTextFile(`${t.root}/${name}`),
              "placed",
            );
            created.push(name);
            continue;
          }
          assert.equal(reply?.type, "error", what);
          const got = (reply as { code: string }).code;
          if (request.type === "put" && expected === "NOT_FOUND") {
            // A symbolic link as upload target is refused outright.
            assert.ok(got === "NOT_FOUND" || got === "FORBIDDEN", what);
          } else {
            assert.equal(got, expected, what);
          }
        }
      }
      // A recursive listing of the root shows only what lies inside.
      await client.send({ type: "list", path: "", recursive: true });
      const names: string[] = [];
      while (true) {
        const message = await client.next();
        if (message?.type !== "entries") break;
        names.push(...message.entries.map((e) => e.name));
      }
      assert.deepEqual(
        names.sort(),
        ["a.txt", "inside-link", "sub", "sub/b.txt", ...created].sort(),
      );
    } finally {
      client.close();
    }
    assert.ok(!client.transcript.includes(t.canary), "canary leaked");
    assert.equal(await Deno.readTextFile(canaryPath), t.canary);
    assert.deepEqual(
      await treeNames(t.base),
      [...baseBefore, ...created.map((name) => `root/${name}`)].sort(),
    );
  });
});

Deno.test("splitWirePath() accepts exactly the paths whose every segment segmentProblem() accepts", () => {
  // Short random paths over the characters the rules are about.
  const alphabet = [
    "a",
    "C",
    "O",
    "N",
    "u",
    "l",
    "1",
    ".",
    "/",
    " ",
    ":",
    "\\",
    "\x01",
    "é",
    "¹",
  ];
  let seed = 12345;
  const next = () =>
    (seed = (seed * 1103515245 + 12345) % 2 ** 31) % alphabet.length;
  for (let i = 0; i < 20000; i++) {
    let path = "";
    const length = 1 + (i % 9);
    for (let j = 0; j < length; j++) path += alphabet[next()];
    for (const windows of [false, true]) {
      const segments = path.split("/");
      const drive = /^[A-Za-z]:/.test(path);
      const allowed = !drive &&
        segments.every((s) => segmentProblem(s, { windows }) === undefined);
      assert.equal(
        code(() => splitWirePath(path, { windows })),
        allowed ? undefined : "FORBIDDEN",
        JSON.stringify({ path, windows }),
      );
    }
  }
});
