/**
 * The client's modules that are imported by a non-literal specifier
 * (`lateImport`, see `_common/late_import.ts`), which `deno compile` does
 * not find by itself: the `compile` task passes this module to `--include`,
 * which bundles it with everything it imports. Nothing imports it at run
 * time. `late_modules_test.ts` checks that the list is complete.
 *
 * @module
 */

import "../_common/copy.ts";
import "../protocol.ts";
import "./classic_get.ts";
import "./cli_run.ts";
import "./cli_sync.ts";
import "./cli_transfer.ts";
import "./errors.ts";
import "./handled.ts";
import "./handshake.ts";
import "./idle_watch.ts";
import "./receive.ts";
import "./receiver.ts";
import "./resume.ts";
import "./send_file.ts";
import "./sync_get.ts";
import "./sync_put.ts";
import "./tree_get.ts";
import "./tree_put.ts";
