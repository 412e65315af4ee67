/**
 * Checks the import rules of this repository and fails, naming the files, on
 * a cycle or a forbidden import:
 *
 * - no import cycles among the repository's own modules;
 * - nothing in a private folder (`_common/`, `_server/`, `_client/`) imports
 *   an entry point (`mod.ts`, `server.ts`, `client.ts`);
 * - server internals and client internals never import each other, and
 *   `_common/` imports neither;
 * - `protocol.ts` imports only `errors.ts` and calls no `Deno.*` API (so Node
 *   and Bun can use it);
 * - what a process evaluates at start (the static imports, not `import()`
 *   nor `import type`) stays cheap: from `client.ts`, no `node:` module and
 *   no npm package (either makes Deno set up its Node compatibility layer,
 *   10 to 50 ms, before `--help` prints anything), nor `protocol.ts` (the
 *   client loads its codec when a session starts); from `server.ts`, no npm
 *   package. Load them with `import()` where they are used.
 *
 * It reads the module graph with `deno info --json` from the published entry
 * points, the CLIs and the bench, like std's
 * `_tools/check_circular_package_dependencies.ts`. Run from the repository
 * root (`deno task test` does):
 *
 * ```sh
 * deno run --allow-read --allow-run _tools/check_imports.ts
 * ```
 *
 * @module
 */

/** One module's local imports: repository-relative paths. */
export type ImportGraph = Map<string, string[]>;

/**
 * What each module imports statically for its code (no `import()`, no
 * `import type`): repository-relative paths, and `node:` and `npm:`
 * specifiers as they are.
 */
export type StartupGraph = Map<string, string[]>;

/**
 * What each module names in a literal `import()`: Deno reads those modules,
 * and what they import, whenever a program that may load it starts.
 */
export type EagerReads = Map<string, string[]>;

/**
 * The literal `import()`s allowed in what `client.ts` reads at start: the
 * command line, which `--help` needs. Anything else is imported with
 * `lateImport` (`_common/late_import.ts`).
 */
const EAGER_READS_ALLOWED = new Map([["client.ts", ["_client/cli.ts"]]]);

/** Specifiers an entry point may not load at start, and why. */
const STARTUP_RULES: { root: string; forbidden: RegExp; why: string }[] = [
  {
    root: "client.ts",
    forbidden: /^(node|npm):/,
    why:
      "every client command, --help included, would set up Node compatibility",
  },
  {
    root: "client.ts",
    forbidden: /^protocol\.ts$/,
    why:
      "every client command, --help included, would evaluate the wire codec (see _common/late_import.ts)",
  },
  {
    root: "server.ts",
    forbidden: /^npm:/,
    why: "every server start would load the package",
  },
];

const ENTRY_POINTS = ["mod.ts", "server.ts", "client.ts", "protocol.ts"];
// _client/classic_get.ts is imported by a non-literal specifier and named by
// no type either (see _client/classic.ts), so no entry point's graph
// reaches it.
const OTHER_ROOTS = [
  "bench/bench.ts",
  "_tools/check_imports.ts",
  "_client/classic_get.ts",
];
const PRIVATE_FOLDERS = ["_common/", "_server/", "_client/"];
const PROTOCOL_ALLOWED = new Set(["errors.ts"]);

/**
 * Finds every broken rule in a graph.
 *
 * @param graph Local imports of each module, by repository-relative path.
 * @param sources The text of a module, for the checks that read code
 * (`protocol.ts` must not call `Deno.*`).
 * @returns One line per problem, naming the files; empty when all is well.
 *
 * @example A cycle is found
 * ```ts
 * import assert from "node:assert/strict";
 * import { findProblems } from "./check_imports.ts";
 * const graph = new Map([["a.ts", ["b.ts"]], ["b.ts", ["a.ts"]]]);
 * assert.deepEqual(findProblems(graph), ["import cycle: a.ts -> b.ts -> a.ts"]);
 * ```
 */
export function findProblems(
  graph: ImportGraph,
  sources: Map<string, string> = new Map(),
): string[] {
  const problems: string[] = [];
  for (const [from, targets] of graph) {
    for (const to of targets) {
      const problem = forbiddenImport(from, to);
      if (problem !== undefined) problems.push(problem);
    }
  }
  const protocol = sources.get("protocol.ts");
  if (protocol !== undefined && /\bDeno\.[A-Za-z]/.test(codeOnly(protocol))) {
    problems.push("protocol.ts calls a Deno.* API (it must stay runtime-free)");
  }
  for (const cycle of findCycles(graph)) {
    problems.push(`import cycle: ${[...cycle, cycle[0]].join(" -> ")}`);
  }
  return problems;
}

/**
 * Finds the `node:` modules and npm packages an entry point loads at start,
 * against {@linkcode STARTUP_RULES}.
 *
 * @param graph Static code imports of each module.
 * @returns One line per problem, with the chain of imports that loads it.
 *
 * @example node:util loaded at start by the client
 * ```ts
 * import assert from "node:assert/strict";
 * import { findStartupProblems } from "./check_imports.ts";
 * const graph = new Map([["client.ts", ["_client/cli.ts"]], ["_client/cli.ts", ["node:util"]]]);
 * assert.equal(findStartupProblems(graph).length, 1);
 * ```
 */
export function findStartupProblems(graph: StartupGraph): string[] {
  const problems: string[] = [];
  for (const { root, forbidden, why } of STARTUP_RULES) {
    if (!graph.has(root)) continue;
    const via = new Map<string, string | undefined>([[root, undefined]]);
    const queue = [root];
    while (queue.length > 0) {
      const module = queue.shift()!;
      for (const target of graph.get(module) ?? []) {
        if (via.has(target)) continue;
        via.set(target, module);
        if (forbidden.test(target)) {
          const chain = [target];
          for (let at = via.get(target); at !== undefined; at = via.get(at)) {
            chain.unshift(at);
          }
          problems.push(
            `${root} loads ${target} at start (${
              chain.join(" -> ")
            }): ${why}; import it with import() where it is used`,
          );
        } else {
          queue.push(target);
        }
      }
    }
  }
  return problems;
}

function roleOf(path: string): string | undefined {
  return PRIVATE_FOLDERS.find((folder) => path.startsWith(folder));
}

function forbiddenImport(from: string, to: string): string | undefined {
  const fromRole = roleOf(from);
  if (fromRole !== undefined && ENTRY_POINTS.slice(0, 3).includes(to)) {
    return `${from} imports the entry point ${to}`;
  }
  const toRole = roleOf(to);
  if (
    (fromRole === "_server/" && toRole === "_client/") ||
    (fromRole === "_client/" && toRole === "_server/") ||
    (fromRole === "_common/" && toRole !== undefined && toRole !== fromRole)
  ) {
    return `${from} imports ${to} (${fromRole} may not use ${toRole})`;
  }
  if (from === "protocol.ts" && !PROTOCOL_ALLOWED.has(to)) {
    return `protocol.ts imports ${to} (it may import only errors.ts)`;
  }
  return undefined;
}

/** Strips comments so that the doc's mention of `Deno.*` does not count. */
function codeOnly(source: string): string {
  return source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");
}

/** Tarjan's strongly connected components of more than one module. */
function findCycles(graph: ImportGraph): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  let next = 0;
  function visit(node: string): void {
    index.set(node, next);
    low.set(node, next);
    next++;
    stack.push(node);
    onStack.add(node);
    for (const target of graph.get(node) ?? []) {
      if (!index.has(target)) {
        visit(target);
        low.set(node, Math.min(low.get(node)!, low.get(target)!));
      } else if (onStack.has(target)) {
        low.set(node, Math.min(low.get(node)!, index.get(target)!));
      }
    }
    if (low.get(node) !== index.get(node)) return;
    const component: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      component.push(member);
    } while (member !== node);
    const selfLoop = (graph.get(node) ?? []).includes(node);
    if (component.length > 1 || selfLoop) cycles.push(component.reverse());
  }
  for (const node of [...graph.keys()].sort()) {
    if (!index.has(node)) visit(node);
  }
  return cycles;
}

interface DenoInfo {
  modules: {
    specifier: string;
    dependencies?: {
      code?: { specifier?: string };
      type?: { specifier?: string };
      isDynamic?: boolean;
    }[];
  }[];
}

/**
 * Reads the local module graph from `deno info --json` for each root.
 *
 * @param rootDir The repository folder, as a `file:` URL ending in `/`.
 * @param roots Repository-relative paths to start from.
 * @param startup Filled, when given, with the static code imports of each
 * local module (see {@linkcode StartupGraph}).
 * @param eager Filled, when given, with the literal `import()` targets of
 * each local module (see {@linkcode EagerReads}).
 * @returns The graph of local modules, by repository-relative path.
 */
export async function readGraph(
  rootDir: URL,
  roots: string[],
  startup?: StartupGraph,
  eager?: EagerReads,
): Promise<ImportGraph> {
  const graph: ImportGraph = new Map();
  const local = (specifier: string | undefined) =>
    specifier?.startsWith(rootDir.href)
      ? specifier.slice(rootDir.href.length)
      : undefined;
  for (const root of roots) {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", new URL(root, rootDir).pathname],
      stdout: "piped",
      stderr: "inherit",
    }).output();
    if (!output.success) throw new Error(`deno info failed for ${root}`);
    const info: DenoInfo = JSON.parse(new TextDecoder().decode(output.stdout));
    for (const module of info.modules) {
      const from = local(module.specifier);
      if (from === undefined || graph.has(from)) continue;
      const targets = new Set<string>();
      const atStart = new Set<string>();
      const dynamic = new Set<string>();
      for (const dependency of module.dependencies ?? []) {
        for (const to of [dependency.code, dependency.type]) {
          const path = local(to?.specifier);
          if (path !== undefined) targets.add(path);
        }
        const code = dependency.code?.specifier;
        if (code !== undefined) {
          (dependency.isDynamic ? dynamic : atStart).add(local(code) ?? code);
        }
      }
      graph.set(from, [...targets].sort());
      startup?.set(from, [...atStart].sort());
      eager?.set(from, [...dynamic].sort());
    }
  }
  return graph;
}

/**
 * Finds the literal `import()`s in what `client.ts` reads at start, beyond
 * {@linkcode EAGER_READS_ALLOWED}: each makes Deno read another module and
 * its imports before `--help` prints anything.
 *
 * @param startup Static code imports of each module.
 * @param eager Literal `import()` targets of each module.
 * @returns One line per literal `import()` found.
 *
 * @example A literal import() in a module client.ts loads
 * ```ts
 * import assert from "node:assert/strict";
 * import { findEagerReads } from "./check_imports.ts";
 * const startup = new Map([["client.ts", ["_client/ferry_client.ts"]]]);
 * const eager = new Map([["_client/ferry_client.ts", ["_client/tree_get.ts"]]]);
 * assert.equal(findEagerReads(startup, eager).length, 1);
 * ```
 */
export function findEagerReads(
  startup: StartupGraph,
  eager: EagerReads,
): string[] {
  const problems: string[] = [];
  for (const [root, allowed] of EAGER_READS_ALLOWED) {
    const seen = new Set([root]);
    const queue = [root];
    while (queue.length > 0) {
      const module = queue.shift()!;
      for (const target of eager.get(module) ?? []) {
        if (module === root && allowed.includes(target)) {
          if (!seen.has(target)) queue.push(target);
          seen.add(target);
          continue;
        }
        problems.push(
          `${module} imports ${target} with a literal import(): Deno reads it and its imports at every start of ${root}; use lateImport (_common/late_import.ts)`,
        );
      }
      for (const target of startup.get(module) ?? []) {
        if (seen.has(target)) continue;
        seen.add(target);
        queue.push(target);
      }
    }
  }
  return problems;
}

if (import.meta.main) {
  const rootDir = new URL("../", import.meta.url);
  const startup: StartupGraph = new Map();
  const eager: EagerReads = new Map();
  const graph = await readGraph(
    rootDir,
    [...ENTRY_POINTS, ...OTHER_ROOTS],
    startup,
    eager,
  );
  const sources = new Map([
    ["protocol.ts", await Deno.readTextFile(new URL("protocol.ts", rootDir))],
  ]);
  const problems = [
    ...findProblems(graph, sources),
    ...findStartupProblems(startup),
    ...findEagerReads(startup, eager),
  ];
  for (const problem of problems) console.error(`check_imports: ${problem}`);
  if (problems.length > 0) {
    Deno.exitCode = 1;
  } else {
    console.log(`check_imports: ${graph.size} modules, no cycle, rules hold`);
  }
}
