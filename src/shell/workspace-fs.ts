/**
 * The workspace as just-bash's filesystem (IFileSystem): every call is one or a few calls of the
 * wrapped backend, nothing is cached, so what a script sees is what the store holds and every
 * write is one per-file write (a change in the change feed, a version in history).
 *
 * POSIX where a script can tell: a write needs its directory to exist, removing a file leaves its
 * directory, and failures are errno-shaped (posix-error.ts). What the store has no notion of is
 * refused (links, modes), except timestamps: `touch` on an existing file succeeds and keeps the
 * store's own modification time, since refusing would break the most common way to create a file.
 * /dev/null reads empty and swallows writes; the rest of /dev is the workspace's.
 */
import type {
  BufferEncoding,
  CpOptions,
  CreateExclusiveOptions,
  FileContent,
  FsStat,
  IFileSystem,
  MkdirOptions,
  RmOptions,
} from "just-bash";
import { isStorableText } from "../content.js";
import type { DeepAgentsBackend, Version } from "../core/interface.js";
import { getMimeType, isTextMimeType } from "../mime.js";
import { normalizePath, PathError } from "../paths.js";
import { errors, type FileStat } from "../protocol.js";
import { jitteredBackoff } from "../concurrency.js";
import { hostCall } from "./host-call.js";
import { isMissing, type PosixCode, PosixError } from "./posix-error.js";
import { normalizeShellPath, parentOf, resolveShellPath } from "./shell-paths.js";
import { DEV_NULL, type SystemPaths } from "./system-paths.js";

type DirentEntry = Awaited<ReturnType<NonNullable<IFileSystem["readdirWithFileTypes"]>>>[number];
type EncodingOption = Parameters<IFileSystem["readFile"]>[1];

const FILE_MODE = 0o644;
const DIR_MODE = 0o755;
/**
 * An append is read, concatenated and written if the file is still at the version read; a lost
 * race is tried again after a jittered pause, as many times as an S3 edit (DEFAULTS.s3).
 */
const APPEND_ATTEMPTS = 64;
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

type Kind<V> = { type: "file"; stat: FileStat<V> } | { type: "directory" } | { type: "missing" };

export class WorkspaceFs<V extends Version = Version> implements IFileSystem {
  constructor(
    private readonly store: DeepAgentsBackend<V>,
    private readonly system: SystemPaths,
  ) {}

  resolvePath(base: string, path: string): string {
    return resolveShellPath(base, path);
  }

  /** Listing a whole store synchronously is not possible; glob expansion uses readdir instead. */
  getAllPaths(): string[] {
    return [];
  }

  async readFile(path: string, options?: EncodingOption): Promise<string> {
    return Buffer.from(await this.readFileBuffer(path)).toString(encodingOf(options));
  }

  async readFileBuffer(path: string): Promise<Uint8Array> {
    const p = normalizeShellPath(path);
    if (this.system.owns(p)) {
      const bytes = this.system.read(p);
      if (bytes) return bytes;
      throw new PosixError(this.system.stat(p) ? "EISDIR" : "ENOENT", "open", path);
    }
    if (p === "/") throw new PosixError("EISDIR", "read", path);
    const stored = this.#stored(p, "open", path, "read");
    const [answer] = await this.#call("open", path, () => this.store.downloadFiles([stored]));
    if (answer.content) return answer.content;
    if (this.system.isDirectory(p)) throw new PosixError("EISDIR", "open", path);
    throw new PosixError(TRANSFER_ERRORS[answer.error ?? "file_not_found"], "open", path);
  }

  async writeFile(path: string, content: FileContent, options?: EncodingOption): Promise<void> {
    const p = normalizeShellPath(path);
    if (this.#discards(p, "open", path)) return;
    const stored = this.#stored(p, "open", path, "write");
    await this.#requireParent(stored, "open", path);
    const failure = await this.#put(stored, toBytes(content, options), "open", path);
    if (failure) throw await this.#explain(failure, stored, "open", path);
  }

  async appendFile(path: string, content: FileContent, options?: EncodingOption): Promise<void> {
    const p = normalizeShellPath(path);
    if (this.#discards(p, "open", path)) return;
    const stored = this.#stored(p, "open", path, "write");
    const tail = toBytes(content, options);
    for (let attempt = 0; attempt < APPEND_ATTEMPTS; attempt++) {
      const before = await this.#kind(stored, "open", path);
      if (before.type === "directory") throw new PosixError("EISDIR", "open", path);
      // `>>` opens its file by appending nothing: no write (and no new version) for that.
      if (before.type === "file" && tail.length === 0) return;
      if (before.type === "missing") await this.#requireParent(stored, "open", path);
      const head = before.type === "file" ? await this.readFileBuffer(stored) : new Uint8Array(0);
      const version = before.type === "file" ? before.stat.version : 0;
      const failure = await this.#put(stored, Buffer.concat([head, tail]), "open", path, version);
      if (!failure) return;
      // Written by someone else between the read and the write: read again. Anything else fails.
      const after = await this.#kind(stored, "open", path);
      const moved = after.type === "file" ? after.stat.version !== version : before.type === "file";
      if (!moved) throw await this.#explain(failure, stored, "open", path);
      // (Timers are the host's: just-bash's hardening blocks them in the script's context.)
      await hostCall(() => jitteredBackoff(attempt + 1));
    }
    throw new PosixError("EBUSY", "open", path, "the file kept changing under concurrent writers");
  }

  async exists(path: string): Promise<boolean> {
    try {
      await this.stat(path);
      return true;
    } catch (e) {
      if (isMissing(e)) return false;
      throw e;
    }
  }

  async stat(path: string): Promise<FsStat> {
    const p = normalizeShellPath(path);
    if (this.system.owns(p)) {
      const stat = this.system.stat(p);
      if (stat) return stat;
      throw new PosixError("ENOENT", "stat", path);
    }
    const kind = await this.#kind(this.#stored(p, "stat", path, "read"), "stat", path);
    if (kind.type === "missing") throw new PosixError("ENOENT", "stat", path);
    if (kind.type === "directory") return entryStat(p, true, 0, new Date(0));
    return entryStat(p, false, kind.stat.size, new Date(kind.stat.modified_at));
  }

  lstat(path: string): Promise<FsStat> {
    return this.stat(path);
  }

  /** Every path is canonical: there are no links. */
  async realpath(path: string): Promise<string> {
    await this.stat(path);
    return normalizeShellPath(path);
  }

  async mkdir(path: string, options?: MkdirOptions): Promise<void> {
    const p = normalizeShellPath(path);
    const recursive = options?.recursive === true;
    if (p === "/") {
      if (recursive) return;
      throw new PosixError("EEXIST", "mkdir", path);
    }
    if (this.system.owns(p)) throw new PosixError("EEXIST", "mkdir", path);
    if (this.system.isDirectory(p)) {
      if (recursive) return;
      throw new PosixError("EEXIST", "mkdir", path);
    }
    const stored = this.#stored(p, "mkdir", path, "write");
    // A system directory is there even when the store has none: the store makes it with the child.
    const parents = recursive || this.system.isDirectory(parentOf(stored));
    const answer = await this.#call("mkdir", path, () => this.store.mkdir(stored, { parents }));
    if (answer.error) throw await this.#explain(answer.error, stored, "mkdir", path);
  }

  /** mktemp's primitive: a file or directory that must not exist yet (modes are not stored). */
  async createExclusive(path: string, options: CreateExclusiveOptions): Promise<void> {
    if (options.directory) return this.mkdir(path);
    const p = normalizeShellPath(path);
    if (this.system.owns(p)) throw new PosixError("EROFS", "open", path);
    const stored = this.#stored(p, "open", path, "write");
    await this.#requireParent(stored, "open", path);
    const failure = await this.#put(stored, new Uint8Array(0), "open", path, 0);
    if (!failure) return;
    if ((await this.#kind(stored, "open", path)).type !== "missing") throw new PosixError("EEXIST", "open", path);
    throw await this.#explain(failure, stored, "open", path);
  }

  async readdir(path: string): Promise<string[]> {
    return (await this.readdirWithFileTypes(path)).map((entry) => entry.name);
  }

  async readdirWithFileTypes(path: string): Promise<DirentEntry[]> {
    const p = normalizeShellPath(path);
    if (this.system.owns(p)) throw new PosixError("ENOTDIR", "scandir", path);
    const stored = this.#stored(p, "scandir", path, "read");
    const listing = await this.#call("scandir", path, () => this.store.ls(stored));
    if (listing.error) throw new PosixError("EIO", "scandir", path, listing.error);
    const storedEntries = (listing.files ?? []).map((info) => {
      const name = info.path.replace(/\/$/, "").split("/").pop()!;
      const isDirectory = info.is_dir === true;
      return { name, isFile: !isDirectory, isDirectory, isSymbolicLink: false };
    });
    // A system directory: its commands (or bin, null) with whatever the workspace keeps there.
    const system = this.system.list(p) ?? [];
    const names = new Set(system.map((e) => e.name));
    const entries = [...system, ...storedEntries.filter((e) => !names.has(e.name))];
    // An empty listing is an empty directory, a file or nothing: the store tells which.
    if (entries.length === 0 && p !== "/") {
      const kind = await this.#kind(stored, "scandir", path);
      if (kind.type === "missing") throw new PosixError("ENOENT", "scandir", path);
      if (kind.type === "file") throw new PosixError("ENOTDIR", "scandir", path);
    }
    // The order of readdir(3) on just-bash's own filesystems: by UTF-16 code units.
    return entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async rm(path: string, options?: RmOptions): Promise<void> {
    const p = normalizeShellPath(path);
    if (p === "/") throw new PosixError("EPERM", "rm", path, "the workspace root cannot be removed");
    if (this.system.owns(p)) throw new PosixError("EROFS", "rm", path);
    const stored = this.#stored(p, "rm", path, "read");
    // A system directory goes only as far as the workspace keeps it (its commands stay).
    if (this.system.isDirectory(p) && (await this.#stat(stored, "rm", path)).type === "missing")
      throw new PosixError("EROFS", "rm", path);
    const kind = await this.#kind(stored, "rm", path);
    if (kind.type === "missing") {
      if (options?.force) return;
      throw new PosixError("ENOENT", "rm", path);
    }
    if (kind.type === "directory" && !options?.recursive && (await this.readdir(stored)).length > 0) {
      throw new PosixError("ENOTEMPTY", "rm", path);
    }
    const answer = await this.#call("rm", path, () => this.store.delete(stored));
    if (answer.error && !(options?.force && answer.error === errors.notFound(stored))) {
      throw await this.#explain(answer.error, stored, "rm", path);
    }
    await this.#keepParent(stored);
  }

  async cp(src: string, dest: string, options?: CpOptions): Promise<void> {
    const [from, to] = [normalizeShellPath(src), normalizeShellPath(dest)];
    this.#refuseSystem(from, to, "cp", dest);
    const source = this.#stored(from, "cp", src, "read");
    const target = this.#stored(to, "cp", dest, "write");
    const kind = await this.#kind(source, "cp", src);
    if (kind.type === "missing") throw new PosixError("ENOENT", "cp", src);
    if (kind.type === "directory" && !options?.recursive) throw new PosixError("EISDIR", "cp", src);
    if (source === target) return;
    await this.#requireParent(target, "cp", dest);
    const answer = await this.#call("cp", dest, () => this.store.copy(source, target, { overwrite: true }));
    if (answer.error) throw await this.#explain(answer.error, source, "cp", src);
  }

  async mv(src: string, dest: string): Promise<void> {
    const [from, to] = [normalizeShellPath(src), normalizeShellPath(dest)];
    this.#refuseSystem(from, to, "mv", dest);
    const source = this.#stored(from, "mv", src, "read");
    const target = this.#stored(to, "mv", dest, "write");
    if (source === target) return;
    await this.#requireParent(target, "mv", dest);
    const answer = await this.#call("mv", dest, () => this.store.move(source, target, { overwrite: true }));
    if (answer.error) throw await this.#explain(answer.error, source, "mv", src);
    await this.#keepParent(source);
  }

  /**
   * Modes are not stored: an existing path is left as it is (as utimes), a missing one is ENOENT.
   * Refusing made just-bash's chmod say "cannot access … No such file or directory" of a file that
   * is there, and `chmod +x run.sh` is a step agents take by habit.
   */
  async chmod(path: string): Promise<void> {
    await this.stat(path);
  }

  async symlink(_target: string, linkPath: string): Promise<void> {
    throw new PosixError("EPERM", "symlink", linkPath, "the workspace has no links");
  }

  async link(_existingPath: string, newPath: string): Promise<void> {
    throw new PosixError("EPERM", "link", newPath, "the workspace has no links");
  }

  /** Nothing is a link: an existing path answers EINVAL, as readlink(2) does for a regular file. */
  async readlink(path: string): Promise<string> {
    await this.stat(path);
    throw new PosixError("EINVAL", "readlink", path);
  }

  /** Times are the store's (set by each write): an existing path is left as it is. */
  async utimes(path: string): Promise<void> {
    await this.stat(path);
  }

  /** /dev/null takes any write; the other system paths none. */
  #discards(p: string, syscall: string, display: string): boolean {
    if (p === DEV_NULL) return true;
    if (this.system.owns(p)) throw new PosixError("EROFS", syscall, display);
    return false;
  }

  /** Copies and moves are between workspace paths only. */
  #refuseSystem(from: string, to: string, syscall: string, display: string): void {
    if (this.system.owns(from) || this.system.owns(to)) throw new PosixError("EROFS", syscall, display);
  }

  /**
   * The path the store keeps for `p`, or the error of a name it cannot hold: such a file cannot
   * exist (a read answers ENOENT) nor be made (a write answers EINVAL, saying why).
   */
  #stored(p: string, syscall: string, display: string, use: "read" | "write"): string {
    let reason: string;
    try {
      const stored = normalizePath(p).path;
      // The store trims a path's surrounding whitespace: "a " would be read and written as "a".
      if (stored === p.normalize("NFC")) return stored;
      reason = "a name cannot start or end with whitespace";
    } catch (e) {
      if (!(e instanceof PathError)) throw e;
      reason = e.reason;
    }
    throw new PosixError(use === "read" ? "ENOENT" : "EINVAL", syscall, display, reason);
  }

  /** File, directory or nothing, in one call of the store; a system directory is always there. */
  async #kind(stored: string, syscall: string, display: string): Promise<Kind<V>> {
    const kind = await this.#stat(stored, syscall, display);
    return kind.type === "missing" && this.system.isDirectory(stored) ? { type: "directory" } : kind;
  }

  /** What the store alone has at the path. */
  async #stat(stored: string, syscall: string, display: string): Promise<Kind<V>> {
    if (stored === "/") return { type: "directory" };
    const answer = await this.#call(syscall, display, () => this.store.stat(stored));
    if (answer.data) return { type: "file", stat: answer.data };
    if (answer.isDirectory) return { type: "directory" };
    if (answer.error === errors.readNotFound(stored)) return { type: "missing" };
    throw new PosixError("EIO", syscall, display, answer.error);
  }

  /** Creating a path needs its directory, as open(2) and rename(2) do (the store would make it). */
  async #requireParent(stored: string, syscall: string, display: string): Promise<void> {
    const parent = parentOf(stored);
    const kind = await this.#kind(parent, syscall, display);
    if (kind.type === "missing") throw new PosixError("ENOENT", syscall, display);
    if (kind.type === "file") throw new PosixError("ENOTDIR", syscall, display);
  }

  /**
   * Removing the last file of a directory removes the directory from the store (it exists while
   * a file lies below it); on a filesystem it stays, so it is made explicitly.
   */
  async #keepParent(stored: string): Promise<void> {
    const parent = parentOf(stored);
    if (parent !== "/") await this.#call("rm", parent, () => this.store.mkdir(parent, { parents: true }));
  }

  /**
   * One write of the whole file: write() for text (a text type holding valid UTF-8 without NUL)
   * and for binary types (base64), uploadFiles() for other bytes under a text type (stored as
   * binary). `ifVersion` (0: must not exist) guards read-modify-write; the upload path has none.
   * Returns the store's error, if any.
   */
  async #put(
    stored: string,
    bytes: Uint8Array,
    syscall: string,
    display: string,
    ifVersion?: V | 0,
  ): Promise<string | undefined> {
    const binaryType = !isTextMimeType(getMimeType(stored));
    const text = binaryType ? null : storableText(bytes);
    const options = ifVersion === undefined ? {} : { ifVersion };
    if (binaryType || text !== null) {
      const content = text ?? Buffer.from(bytes).toString("base64");
      return (await this.#call(syscall, display, () => this.store.write(stored, content, options))).error;
    }
    const [answer] = await this.#call(syscall, display, () => this.store.uploadFiles([[stored, bytes]]));
    if (answer.error) throw new PosixError(TRANSFER_ERRORS[answer.error], syscall, display);
    return undefined;
  }

  /** The errno of a store error about `stored`: its own words where they say, else its directory. */
  async #explain(error: string, stored: string, syscall: string, display: string): Promise<PosixError> {
    const known: Array<[string, PosixCode]> = [
      [errors.isDirectory(stored), "EISDIR"],
      [errors.notFound(stored), "ENOENT"],
      [errors.readNotFound(stored), "ENOENT"],
      [errors.directoryExists(stored), "EEXIST"],
      [errors.fileExists(stored), "EEXIST"],
    ];
    const code = known.find(([message]) => message === error)?.[1];
    if (code) return new PosixError(code, syscall, display);
    const parent = await this.#kind(parentOf(stored), syscall, display).catch(() => null);
    if (parent?.type === "missing") return new PosixError("ENOENT", syscall, display);
    if (parent?.type === "file") return new PosixError("ENOTDIR", syscall, display);
    return new PosixError("EIO", syscall, display, error);
  }

  /** A store call (host-call.ts); a throw (a storage failure) becomes EIO. */
  async #call<T>(syscall: string, display: string, run: () => T | Promise<T>): Promise<T> {
    try {
      return await hostCall(run);
    } catch (e) {
      if (e instanceof PosixError) throw e;
      throw new PosixError("EIO", syscall, display, e instanceof Error ? e.message : String(e));
    }
  }
}

const TRANSFER_ERRORS: Record<string, PosixCode> = {
  file_not_found: "ENOENT",
  is_directory: "EISDIR",
  permission_denied: "EPERM",
  invalid_path: "EINVAL",
};

function entryStat(path: string, isDirectory: boolean, size: number, mtime: Date): FsStat {
  // The path is the identity: a file has exactly one (no links), so cp/mv can tell two apart.
  return {
    isFile: !isDirectory,
    isDirectory,
    isSymbolicLink: false,
    mode: isDirectory ? DIR_MODE : FILE_MODE,
    size,
    mtime,
    identity: path,
  };
}

function encodingOf(options: EncodingOption): BufferEncoding {
  return (typeof options === "string" ? options : options?.encoding) ?? "utf8";
}

function toBytes(content: FileContent, options: EncodingOption): Uint8Array {
  return typeof content === "string" ? Buffer.from(content, encodingOf(options)) : content;
}

/** The bytes as text the store keeps as text (valid UTF-8 without NUL), or null. */
function storableText(bytes: Uint8Array): string | null {
  try {
    const text = strictUtf8.decode(bytes);
    return isStorableText(text) ? text : null;
  } catch {
    return null;
  }
}
