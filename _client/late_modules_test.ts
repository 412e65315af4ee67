import assert from "node:assert/strict";

/** The modules `lateImport` loads, as URLs, from the client's sources. */
async function lateTargets(folder: URL): Promise<Set<string>> {
  const targets = new Set<string>();
  for await (const entry of Deno.readDir(folder)) {
    if (!entry.name.endsWith(".ts") || entry.name.endsWith("_test.ts")) {
      continue;
    }
    const url = new URL(entry.name, folder);
    const source = await Deno.readTextFile(url);
    const calls = source.matchAll(
      /lateImport<[^>]*>\s*\(\s*"([^"]+)",\s*import\.meta\.url/g,
    );
    for (const [, path] of calls) targets.add(new URL(path, url).href);
  }
  return targets;
}

Deno.test("late_modules.ts names every module the client imports with lateImport()", async () => {
  const folder = new URL("./", import.meta.url);
  const manifest = new URL("late_modules.ts", folder);
  const listed = new Set(
    [...(await Deno.readTextFile(manifest)).matchAll(/^import "([^"]+)";$/gm)]
      .map(([, path]) => new URL(path, manifest).href),
  );
  const targets = await lateTargets(folder);
  assert(targets.size >= 10, `only ${targets.size} lateImport() calls found`);
  assert.deepEqual([...targets].filter((url) => !listed.has(url)), []);
});
