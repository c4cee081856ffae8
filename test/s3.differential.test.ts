import { differential } from "./differential/suite.js";
import { startTestS3 } from "./helpers/s3.js";

const s3 = await startTestS3();
const backend = await s3.backend();
differential(`S3Backend (${s3.kind})`, {
  fresh: async () => backend.withWorkspace(`diff-${Math.random().toString(36).slice(2, 10)}`),
  close: () => s3.close(),
});
