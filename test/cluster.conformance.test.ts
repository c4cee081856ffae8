/**
 * The protocol through a PL/Proxy front (issue 16, docs/CLUSTER.md): the conformance suite, the
 * directory and file/directory cases, and move/copy, each case in a fresh workspace, so the cases
 * land on all four partitions. PostgresBackend is the same class as on one database.
 */
import type { PostgresBackend } from "../src/index.js";
import { conformance } from "./conformance/suite.js";
import { directoryCases } from "./conformance/directories.js";
import { fileDirectoryCases } from "./conformance/file-directory.js";
import { relocateCases } from "./conformance/relocate.js";
import { clusterBackend, skipWithoutCluster } from "./helpers/cluster.js";
import { uniqueName } from "./helpers/db.js";

if (!skipWithoutCluster("conformance through PL/Proxy")) {
  const base: PostgresBackend = await clusterBackend();
  const sized = new Map<number, PostgresBackend>();
  const fresh = async () => base.withWorkspace(uniqueName("ws"));
  directoryCases("PostgresBackend through PL/Proxy", fresh);
  fileDirectoryCases("PostgresBackend through PL/Proxy", fresh);
  relocateCases("PostgresBackend through PL/Proxy", fresh);
  conformance("PostgresBackend through PL/Proxy", {
    async fresh(options = {}) {
      if (options.maxFileBytes === undefined) return fresh();
      let b = sized.get(options.maxFileBytes);
      if (!b) {
        b = await clusterBackend({ maxFileBytes: options.maxFileBytes });
        sized.set(options.maxFileBytes, b);
      }
      return b.withWorkspace(uniqueName("ws"));
    },
    async close() {
      await Promise.all([base.close(), ...[...sized.values()].map((b) => b.close())]);
    },
  });
}
