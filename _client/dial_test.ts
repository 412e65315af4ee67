import assert from "node:assert/strict";
import { guardConn } from "./dial.ts";

Deno.test("guardConn() closes a connection whose read outlasts the deadline, and says so", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = listener.accept();
  const conn = await Deno.connect({
    hostname: "127.0.0.1",
    port: listener.addr.port,
  });
  const silent = await accepted;
  try {
    const guard = guardConn(conn, 50, undefined);
    // The server sends nothing: only the guard can end this read.
    const ended = await conn.read(new Uint8Array(1)).then(
      (n) => `read ${n}`,
      (error: Error) => error.name,
    );
    guard.clear();
    assert.equal(guard.timedOut, true);
    assert.notEqual(ended, "read 1");
  } finally {
    silent.close();
    listener.close();
  }
});
