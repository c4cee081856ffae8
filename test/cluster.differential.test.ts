/**
 * The differential suite through a PL/Proxy front: random scripts of every protocol call, the
 * cluster's answers against deepagents' StoreBackend.
 */
import { differential } from "./differential/suite.js";
import { clusterBackend, skipWithoutCluster } from "./helpers/cluster.js";
import { uniqueName } from "./helpers/db.js";

if (!skipWithoutCluster("differential through PL/Proxy")) {
  const backend = await clusterBackend();
  differential("PostgresBackend through PL/Proxy", {
    fresh: async () => backend.withWorkspace(uniqueName("diff")),
    close: () => backend.close(),
  });
}
