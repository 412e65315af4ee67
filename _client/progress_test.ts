import assert from "node:assert/strict";
import { CLEAR_LINE, formatBytes, ProgressLine } from "./progress.ts";

function fakeLine(options: { isTerminal?: boolean; quiet?: boolean } = {}) {
  const clock = { now: 0 };
  const writes: string[] = [];
  const line = new ProgressLine({
    write: (text) => writes.push(text),
    isTerminal: options.isTerminal ?? true,
    quiet: options.quiet,
    now: () => clock.now,
    columns: 100,
  });
  return { clock, writes, line };
}

Deno.test("ProgressLine redraws at most 10 times a second and clears the line at the end", () => {
  const { clock, writes, line } = fakeLine();
  const total = 10 * 1024 * 1024;
  // 2 seconds of updates every millisecond: 2001 updates, at most 21 draws.
  for (let ms = 0; ms <= 2000; ms++) {
    clock.now = ms;
    line.update("big.bin", Math.floor(total * ms / 2000), total);
  }
  assert.equal(line.redraws, 21);
  assert.ok(writes.every((text) => text.startsWith(CLEAR_LINE)));
  line.finish();
  assert.equal(writes.at(-1), CLEAR_LINE);
  assert.equal(writes.length, 22);
  // No colour escapes: only the clear sequence.
  for (const text of writes) {
    assert.ok(!text.replaceAll(CLEAR_LINE, "").includes("\x1b"));
  }
  line.update("big.bin", total, total);
  assert.equal(writes.length, 22, "nothing is drawn after finish()");
});

Deno.test("ProgressLine shows name, bytes, rate, ETA, and files for a tree", () => {
  const { clock, writes, line } = fakeLine();
  line.setTotals(4, 4 * 1024 * 1024);
  clock.now = 1000;
  line.update("docs/a.bin", 512 * 1024, 1024 * 1024);
  clock.now = 2000;
  line.fileDone(1024 * 1024);
  const last = writes.at(-1)!.slice(CLEAR_LINE.length);
  assert.equal(
    last,
    "docs/a.bin  1.0 MiB / 4.0 MiB  512.0 KiB/s  ETA 0:06  1/4 files",
  );
});

Deno.test("ProgressLine.setTotals() after files are done counts them", () => {
  const { clock, writes, line } = fakeLine();
  line.fileDone(100);
  clock.now = 1000;
  line.fileDone(100);
  line.setTotals(5, 500);
  clock.now = 2000;
  line.fileDone(100);
  assert(writes.at(-1)!.endsWith("  3/5 files"));
});

Deno.test("ProgressLine draws nothing when stderr is not a terminal or with --quiet", () => {
  for (const options of [{ isTerminal: false }, { quiet: true }]) {
    const { writes, line } = fakeLine(options);
    line.update("a", 1, 2);
    line.fileDone(2);
    line.finish();
    assert.deepEqual(writes, []);
    assert.equal(line.enabled, false);
  }
});

Deno.test("ProgressLine cuts a long name to the terminal width", () => {
  const { writes, line } = fakeLine();
  line.update("x".repeat(500) + "/end.txt", 1, 2);
  const text = writes[0].slice(CLEAR_LINE.length);
  assert.equal(text.length, 99);
  assert.ok(text.startsWith("…"));
  assert.ok(text.includes("end.txt  "));
});

Deno.test("formatBytes() uses binary units", () => {
  assert.equal(formatBytes(0), "0 B");
  assert.equal(formatBytes(1023), "1023 B");
  assert.equal(formatBytes(1536), "1.5 KiB");
  assert.equal(formatBytes(5 * 1024 ** 3), "5.0 GiB");
});
