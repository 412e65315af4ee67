import assert from "node:assert/strict";
import { openLocalSource } from "./send_file.ts";

Deno.test("openLocalSource() refuses a FIFO with LOCAL instead of waiting for a writer", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ferry_test_" });
  try {
    const made = await new Deno.Command("mkfifo", { args: [`${dir}/fifo`] })
      .output();
    assert(made.success);
    await assert.rejects(
      () => openLocalSource(`${dir}/fifo`),
      (error: Error & { code?: string }) =>
        error.code === "LOCAL" && /Not a file/.test(error.message),
    );
    await Deno.writeTextFile(`${dir}/file`, "abc");
    using source = await openLocalSource(`${dir}/file`);
    assert.equal(source.size, 3);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
