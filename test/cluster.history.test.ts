/**
 * File history, checkpoints, rewind and fork through a PL/Proxy front: the shared history cases.
 * A fork stays on one partition (DA020 otherwise, tested in cluster.test.ts), so each case's
 * workspace is a name PL/Proxy puts on one partition with every fork target the cases derive
 * from it.
 */
import { historyConformance, type Versioned } from "./conformance/history.js";
import { clusterBackend, namesSharingPartition, skipWithoutCluster } from "./helpers/cluster.js";

if (!skipWithoutCluster("history through PL/Proxy")) {
  const root = await clusterBackend();
  // Every `${workspace}-<suffix>` of test/conformance/history.ts.
  const names = await namesSharingPartition(24, ["-at", "-bad", "-dirs", "-fork", "-hist", "-nope", "-once", "-taken"]);
  historyConformance("PostgresBackend through PL/Proxy", {
    fresh: async () => {
      const name = names.shift();
      if (!name) throw new Error("cluster.history: more cases than prepared workspace names");
      return root.withWorkspace(name) as unknown as Versioned;
    },
    close: () => root.close(),
    changeIds: true,
  });
}
