import assert from "node:assert/strict";
import {
  findProblems,
  findStartupProblems,
  readGraph,
  type StartupGraph,
} from "./check_imports.ts";

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

Deno.test("findStartupProblems() names node: and npm: modules loaded at start, with the chain", () => {
  const graph: StartupGraph = new Map([
    ["client.ts", ["_client/cli.ts", "_client/ferry_client.ts"]],
    ["_client/cli.ts", ["node:util"]],
    ["_client/ferry_client.ts", ["_common/digest.ts"]],
    ["_common/digest.ts", ["npm:hash-wasm@4.13.0"]],
    ["server.ts", ["_server/serve.ts"]],
    ["_server/serve.ts", ["node:path", "npm:mime-types@3.0.2"]],
  ]);
  assert.deepEqual(
    findStartupProblems(graph).map((line) => line.split(": ")[0]),
    [
      "client.ts loads node:util at start (client.ts -> _client/cli.ts -> node:util)",
      "client.ts loads npm:hash-wasm@4.13.0 at start (client.ts -> _client/ferry_client.ts -> _common/digest.ts -> npm:hash-wasm@4.13.0)",
      "server.ts loads npm:mime-types@3.0.2 at start (server.ts -> _server/serve.ts -> npm:mime-types@3.0.2)",
    ],
  );
});

Deno.test("readGraph() leaves import() and import type out of the start-up graph, which keeps the rules", async () => {
  const rootDir = new URL("../", import.meta.url);
  const startup: StartupGraph = new Map();
  await readGraph(rootDir, ["server.ts", "client.ts"], startup);
  // client.ts imports the command line with import(); ferry_client.ts
  // imports protocol.ts and tree_get.ts late and names their types with
  // import type; digest.ts imports node:crypto and hash-wasm with import().
  const client = startup.get("client.ts") ?? [];
  assert(client.includes("_client/ferry_client.ts"));
  assert(!client.includes("_client/cli.ts"));
  const ferryClient = startup.get("_client/ferry_client.ts") ?? [];
  assert(ferryClient.includes("_common/defaults.ts"));
  assert(!ferryClient.includes("protocol.ts"));
  assert(!ferryClient.includes("_client/tree_get.ts"));
  const digest = startup.get("_common/digest.ts") ?? [];
  assert(digest.includes("protocol.ts"));
  assert(!digest.some((to) => to.startsWith("node:") || to.startsWith("npm:")));
  assert.deepEqual(findStartupProblems(startup), []);
});
