import { conformance } from "./conformance/suite.js";
import { testBackend, uniqueName } from "./helpers/db.js";
import type { PostgresBackend } from "../src/index.js";

const base: PostgresBackend = await testBackend();
const sized = new Map<number, PostgresBackend>();

conformance("PostgresBackend", {
  async fresh(options = {}) {
    if (options.maxFileBytes === undefined) return base.withWorkspace(uniqueName("ws"));
    let b = sized.get(options.maxFileBytes);
    if (!b) {
      b = await testBackend({ maxFileBytes: options.maxFileBytes });
      sized.set(options.maxFileBytes, b);
    }
    return b.withWorkspace(uniqueName("ws"));
  },
  async close() {
    await Promise.all([base.close(), ...[...sized.values()].map((b) => b.close())]);
  },
});
