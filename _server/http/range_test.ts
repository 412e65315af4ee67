import assert from "node:assert/strict";
import { parseRange } from "./range.ts";

Deno.test("parseRange() reads single, open, suffix and clamped ranges", () => {
  assert.deepEqual(parseRange("bytes=0-9", 100), {
    kind: "part",
    start: 0,
    end: 9,
  });
  assert.deepEqual(parseRange("bytes=90-", 100), {
    kind: "part",
    start: 90,
    end: 99,
  });
  assert.deepEqual(parseRange("bytes=-10", 100), {
    kind: "part",
    start: 90,
    end: 99,
  });
  assert.deepEqual(parseRange("bytes=-1000", 100), {
    kind: "part",
    start: 0,
    end: 99,
  });
  assert.deepEqual(parseRange("bytes=50-1000", 100), {
    kind: "part",
    start: 50,
    end: 99,
  });
  assert.deepEqual(parseRange(" Bytes = 1-2 ,", 100), {
    kind: "part",
    start: 1,
    end: 2,
  });
});

Deno.test("parseRange() ignores malformed headers and answers several ranges whole", () => {
  for (
    const header of [
      null,
      "bytes=",
      "bytes=-",
      "bytes=5-1",
      "bytes=a-b",
      "items=0-1",
      "bytes=1-2-3",
    ]
  ) {
    assert.deepEqual(
      parseRange(header, 100),
      { kind: "whole" },
      String(header),
    );
  }
  assert.deepEqual(parseRange("bytes=0-1,5-6", 100), { kind: "whole" });
  assert.deepEqual(parseRange("bytes=0-1,500-600", 100), {
    kind: "part",
    start: 0,
    end: 1,
  });
  assert.deepEqual(parseRange("bytes=" + "0-1,".repeat(200), 100), {
    kind: "whole",
  });
});

Deno.test("parseRange() finds nothing to satisfy past the end, in -0, or in an empty file", () => {
  assert.deepEqual(parseRange("bytes=100-", 100), { kind: "unsatisfiable" });
  assert.deepEqual(parseRange("bytes=-0", 100), { kind: "unsatisfiable" });
  assert.deepEqual(parseRange("bytes=0-", 0), { kind: "unsatisfiable" });
  assert.deepEqual(parseRange("bytes=-5", 0), { kind: "unsatisfiable" });
  assert.deepEqual(parseRange("bytes=99999999999999999999-", 100), {
    kind: "unsatisfiable",
  });
});
