/**
 * The few paths of the shell that are not the workspace's. just-bash looks every command up on
 * PATH in the filesystem (/usr/bin/<name>, /bin/<name>, then whether /usr/bin exists) before it
 * runs it: answered by the store, that is three round trips per command, and a workspace holding
 * a file /usr/bin/cat would shadow the command. So the command stubs /bin/<command> and
 * /usr/bin/<command> are answered here (read-only scripts naming the command, as just-bash's
 * own filesystem has them), and so is /dev/null (reads empty, swallows writes). /bin, /usr,
 * /usr/bin and /dev exist as directories even when the workspace has none; where it has them,
 * their other files are the workspace's (a repository's bin/ stays readable and writable), and a
 * listing shows both. Nothing here is listed in the workspace root: `ls /` shows the workspace.
 */
import type { FsStat, IFileSystem } from "just-bash";

type DirentEntry = Awaited<ReturnType<NonNullable<IFileSystem["readdirWithFileTypes"]>>>[number];

export const DEV_NULL = "/dev/null";
const DIRECTORIES = new Set(["/bin", "/usr", "/usr/bin", "/dev"]);
const EPOCH = new Date(0);

export class SystemPaths {
  readonly #commands: ReadonlySet<string>;

  constructor(commandNames: Iterable<string>) {
    this.#commands = new Set(commandNames);
  }

  /** The path is a command stub or /dev/null: reads answer from here, writes are refused. */
  owns(path: string): boolean {
    return path === DEV_NULL || this.#stub(path) !== null;
  }

  /** A directory every system has (it exists whether or not the workspace has it). */
  isDirectory(path: string): boolean {
    return DIRECTORIES.has(path);
  }

  /** null: no such path. */
  stat(path: string): FsStat | null {
    if (this.#directory(path)) return { ...stat(0o755, 0, path), isFile: false, isDirectory: true };
    if (path === DEV_NULL) return { ...stat(0o666, 0, path), isFile: false };
    const stub = this.#stub(path);
    return stub ? stat(0o755, stub.length, path) : null;
  }

  /** What a directory of these holds besides the workspace's files; null: not one of them. */
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
    return DIRECTORIES.has(path);
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
