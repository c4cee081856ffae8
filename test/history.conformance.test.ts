import { PostgresBackend } from "../src/index.js";
import { historyConformance, type Versioned } from "./conformance/history.js";
import { databaseUrl, TEST_SCHEMA, uniqueName } from "./helpers/db.js";

const root = new PostgresBackend({
  connectionString: await databaseUrl(),
  schema: TEST_SCHEMA,
  workspace: "history-conformance",
  maxPoolSize: 4,
  minPoolSize: 0,
});
await root.initialize();

historyConformance("PostgresBackend", {
  fresh: async () => root.withWorkspace(uniqueName("hc")) as unknown as Versioned,
  close: () => root.close(),
  changeIds: true,
});
