import { conformance } from "./conformance/suite.js";
import { startTestS3 } from "./helpers/s3.js";

const s3 = await startTestS3();
const probe = await s3.backend();

conformance(
  `S3Backend (${s3.kind}, conditional writes ${probe.capabilities!.conditionalWrites ? "enforced" : "NOT enforced"})`,
  {
    fresh: (options = {}) => s3.backend(options),
    close: () => s3.close(),
    timestampResolutionMs: 1000,
    atomicEdits: probe.capabilities!.conditionalWrites,
  },
);
