/**
 * Resumable transfers: downloads that continue from `DEST.part`, uploads
 * that continue from the server's part, through a proxy that cuts the
 * connection again and again, and the edge cases around them.
 *
 * @module
 */

import assert from "node:assert/strict";
import { connect, FerryError, type TransferResult } from "../client.ts";
import type { TransferOptions } from "../_client/types.ts";
import { readPartRecord, recordPath } from "../_client/resume.ts";
import {
  openResumablePart,
  resumablePartName,
} from "../_server/upload_part.ts";
import { makeBulkBuffers } from "../_common/copy.ts";
import { seededRange, startCutProxy } from "./_util/cut_proxy.ts";
import { RawClient, sha256, testBytes, withServer } from "./_util/server.ts";
import { attempt, runClient } from "./_util/client.ts";
import { bytesEqual, digestHex, exists } from "./_util/util.ts";

const MIB = 1024 * 1024;
/** Frame bytes one attempt may add in the counted direction. */
const ATTEMPT_OVERHEAD = 200;

/** Downloads through a port, as one attempt. */
function tryGet(
  port: number,
  path: string,
  destination: string,
  options: TransferOptions = {},
): Promise<TransferResult | FerryError> {
  return attempt(port, (client) => client.get(path, destination, options));
}

/** Uploads through a port, as one attempt. */
function tryPut(
  port: number,
  local: string,
  remote: string,
  options: TransferOptions = {},
): Promise<TransferResult | FerryError> {
  return attempt(port, (client) => client.put(local, remote, options));
}

/** Makes `DEST.part` and its record with one download cut after `cutAt` bytes. */
async function cutDownload(
  serverPort: number,
  path: string,
  destination: string,
  cutAt: number,
): Promise<void> {
  await using proxy = startCutProxy(serverPort, "toClient", () => cutAt);
  const outcome = await tryGet(proxy.port, path, destination);
  assert.ok(outcome instanceof FerryError, "the first attempt must be cut");
  assert.equal(outcome.code, "CONNECTION");
  assert.ok(await exists(`${destination}.part`));
  assert.ok(await exists(recordPath(destination)));
}

Deno.test("FerryClient get() resumes after many cuts and never receives a byte twice", async () => {
  const size = 5 * MIB;
  const content = testBytes(size, 41);
  await withServer({ files: { "big.bin": content } }, async (t) => {
    const destination = `${t.base}/big.bin`;
    const limits = seededRange(2024, 300 * 1024, 700 * 1024);
    await using proxy = startCutProxy(t.port, "toClient", limits);
    let attempts = 0;
    let result: TransferResult | undefined;
    const resumedAt: number[] = [];
    while (result === undefined) {
      attempts++;
      assert.ok(attempts <= 40, "too many attempts");
      const outcome = await tryGet(proxy.port, "big.bin", destination, {
        onResume: (offset) => resumedAt.push(offset),
      });
      if (outcome instanceof FerryError) {
        assert.equal(outcome.code, "CONNECTION", outcome.message);
        const record = await readPartRecord(destination);
        assert.equal(record?.path, "big.bin");
        assert.equal(record?.size, size);
      } else {
        result = outcome;
      }
    }
    assert.ok(attempts >= 8, `only ${attempts} attempts`);
    assert.ok(bytesEqual(await Deno.readFile(destination), content));
    assert.equal(result.digest, await digestHex(content));
    assert.equal(result.restarted, false);
    assert.ok(result.resumedFrom! > 0);
    assert.equal(resumedAt.length, attempts - 1);
    for (let i = 1; i < resumedAt.length; i++) {
      assert.ok(resumedAt[i] > resumedAt[i - 1]);
    }
    // Everything the proxy forwarded is the file once, plus frames.
    assert.ok(proxy.forwarded >= size);
    assert.ok(
      proxy.forwarded < size + attempts * ATTEMPT_OVERHEAD,
      `forwarded ${proxy.forwarded} bytes for ${size} in ${attempts} attempts`,
    );
    assert.equal(await exists(`${destination}.part`), false);
    assert.equal(await exists(recordPath(destination)), false);
  });
});

Deno.test("FerryClient put() resumes after many cuts and never sends a byte twice", async () => {
  const size = 5 * MIB;
  const content = testBytes(size, 42);
  await withServer({ allowUpload: true }, async (t) => {
    const local = `${t.base}/local.bin`;
    await Deno.writeFile(local, content);
    await Deno.mkdir(`${t.root}/in`);
    const limits = seededRange(7, 300 * 1024, 700 * 1024);
    await using proxy = startCutProxy(t.port, "toServer", limits);
    let attempts = 0;
    let result: TransferResult | undefined;
    while (result === undefined) {
      attempts++;
      assert.ok(attempts <= 40, "too many attempts");
      const outcome = await tryPut(proxy.port, local, "in/up.bin");
      if (outcome instanceof FerryError) {
        assert.equal(outcome.code, "CONNECTION", outcome.message);
      } else {
        result = outcome;
      }
      if (attempts === 1) {
        // The cut upload left its part, named after the upload.
        const mtime = (await Deno.stat(local)).mtime!.getTime();
        const name = resumablePartName(`${t.root}/in/up.bin`, size, mtime);
        assert.ok(await exists(`${t.root}/in/${name}`));
      }
    }
    assert.ok(attempts >= 8, `only ${attempts} attempts`);
    assert.ok(bytesEqual(await Deno.readFile(`${t.root}/in/up.bin`), content));
    assert.ok(result.resumedFrom! > 0);
    assert.ok(
      proxy.forwarded < size + attempts * ATTEMPT_OVERHEAD,
      `forwarded ${proxy.forwarded} bytes for ${size} in ${attempts} attempts`,
    );
    const left = [];
    for await (const entry of Deno.readDir(`${t.root}/in`)) {
      left.push(entry.name);
    }
    assert.deepEqual(left, ["up.bin"]);
  });
});

Deno.test("FerryClient get() with a part as long as the file receives no data bytes", async () => {
  const content = testBytes(1 * MIB, 43);
  await withServer({ files: { "f.bin": content } }, async (t) => {
    const destination = `${t.base}/f.bin`;
    await cutDownload(t.port, "f.bin", destination, 200 * 1024);
    await Deno.writeFile(`${destination}.part`, content);
    await using proxy = startCutProxy(t.port, "toClient", () => Infinity);
    const result = await tryGet(proxy.port, "f.bin", destination);
    assert.ok(!(result instanceof FerryError), String(result));
    assert.equal(result.resumedFrom, content.length);
    assert.equal(result.restarted, false);
    assert.ok(proxy.forwarded < ATTEMPT_OVERHEAD, `${proxy.forwarded}`);
    assert.ok(bytesEqual(await Deno.readFile(destination), content));
    assert.equal(await exists(recordPath(destination)), false);
  });
});

Deno.test("FerryClient get() starts over when the part is longer than the file", async () => {
  const content = testBytes(512 * 1024, 44);
  await withServer({ files: { "f.bin": content } }, async (t) => {
    const destination = `${t.base}/f.bin`;
    await cutDownload(t.port, "f.bin", destination, 100 * 1024);
    const longer = new Uint8Array(content.length + 10);
    longer.set(content);
    await Deno.writeFile(`${destination}.part`, longer);
    const reasons: string[] = [];
    const result = await tryGet(t.port, "f.bin", destination, {
      onRestart: (reason) => reasons.push(reason),
    });
    assert.ok(!(result instanceof FerryError), String(result));
    assert.equal(result.restarted, true);
    assert.equal(result.resumedFrom, 0);
    assert.equal(reasons.length, 1);
    assert.match(reasons[0], /longer than the remote file/);
    assert.ok(bytesEqual(await Deno.readFile(destination), content));
  });
});

Deno.test("FerryClient get() starts over when the part belongs to another file", async () => {
  const a = testBytes(512 * 1024, 45);
  const b = testBytes(512 * 1024, 46);
  await withServer({ files: { "a.bin": a, "b.bin": b } }, async (t) => {
    const destination = `${t.base}/x.bin`;
    await cutDownload(t.port, "a.bin", destination, 100 * 1024);
    const reasons: string[] = [];
    const result = await tryGet(t.port, "b.bin", destination, {
      onRestart: (reason) => reasons.push(reason),
    });
    assert.ok(!(result instanceof FerryError), String(result));
    assert.equal(result.restarted, true);
    assert.match(reasons[0], /another file \(a\.bin\)/);
    assert.ok(bytesEqual(await Deno.readFile(destination), b));
  });
});

Deno.test("FerryClient get() starts over once when the remote file changed between attempts", async () => {
  const before = testBytes(512 * 1024, 47);
  const after = testBytes(512 * 1024, 48);
  await withServer({ files: { "f.bin": before } }, async (t) => {
    const destination = `${t.base}/f.bin`;
    await cutDownload(t.port, "f.bin", destination, 100 * 1024);
    await Deno.writeFile(`${t.root}/f.bin`, after);
    const old = new Date(Date.now() - 3_600_000);
    await Deno.utime(`${t.root}/f.bin`, old, old);
    const reasons: string[] = [];
    const result = await tryGet(t.port, "f.bin", destination, {
      onRestart: (reason) => reasons.push(reason),
    });
    assert.ok(!(result instanceof FerryError), String(result));
    assert.equal(result.restarted, true);
    assert.deepEqual(reasons, ["remote file changed"]);
    assert.ok(bytesEqual(await Deno.readFile(destination), after));
    assert.equal(
      (await Deno.stat(destination)).mtime?.getTime(),
      old.getTime(),
    );
  });
});

Deno.test("FerryClient get() starts over once when a part with a matching record holds other bytes", async () => {
  const content = testBytes(512 * 1024, 49);
  await withServer({ files: { "f.bin": content } }, async (t) => {
    const destination = `${t.base}/f.bin`;
    await cutDownload(t.port, "f.bin", destination, 100 * 1024);
    const part = await Deno.readFile(`${destination}.part`);
    part[part.length - 1] ^= 0xff;
    await Deno.writeFile(`${destination}.part`, part);
    const reasons: string[] = [];
    const result = await tryGet(t.port, "f.bin", destination, {
      onRestart: (reason) => reasons.push(reason),
    });
    assert.ok(!(result instanceof FerryError), String(result));
    assert.equal(result.restarted, true);
    assert.equal(result.resumedFrom, 0);
    assert.equal(reasons.length, 1);
    assert.match(reasons[0], /did not match the remote file/);
    assert.ok(bytesEqual(await Deno.readFile(destination), content));
  });
});

Deno.test("FerryClient get() leaves a kept part alone when the server refuses", async () => {
  const content = testBytes(256 * 1024, 50);
  await withServer({ files: { "f.bin": content } }, async (t) => {
    const destination = `${t.base}/f.bin`;
    await cutDownload(t.port, "f.bin", destination, 100 * 1024);
    const part = await Deno.readFile(`${destination}.part`);
    await Deno.remove(`${t.root}/f.bin`);
    await using client = await connect({ port: t.port });
    await assert.rejects(
      client.get("f.bin", destination),
      (error: FerryError) => error.code === "NOT_FOUND",
    );
    assert.ok(bytesEqual(await Deno.readFile(`${destination}.part`), part));
    assert.ok(await exists(recordPath(destination)));
    // The session is still usable.
    assert.deepEqual(await client.list(), []);
  });
});

Deno.test("FerryClient get() never writes through a symbolic link at DEST.part or its record", async () => {
  const content = testBytes(1000, 52);
  await withServer({ files: { "f.bin": content } }, async (t) => {
    const victim = `${t.base}/victim.txt`;
    const destination = `${t.base}/f.bin`;
    await using client = await connect({ port: t.port });
    for (const link of [`${destination}.part`, recordPath(destination)]) {
      for (const resume of [true, false]) {
        await Deno.writeTextFile(victim, "precious");
        await Deno.symlink(victim, link);
        const writesRecord = resume || link.endsWith(".part");
        if (writesRecord) {
          await assert.rejects(
            client.get("f.bin", destination, { resume }),
            (error: FerryError) =>
              error.code === "FORBIDDEN" &&
              /symbolic link/.test(error.message),
            `${link}, resume ${resume}`,
          );
        } else {
          // Without resume the record is only removed: the link, not its
          // target.
          await client.get("f.bin", destination, { resume });
          await Deno.remove(destination);
        }
        assert.equal(await Deno.readTextFile(victim), "precious");
        assert.equal(await exists(destination), false);
        await Deno.remove(link).catch(() => {});
      }
    }
    // The session is still usable, and a get without links succeeds.
    await client.get("f.bin", destination);
    assert.ok(bytesEqual(await Deno.readFile(destination), content));
  });
});

Deno.test("FerryClient get() with resume off starts from 0 and keeps no record", async () => {
  const content = testBytes(512 * 1024, 51);
  await withServer({ files: { "f.bin": content } }, async (t) => {
    const destination = `${t.base}/f.bin`;
    await cutDownload(t.port, "f.bin", destination, 100 * 1024);
    await using proxy = startCutProxy(t.port, "toClient", () => Infinity);
    const result = await tryGet(proxy.port, "f.bin", destination, {
      resume: false,
    });
    assert.ok(!(result instanceof FerryError), String(result));
    assert.ok(proxy.forwarded >= content.length);
    assert.ok(bytesEqual(await Deno.readFile(destination), content));
    assert.equal(await exists(recordPath(destination)), false);
  });
});

Deno.test("client.ts get resumes quietly off a terminal, and --no-resume starts over", async () => {
  const content = testBytes(2 * MIB, 52);
  await withServer({ files: { "f.bin": content } }, async (t) => {
    const destination = `${t.base}/f.bin`;
    // Resumed: fewer bytes than the file cross, and no "resuming at" line
    // (stderr is a pipe here, not a terminal).
    await cutDownload(t.port, "f.bin", destination, 1 * MIB);
    {
      await using proxy = startCutProxy(t.port, "toClient", () => Infinity);
      const run = await runClient([
        "--port",
        String(proxy.port),
        "get",
        "f.bin",
        "-o",
        destination,
      ]);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stderr, "");
      assert.doesNotMatch(run.stderr, /resuming at/);
      assert.ok(proxy.forwarded < content.length, `${proxy.forwarded}`);
      assert.ok(bytesEqual(await Deno.readFile(destination), content));
    }
    // --no-resume: the whole file crosses again.
    await Deno.remove(destination);
    await cutDownload(t.port, "f.bin", destination, 1 * MIB);
    {
      await using proxy = startCutProxy(t.port, "toClient", () => Infinity);
      const run = await runClient([
        "--port",
        String(proxy.port),
        "get",
        "f.bin",
        "-o",
        destination,
        "--no-resume",
      ]);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stderr, "");
      assert.ok(proxy.forwarded >= content.length, `${proxy.forwarded}`);
      assert.ok(bytesEqual(await Deno.readFile(destination), content));
      assert.equal(await exists(recordPath(destination)), false);
    }
  });
});

Deno.test("client.ts get says so on stderr when the remote file changed, and succeeds", async () => {
  const before = testBytes(512 * 1024, 53);
  const after = testBytes(512 * 1024, 54);
  await withServer({ files: { "f.bin": before } }, async (t) => {
    const destination = `${t.base}/f.bin`;
    await cutDownload(t.port, "f.bin", destination, 100 * 1024);
    await Deno.writeFile(`${t.root}/f.bin`, after);
    await Deno.utime(`${t.root}/f.bin`, new Date(0), new Date(0));
    const run = await runClient([
      "--port",
      String(t.port),
      "get",
      "f.bin",
      "-o",
      destination,
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(
      run.stderr,
      "ferry: get f.bin: remote file changed, starting over\n",
    );
    assert.ok(bytesEqual(await Deno.readFile(destination), after));
  });
});

Deno.test("client.ts put --no-resume sends the whole file again", async () => {
  const content = testBytes(1 * MIB, 55);
  await withServer({ allowUpload: true }, async (t) => {
    const local = `${t.base}/local.bin`;
    await Deno.writeFile(local, content);
    {
      await using proxy = startCutProxy(t.port, "toServer", () => 300 * 1024);
      const outcome = await tryPut(proxy.port, local, "up.bin");
      assert.ok(outcome instanceof FerryError);
    }
    await using proxy = startCutProxy(t.port, "toServer", () => Infinity);
    const run = await runClient([
      "--port",
      String(proxy.port),
      "put",
      local,
      "up.bin",
      "--no-resume",
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.ok(proxy.forwarded >= content.length, `${proxy.forwarded}`);
    assert.ok(bytesEqual(await Deno.readFile(`${t.root}/up.bin`), content));
  });
});

Deno.test("serve() continues a resumable PUT at the length of its part", async () => {
  const content = testBytes(300 * 1024, 56);
  await withServer({ allowUpload: true }, async (t) => {
    const mtime = Date.UTC(2020, 0, 1);
    const name = resumablePartName(`${t.root}/r.bin`, content.length, mtime);
    const part = `${t.root}/${name}`;
    // A cut upload: 100 KiB sent, then the connection closes.
    {
      const raw = await RawClient.open(t.port);
      await raw.send({
        type: "put",
        path: "r.bin",
        size: content.length,
        overwrite: false,
        resume: true,
        mtime,
      });
      assert.equal((await raw.expect("ready")).offset, 0);
      await raw.sendBytes(content.subarray(0, 100 * 1024));
      raw.close();
      await t.waitForLog((event) => event.request === "PUT");
    }
    assert.equal((await Deno.stat(part)).size, 100 * 1024);
    // The listing does not show it, and it cannot be fetched.
    const raw = await RawClient.open(t.port);
    try {
      await raw.send({ type: "list", path: "", recursive: false });
      assert.equal((await raw.expect("end")).count, 0);
      await raw.send({ type: "get", path: name, offset: 0 });
      await raw.expectError("FORBIDDEN");
      // The retry continues at 100 KiB and completes.
      await raw.send({
        type: "put",
        path: "r.bin",
        size: content.length,
        overwrite: false,
        resume: true,
        mtime,
      });
      assert.equal((await raw.expect("ready")).offset, 100 * 1024);
      await raw.sendBytes(content.subarray(100 * 1024));
      await raw.send({ type: "hash", digest: sha256(content) });
      await raw.expect("ok");
    } finally {
      raw.close();
    }
    assert.ok(bytesEqual(await Deno.readFile(`${t.root}/r.bin`), content));
    assert.equal(await exists(part), false);
  });
});

Deno.test("serve() drops a resumable part on an integrity failure, and empties one longer than the upload", async () => {
  const content = testBytes(64 * 1024, 57);
  await withServer({ allowUpload: true }, async (t) => {
    const mtime = Date.UTC(2021, 0, 1);
    const name = resumablePartName(`${t.root}/r.bin`, content.length, mtime);
    const part = `${t.root}/${name}`;
    const raw = await RawClient.open(t.port);
    try {
      const put = {
        type: "put",
        path: "r.bin",
        size: content.length,
        overwrite: false,
        resume: true,
        mtime,
      } as const;
      // A part longer than the upload is emptied: READY 0.
      await Deno.writeFile(part, new Uint8Array(content.length + 1));
      await raw.send(put);
      assert.equal((await raw.expect("ready")).offset, 0);
      await raw.sendBytes(content);
      await raw.send({ type: "hash", digest: new Uint8Array(32) });
      await raw.expectError("INTEGRITY");
      assert.equal(await exists(part), false);
      // A part holding other bytes: READY at its length, then INTEGRITY
      // removes it.
      await Deno.writeFile(part, new Uint8Array(1000));
      await raw.send(put);
      assert.equal((await raw.expect("ready")).offset, 1000);
      await raw.sendBytes(content.subarray(1000));
      await raw.send({ type: "hash", digest: sha256(content) });
      await raw.expectError("INTEGRITY");
      assert.equal(await exists(part), false);
    } finally {
      raw.close();
    }
    assert.equal(await exists(`${t.root}/r.bin`), false);
  });
});

Deno.test("serve() removes a cut upload's temporary file unless the upload is resumable", async () => {
  await withServer({ allowUpload: true }, async (t) => {
    const raw = await RawClient.open(t.port);
    await raw.send({
      type: "put",
      path: "n.bin",
      size: 1000,
      overwrite: false,
      resume: false,
    });
    await raw.expect("ready");
    await raw.sendBytes(new Uint8Array(500));
    raw.close();
    await t.waitForLog((event) => event.request === "PUT");
    const names = [];
    for await (const entry of Deno.readDir(t.root)) names.push(entry.name);
    assert.deepEqual(names, []);
  });
});

Deno.test("serve() sweeps parts untouched for 24 hours from a folder it uploads to", async () => {
  await withServer({ allowUpload: true }, async (t) => {
    const stale = `${t.root}/.ferry-0123456789abcdef0123456789abcdef.part`;
    const fresh = `${t.root}/.ferry-fedcba9876543210fedcba9876543210.part`;
    const elsewhere = `${t.root}/sub/.ferry-00.part`;
    await Deno.mkdir(`${t.root}/sub`);
    for (const path of [stale, fresh, elsewhere]) {
      await Deno.writeFile(path, new Uint8Array(10));
    }
    const old = new Date(Date.now() - 25 * 60 * 60 * 1000);
    await Deno.utime(stale, old, old);
    await Deno.utime(elsewhere, old, old);
    const raw = await RawClient.open(t.port);
    try {
      const reply = await raw.put("new.txt", new TextEncoder().encode("hi"));
      assert.equal(reply?.type, "ok");
    } finally {
      raw.close();
    }
    assert.equal(await exists(stale), false);
    assert.equal(await exists(fresh), true);
    assert.equal(await exists(elsewhere), true); // not the upload's folder
  });
});

Deno.test("openResumablePart() stops hashing a kept part once the connection has closed", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ferry_test_" });
  try {
    const path = `${dir}/.ferry-00.part`;
    await Deno.writeFile(path, new Uint8Array(1000));
    const closed = new AbortController();
    closed.abort();
    await assert.rejects(
      () =>
        openResumablePart(path, 2000, makeBulkBuffers(256), {
          algorithm: "sha256",
          signal: closed.signal,
        }),
      Deno.errors.Interrupted,
    );
    // Not removed: a cut resumable upload keeps its part.
    assert.equal((await Deno.stat(path)).size, 1000);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
