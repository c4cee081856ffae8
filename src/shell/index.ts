/**
 * deepagents-backends/shell: a bash shell over a backend's workspace for deepagents' `execute`
 * tool (withShell). It needs the optional peer dependency just-bash; the package's other entries
 * never load it.
 */
export {
  type ExecuteOptions,
  type ExecutionLimits,
  SHELL_DEFAULTS,
  type ShellBackend,
  type ShellOptions,
  withShell,
} from "./with-shell.js";
export { WorkspaceFs } from "./workspace-fs.js";
export { SystemPaths } from "./system-paths.js";
export { PosixError, type PosixCode } from "./posix-error.js";
