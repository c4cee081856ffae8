import { directoryCases } from "./conformance/directories.js";
import { fileDirectoryCases } from "./conformance/file-directory.js";
import { testBackend, uniqueName } from "./helpers/db.js";

const base = await testBackend();
directoryCases("PostgresBackend", async () => base.withWorkspace(uniqueName("dir")));
fileDirectoryCases(
  "PostgresBackend",
  async () => base.withWorkspace(uniqueName("ws")),
  () => base.close(),
);
