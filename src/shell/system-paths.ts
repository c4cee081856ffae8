/**
 * The few paths of the shell that are not the workspace's. just-bash looks every command up on
 * PATH in the filesystem (/usr/bin/<name>, /bin/<name>, then whether /usr/bin exists) before it
 * runs it: answered by the store, that is three round trips per command, and a workspace holding
 * a /usr/bin would hide every command. So /bin and /usr/bin are answered here, as read-only
 * directories of the commands (as on a Linux system), and so is /dev: /dev/null reads empty and
 * swallows writes, and nothing else is there (process substitution then uses just-bash's own
 * private /dev/fd). They are not listed in the workspace root: `ls /` shows the workspace.
 */
import type { FsStat, IFileSystem } from "just-bash";
import { isWithin } from "./shell-paths.js";

type DirentEntry = Awaited<ReturnType<NonNullable<IFileSystem["readdirWithFileTypes"]>>>[number];

export const DEV_NULL = "/dev/null";
const ROOTS = ["/bin", "/usr", "/dev"];
const EPOCH = new Date(0);

export class SystemPaths {
  readonly #commands: ReadonlySet<string>;

  constructor(commandNames: Iterable<string>) {
    this.#commands = new Set(commandNames);
  }

  /** The path is one of these (reads answer from here, writes are refused). */
  owns(path: string): boolean {
    return ROOTS.some((root) => isWithin(root, path));
  }

  /** null: no such path. */
  stat(path: string): FsStat | null {
    if (this.#directory(path)) return { ...stat(0o755, 0, path), isFile: false, isDirectory: true };
    if (path === DEV_NULL) return { ...stat(0o666, 0, path), isFile: false };
    const stub = this.#stub(path);
    return stub ? stat(0o755, stub.length, path) : null;
  }

  /** null: not a directory of these. */
  list(path: string): DirentEntry[] | null {
    const dir = (name: string) => ({ name, isFile: false, isDirectory: true, isSymbolicLink: false });
    const file = (name: string) => ({ name, isFile: true, isDirectory: false, isSymbolicLink: false });
    if (path === "/usr") return [dir("bin")];
    if (path === "/dev") return [{ ...file("null"), isFile: false }];
    if (path === "/bin" || path === "/usr/bin") return [...this.#commands].sort().map(file);
    return null;
  }

  /** The bytes of a file here; null: none. */
  read(path: string): Uint8Array | null {
    if (path === DEV_NULL) return new Uint8Array(0);
    return this.#stub(path);
  }

  #directory(path: string): boolean {
    return path === "/bin" || path === "/usr" || path === "/usr/bin" || path === "/dev";
  }

  /** What just-bash's own filesystem holds for a command: a script naming it. */
  #stub(path: string): Uint8Array | null {
    const slash = path.lastIndexOf("/");
    const [dir, name] = [path.slice(0, slash), path.slice(slash + 1)];
    if ((dir !== "/bin" && dir !== "/usr/bin") || !this.#commands.has(name)) return null;
    return Buffer.from(`#!/bin/bash\n# Built-in command: ${name}\n`);
  }
}

function stat(mode: number, size: number, path: string): FsStat {
  return { isFile: true, isDirectory: false, isSymbolicLink: false, mode, size, mtime: EPOCH, identity: path };
}
