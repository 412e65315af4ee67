import assert from "node:assert/strict";
import { leasePathOf, UploadLease } from "./upload_lease.ts";
import { FerryError } from "../errors.ts";
import { exists, withTempDir } from "../tests/_util/util.ts";

const PART = ".ferry-0123456789abcdef0123456789abcdef.part";

Deno.test("leasePathOf() puts the lease beside its part", () => {
  assert.equal(
    leasePathOf(`/r/a/${PART}`),
    "/r/a/.ferry-0123456789abcdef0123456789abcdef.lease",
  );
});

Deno.test("UploadLease: a second claimant waits until the first releases, and nothing is left", async () => {
  await withTempDir(async (dir) => {
    const part = `${dir}/${PART}`;
    const first = await UploadLease.acquire(part, { timeoutMs: 10_000 });
    assert(await exists(leasePathOf(part)));
    let secondHeld = false;
    const second = UploadLease.acquire(part, { timeoutMs: 10_000 }).then(
      (lease) => {
        secondHeld = true;
        return lease;
      },
    );
    // The second polls (every 250 ms) and must not get in meanwhile.
    for (let i = 0; i < 3; i++) {
      assert(await first.held());
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(secondHeld, false, "two holders at once");
    }
    await first.release();
    const lease = await second;
    assert(await lease.held());
    await lease.release();
    assert.equal(await exists(leasePathOf(part)), false);
  });
});

Deno.test("UploadLease takes over a lease nobody refreshes (a killed server)", async () => {
  await withTempDir(async (dir) => {
    const part = `${dir}/${PART}`;
    await Deno.writeTextFile(leasePathOf(part), "dead server\n");
    const started = performance.now();
    const lease = await UploadLease.acquire(part, { timeoutMs: 200 });
    assert(performance.now() - started >= 199, "taken over before its timeout");
    assert(await lease.held());
    assert.match(
      await Deno.readTextFile(leasePathOf(part)),
      /^ferry upload lease: pid \d+ /,
    );
    await lease.release();
  });
});

Deno.test("UploadLease keeps a live lease and answers BUSY after the longest wait", async () => {
  await withTempDir(async (dir) => {
    const part = `${dir}/${PART}`;
    const holder = await UploadLease.acquire(part, { timeoutMs: 100 });
    try {
      await assert.rejects(
        UploadLease.acquire(part, { timeoutMs: 100, maxWaitMs: 500 }),
        (error: Error) => error instanceof FerryError && error.code === "BUSY",
      );
      assert(await holder.held(), "a refreshed lease was taken over");
    } finally {
      await holder.release();
    }
  });
});

Deno.test("UploadLease tells its holder when it was taken over, and leaves the new one", async () => {
  await withTempDir(async (dir) => {
    const part = `${dir}/${PART}`;
    let onLost!: () => void;
    const lost = new Promise<void>((resolve) => onLost = resolve);
    const lease = await UploadLease.acquire(part, { timeoutMs: 100, onLost });
    // Another server decided it was dead and took the lease.
    await Deno.remove(leasePathOf(part));
    await Deno.writeTextFile(leasePathOf(part), "successor\n");
    await lost;
    assert.equal(lease.lost, true);
    assert.equal(await lease.held(), false);
    await lease.release();
    assert.equal(await Deno.readTextFile(leasePathOf(part)), "successor\n");
  });
});

Deno.test("UploadLease stops waiting when the connection closes", async () => {
  await withTempDir(async (dir) => {
    const part = `${dir}/${PART}`;
    const holder = await UploadLease.acquire(part);
    try {
      const controller = new AbortController();
      const waiting = UploadLease.acquire(part, { signal: controller.signal });
      controller.abort();
      await assert.rejects(
        waiting,
        (error: Error) =>
          error instanceof FerryError && error.code === "CONNECTION",
      );
    } finally {
      await holder.release();
    }
  });
});

Deno.test("UploadLease never writes through a link planted at the lease's name", async () => {
  await withTempDir(async (dir) => {
    const part = `${dir}/${PART}`;
    await Deno.writeTextFile(`${dir}/outside.txt`, "keep me\n");
    await Deno.symlink(`${dir}/outside.txt`, leasePathOf(part));
    // The link never moves: it is taken for a dead lease and removed itself.
    const lease = await UploadLease.acquire(part, { timeoutMs: 100 });
    try {
      assert.equal((await Deno.lstat(leasePathOf(part))).isSymlink, false);
      assert.equal(await Deno.readTextFile(`${dir}/outside.txt`), "keep me\n");
    } finally {
      await lease.release();
    }
    assert.equal(await exists(leasePathOf(part)), false);
  });
});
