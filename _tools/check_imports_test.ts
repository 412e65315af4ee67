import assert from "node:assert/strict";
import { findProblems, readGraph } from "./check_imports.ts";

Deno.test("findProblems() names an import cycle and every forbidden import", () => {
  const graph = new Map([
    ["server.ts", ["_server/serve.ts"]],
    ["_server/serve.ts", ["server.ts", "_client/common.ts"]],
    ["_client/common.ts", ["_server/path_jail.ts"]],
    ["_common/copy.ts", ["_server/pool.ts"]],
    ["protocol.ts", ["errors.ts", "_common/copy.ts"]],
  ]);
  const problems = findProblems(
    graph,
    new Map([["protocol.ts", "/** Deno.listen in a doc */ Deno.exit(1);"]]),
  );
  assert.deepEqual(
    problems.sort(),
    [
      "_client/common.ts imports _server/path_jail.ts (_client/ may not use _server/)",
      "_common/copy.ts imports _server/pool.ts (_common/ may not use _server/)",
      "_server/serve.ts imports _client/common.ts (_server/ may not use _client/)",
      "_server/serve.ts imports the entry point server.ts",
      "import cycle: _server/serve.ts -> server.ts -> _server/serve.ts",
      "protocol.ts calls a Deno.* API (it must stay runtime-free)",
      "protocol.ts imports _common/copy.ts (it may import only errors.ts)",
    ].sort(),
  );
});

Deno.test("findProblems() accepts a graph that keeps the rules", () => {
  const graph = new Map([
    ["server.ts", ["_server/serve.ts"]],
    ["_server/serve.ts", ["_common/copy.ts", "errors.ts"]],
    ["_common/copy.ts", ["protocol.ts"]],
    ["protocol.ts", ["errors.ts"]],
  ]);
  const sources = new Map([["protocol.ts", "// Deno.exit is not called\n"]]);
  assert.deepEqual(findProblems(graph, sources), []);
});

Deno.test("readGraph() reads this repository's graph, which keeps the rules", async () => {
  const rootDir = new URL("../", import.meta.url);
  const graph = await readGraph(rootDir, ["server.ts", "client.ts"]);
  assert(graph.get("server.ts")?.includes("_server/serve.ts"));
  assert(graph.get("client.ts")?.includes("_client/ferry_client.ts"));
  assert.deepEqual(findProblems(graph), []);
});
