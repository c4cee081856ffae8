/**
 * deepagents-backends/s3: S3Backend. Loads the AWS SDK (@aws-sdk/client-s3, the peer
 * dependency an S3 user installs), never pg.
 */
export { S3Backend } from "./backend.js";
export type { S3WriteOptions } from "./backend.js";
export type { S3BackendConfig, S3Capabilities } from "./config.js";
export * from "../shared.js";
