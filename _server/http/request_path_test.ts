import assert from "node:assert/strict";
import { FerryError } from "../../errors.ts";
import { requestPath } from "./request_path.ts";

function codeOf(url: string): string {
  try {
    requestPath(url, 64);
    return "ok";
  } catch (error) {
    assert.ok(error instanceof FerryError);
    return error.code;
  }
}

Deno.test("requestPath() decodes each segment once and keeps the query apart", () => {
  const got = requestPath("http://h/docs/a%20b%C3%A9.txt?json&x=1", 64);
  assert.deepEqual(got.segments, ["docs", "a bé.txt"]);
  assert.equal(got.wirePath, "docs/a bé.txt");
  assert.equal(got.query, "json&x=1");
  assert.equal(got.trailingSlash, false);
  assert.deepEqual(requestPath("http://h/", 64).segments, []);
  assert.equal(requestPath("http://h/docs/", 64).trailingSlash, true);
  // Decoded once: %2525 is the name "%25", not "%".
  assert.equal(requestPath("http://h/%2525", 64).wirePath, "%25");
});

Deno.test("requestPath() refuses escapes, encoded separators, NUL, overlong UTF-8 and empty segments", () => {
  const cases: [string, string][] = [
    ["http://h/../x", "FORBIDDEN"],
    ["http://h/%2e%2e/x", "FORBIDDEN"],
    ["http://h/a%2fb", "FORBIDDEN"],
    ["http://h/a%5cb", "FORBIDDEN"],
    ["http://h/a%00b", "FORBIDDEN"],
    ["http://h//x", "FORBIDDEN"],
    ["http://h/%C0%AE%C0%AE/x", "BAD_REQUEST"],
    ["http://h/%E0%80%AE", "BAD_REQUEST"],
    ["http://h/%ff", "BAD_REQUEST"],
    ["http://h/%zz", "BAD_REQUEST"],
    ["http://h/%2", "BAD_REQUEST"],
  ];
  for (const [url, code] of cases) assert.equal(codeOf(url), code, url);
  assert.equal(codeOf("http://h/" + "a/".repeat(70)), "TOO_LARGE");
});
