import assert from "node:assert/strict";
import {
  FERRY_ERROR_CODES,
  FerryError,
  isWireErrorCode,
  toFerryErrorCode,
  WIRE_ERROR_CODES,
} from "./errors.ts";

Deno.test("FerryError carries a name, a code, a message and a cause", () => {
  const cause = new Deno.errors.NotFound("no such file");
  const error = new FerryError("NOT_FOUND", "Not found: notes.txt", { cause });
  assert.ok(error instanceof FerryError);
  assert.ok(error instanceof Error);
  assert.equal(error.name, "FerryError");
  assert.equal(error.code, "NOT_FOUND");
  assert.equal(error.message, "Not found: notes.txt");
  assert.equal(error.cause, cause);
  assert.equal(String(error), "FerryError: Not found: notes.txt");
  assert.match(error.stack ?? "", /^FerryError: Not found: notes\.txt\n/);
});

Deno.test("FerryError has no cause unless given one", () => {
  const error = new FerryError("BUSY", "Server busy");
  assert.equal(error.cause, undefined);
  assert.equal("cause" in error, false);
});

Deno.test("FerryError survives throw and catch with its code", () => {
  assert.throws(
    () => {
      throw new FerryError("INTEGRITY", "Checksum mismatch: a.bin");
    },
    (error: unknown) =>
      error instanceof FerryError && error.code === "INTEGRITY" &&
      error.message === "Checksum mismatch: a.bin",
  );
});

Deno.test("toFerryErrorCode() returns every known code unchanged", () => {
  for (const code of FERRY_ERROR_CODES) {
    assert.equal(toFerryErrorCode(code), code);
  }
});

Deno.test("toFerryErrorCode() returns undefined for codes it does not know", () => {
  for (
    const code of [
      "",
      "NOPE",
      "not_found",
      "NOT_FOUND ",
      " NOT_FOUND",
      "NOT-FOUND",
      "__proto__",
      "toString",
      "constructor",
      "length",
    ]
  ) {
    assert.equal(toFerryErrorCode(code), undefined, JSON.stringify(code));
  }
});

Deno.test("FERRY_ERROR_CODES are distinct wire-safe codes that include every wire code", () => {
  assert.equal(new Set(FERRY_ERROR_CODES).size, FERRY_ERROR_CODES.length);
  for (const code of FERRY_ERROR_CODES) {
    // The ERROR frame's code field allows [A-Z_], 1 to 32 characters.
    assert.match(code, /^[A-Z_]{1,32}$/);
  }
  for (const code of WIRE_ERROR_CODES) {
    assert.ok(FERRY_ERROR_CODES.includes(code), code);
  }
  for (
    const code of ["CONNECTION", "TRUNCATED", "PROTOCOL", "TIMEOUT", "LOCAL"]
  ) {
    assert.equal(toFerryErrorCode(code), code);
  }
});

Deno.test("protocol.ts's error code table lists exactly the wire codes", async () => {
  const source = await Deno.readTextFile(
    new URL("./protocol.ts", import.meta.url),
  );
  const section = source.slice(
    source.indexOf("## Error codes"),
    source.indexOf("## Worked example"),
  );
  const documented = [...section.matchAll(/^ \* \| `([A-Z_]+)`/gm)].map((m) =>
    m[1]
  );
  assert.deepEqual([...documented].sort(), [...WIRE_ERROR_CODES].sort());
});

Deno.test("isWireErrorCode() accepts exactly the WIRE_ERROR_CODES", () => {
  for (const code of FERRY_ERROR_CODES) {
    assert.equal(isWireErrorCode(code), WIRE_ERROR_CODES.has(code), code);
  }
  for (const code of ["", "NOPE", "not_found", "__proto__", "TIMEOUT"]) {
    assert.equal(isWireErrorCode(code), false, JSON.stringify(code));
  }
  assert.deepEqual(
    FERRY_ERROR_CODES.filter((code) => !WIRE_ERROR_CODES.has(code)),
    ["CONNECTION", "TRUNCATED", "PROTOCOL", "TIMEOUT", "LOCAL"],
  );
});
