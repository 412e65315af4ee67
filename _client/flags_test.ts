import assert from "node:assert/strict";
import { parseArgs } from "node:util";
import { parseFlags } from "./flags.ts";

const SPECS = {
  port: { type: "string" },
  output: { type: "string", short: "o" },
  force: { type: "boolean", short: "f" },
  recursive: { type: "boolean", short: "r" },
  quiet: { type: "boolean", short: "q" },
  "no-resume": { type: "boolean" },
} as const;

/** Arguments that exercise every branch, combined three at a time. */
const PIECES = [
  "get",
  "-",
  "--",
  "-o",
  "-ox",
  "-o-x",
  "-rf",
  "-rfo",
  "-fx",
  "-x",
  "--port",
  "--port=-5",
  "--port=",
  "--force=1",
  "--bogus",
  "--no-resume",
  "---x",
  "--=x",
  "-5",
  "--toString",
];

function outcome(run: () => { values: object; positionals: string[] }) {
  try {
    const { values, positionals } = run();
    return {
      values: JSON.stringify(values),
      nullPrototype: Object.getPrototypeOf(values) === null,
      positionals,
    };
  } catch (error) {
    assert(error instanceof TypeError);
    return { error: error.message };
  }
}

Deno.test("parseFlags() matches node:util parseArgs on every command line of up to three pieces", () => {
  const lines: string[][] = [[]];
  for (const a of PIECES) {
    lines.push([a]);
    for (const b of PIECES) {
      lines.push([a, b]);
      for (const c of PIECES) lines.push([a, b, c]);
    }
  }
  for (const args of lines) {
    assert.deepEqual(
      outcome(() => parseFlags(args, SPECS)),
      outcome(() =>
        parseArgs({
          args,
          options: SPECS,
          strict: true,
          allowPositionals: true,
        })
      ),
      JSON.stringify(args),
    );
  }
});

Deno.test("parseFlags() keeps the last value of a repeated flag and '-' as a value", () => {
  const { values, positionals } = parseFlags(
    ["--port", "1", "-o", "-", "--port", "2", "ls"],
    SPECS,
  );
  assert.equal(values.port, "2");
  assert.equal(values.output, "-");
  assert.deepEqual(positionals, ["ls"]);
});
