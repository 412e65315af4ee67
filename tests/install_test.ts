/**
 * `deno install -g` from the clone, as the README shows it: both programs
 * become commands (`ferry`, `ferry-server`) in a temporary root, with
 * narrow permissions, and answer `--help` through the installed shims.
 * Offline: nothing is fetched (every import is local, `node:` or cached).
 */

import assert from "node:assert/strict";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { CLIENT_SCRIPT, SERVER_SCRIPT } from "./_util/util.ts";

/** The clone's deno.json: its import map (npm packages) goes with them. */
const CONFIG = fileURLToPath(new URL("../deno.json", import.meta.url));

/** The commands the README installs, with the permissions it gives them. */
const COMMANDS: { name: string; script: string; permissions: string[] }[] = [
  {
    name: "ferry",
    script: CLIENT_SCRIPT,
    permissions: [
      "--allow-net",
      "--allow-read",
      "--allow-write",
      "--allow-env=FERRY_TOKEN",
    ],
  },
  {
    name: "ferry-server",
    script: SERVER_SCRIPT,
    permissions: ["--allow-net", "--allow-read", "--allow-env=FERRY_TOKEN"],
  },
];

Deno.test({
  name:
    "deno install -g makes ferry and ferry-server commands whose --help prints USAGE and OPTIONS",
  ignore: Deno.build.os === "windows",
}, async () => {
  const root = await Deno.makeTempDir({ prefix: "ferry_test_" });
  try {
    // The shims run `deno` by name: the one running this test.
    const env = {
      PATH: `${dirname(Deno.execPath())}:${Deno.env.get("PATH") ?? ""}`,
    };
    for (const { name, script, permissions } of COMMANDS) {
      const install = await new Deno.Command(Deno.execPath(), {
        args: [
          "install",
          "--global",
          "--root",
          root,
          "--cached-only", // offline: nothing is downloaded
          "--config",
          CONFIG,
          "-n",
          name,
          ...permissions,
          script,
        ],
        env,
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(
        install.code,
        0,
        `install ${name}: ${new TextDecoder().decode(install.stderr)}`,
      );
      const shim = `${root}/bin/${name}`;
      const text = await Deno.readTextFile(shim);
      for (const flag of permissions) assert.ok(text.includes(flag), flag);
      assert.ok(!text.includes("--allow-all") && !/\s-A\s/.test(text), text);
      const help = await new Deno.Command(shim, {
        args: ["--help"],
        env,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stdout = new TextDecoder().decode(help.stdout);
      assert.equal(help.code, 0, new TextDecoder().decode(help.stderr));
      assert.match(stdout, /^USAGE:/m, name);
      assert.match(stdout, /^OPTIONS:/m, name);
      assert.match(stdout, /--port PORT/, name);
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
