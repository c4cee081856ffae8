import { differential } from "./differential/suite.js";
import { testBackend, uniqueName } from "./helpers/db.js";

const backend = await testBackend();
differential("PostgresBackend", {
  fresh: async () => backend.withWorkspace(uniqueName("diff")),
  close: () => backend.close(),
});
