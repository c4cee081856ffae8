import { fileDirectoryCases } from "./conformance/file-directory.js";
import { testBackend, uniqueName } from "./helpers/db.js";

const base = await testBackend();
fileDirectoryCases(
  "PostgresBackend",
  async () => base.withWorkspace(uniqueName("ws")),
  () => base.close(),
);
