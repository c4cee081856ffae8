/**
 * deepagents-backends: both backends, so importing it loads both drivers and needs both sets of
 * peer dependencies installed. deepagents-backends/postgres and deepagents-backends/s3 load one.
 */
export * from "./postgres/index.js";
export * from "./s3/index.js";
