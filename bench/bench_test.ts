import assert from "node:assert/strict";
import { percentile, rate, summarize } from "./_stats.ts";
import { runScript } from "../tests/_util/util.ts";

const BENCH = new URL("./bench.ts", import.meta.url).pathname;
const REPO = new URL("..", import.meta.url).pathname;

async function runBench(
  args: string[],
  timeoutMs: number,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    return await runScript(BENCH, args, {
      cwd: REPO,
      signal: controller.signal,
    });
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("bench.ts --quick runs every scenario, prints tables and writes results.json", async () => {
  const out = await Deno.makeTempDir({ prefix: "ferry_test_" });
  try {
    const { code, stdout, stderr } = await runBench(
      ["--quick", "--no-install", "--out", out],
      90_000,
    );
    assert.equal(code, 0, stderr);
    for (
      const heading of [
        "# ferry benchmark",
        "## 1. Big file",
        "## 2. Many small files",
        "## 3. Concurrency",
        "## 4. Memory",
        "## 5. Scaling",
        "## 7. Sync",
        "## 8. Issue 11 targets",
      ]
    ) {
      assert.ok(stdout.includes(heading), `stdout lacks ${heading}`);
    }
    assert.match(stdout, /^\| file \| peer \| MB\/s \| seconds \|/m);
    assert.match(stdout, /^\|---\|---\|/m);
    assert.match(stdout, /Machine: \d+ × /);
    assert.match(stderr, /scenario 1: big file 8 MiB/);

    const results = JSON.parse(await Deno.readTextFile(`${out}/results.json`));
    for (
      const key of [
        "schema",
        "startedAt",
        "wallSeconds",
        "mode",
        "runsPerFigure",
        "units",
        "machine",
        "peers",
        "scenarios",
      ]
    ) {
      assert.ok(key in results, `results.json lacks ${key}`);
    }
    assert.equal(results.mode, "quick");
    assert.equal(results.runsPerFigure, 1);
    assert.ok(results.machine.nproc >= 1);
    assert.equal(typeof results.machine.cpu, "string");
    assert.equal(typeof results.machine.deno, "string");
    for (
      const key of ["bigFile", "manyFiles", "concurrency", "memory", "scaling"]
    ) {
      assert.ok(key in results.scenarios, `scenarios lacks ${key}`);
    }
    const big = results.scenarios.bigFile;
    assert.equal(big.length, 1);
    assert.equal(big[0].bytes, 8 * 1024 * 1024);
    // Every peer is listed, with figures or a reason: none silently dropped.
    assert.equal(big[0].rows.length, 6);
    for (const row of big[0].rows) {
      assert.ok(["ok", "failed", "unavailable"].includes(row.status));
      if (row.status === "ok") {
        assert.ok(row.seconds.median > 0 && row.mbps.median > 0);
      } else assert.equal(typeof row.reason, "string");
    }
    // The raw Deno loop needs nothing but Deno: it always has figures.
    const raw = big[0].rows.find((r: { peer: string }) =>
      r.peer.startsWith("raw Deno")
    );
    assert.equal(raw.status, "ok");
    assert.equal(results.scenarios.manyFiles[0].count, 50);
    assert.equal(results.scenarios.concurrency.length, 3);
    // The HAProxy row has figures, or says why not (haproxy missing).
    const cluster = results.scenarios.concurrency.find((
      c: { label: string },
    ) => c.label.includes("HAProxy"));
    assert.ok(cluster.status === "ok" || /haproxy/.test(cluster.reason));
    assert.ok(Array.isArray(results.scenarios.scaling.sizes));
    assert.ok(Array.isArray(results.scenarios.scaling.trees));
    // Sync: only the changed file's bytes, only the growth, crossed the wire.
    const sync = results.scenarios.sync;
    assert.equal(sync.error, undefined, sync.error);
    assert.equal(sync.oneChanged.sentBytes, sync.plan.fileBytes);
    assert.equal(sync.grown.sentBytes, sync.plan.growthBytes);
    assert.ok(sync.noop.ferry.median > 0);
    // Issue 11's targets: every row measured, the concurrent gets exact.
    const targets = results.scenarios.targets as {
      label: string;
      value: { median: number };
      target?: string;
    }[];
    assert.ok(targets.some((row) => row.label.includes("cache miss")));
    assert.ok(targets.some((row) => row.label.includes("put -r, tmpfs")));
    assert.ok(targets.every((row) => row.value.median > 0));
    const memory = targets.find((row) => row.label.includes("peak RSS"))!;
    assert.match(memory.target!, /all byte-exact \(yes\)/);
    assert.equal(
      await Deno.readTextFile(`${out}/results.md`),
      stdout.slice(0, -1),
    );
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("bench.ts --help prints USAGE and OPTIONS and exits 0", async () => {
  const { code, stdout } = await runBench(["--help"], 20_000);
  assert.equal(code, 0);
  assert.match(stdout, /^USAGE:$/m);
  assert.match(stdout, /^OPTIONS:$/m);
  assert.match(stdout, /--quick .*\(default: off\)/);
});

Deno.test("bench.ts rejects an unknown flag with exit code 2 and the usage", async () => {
  const { code, stdout, stderr } = await runBench(["--bogus"], 20_000);
  assert.equal(code, 2);
  assert.equal(stdout, "");
  assert.match(stderr, /^bench: .*bogus/);
  assert.match(stderr, /USAGE:/);
});

Deno.test("summarize() gives the median, min and max of runs", () => {
  assert.deepEqual(summarize([3, 1, 2]), { median: 2, min: 1, max: 3, n: 3 });
  assert.equal(summarize([1, 2, 3, 10]).median, 2.5);
  assert.throws(() => summarize([]), RangeError);
});

Deno.test("rate() maps the slowest run to the minimum rate", () => {
  assert.deepEqual(rate(summarize([2, 1, 4]), 100), {
    median: 50,
    min: 25,
    max: 100,
    n: 3,
  });
});

Deno.test("percentile() uses the nearest rank", () => {
  const values = Array.from({ length: 200 }, (_, i) => 200 - i);
  assert.equal(percentile(values, 50), 100);
  assert.equal(percentile(values, 99), 198);
  assert.equal(percentile([5], 99), 5);
});
