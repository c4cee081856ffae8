/**
 * The local side of import/export: walking a directory the way git would see it (.git and
 * node_modules skipped by default, every .gitignore honoured at its own level), and writing
 * exported files back byte for byte.
 */
import { constants } from "node:fs";
import { lstat, mkdir, open, readdir, readFile, realpath, rename, stat, unlink } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import path from "node:path";
import ignore, { type Ignore } from "ignore";

export const DEFAULT_SKIPS = [".git", "node_modules"];

export interface LocalFile {
  /** Absolute path on disk. */
  file: string;
  /** "/"-separated path relative to the walked root. */
  relative: string;
  size: number;
}

export interface WalkOptions {
  skip?: string[];
  gitignore?: boolean;
  /**
   * Called for an entry below the root that cannot be read (vanished, unreadable): the walk goes
   * on without it. Without it the walk throws. The root itself always throws.
   */
  onError?: (relative: string, error: Error) => void;
}

/** Every regular file under `root`, sorted, minus skipped directories and .gitignore matches. */
export async function walk(
  root: string,
  { skip = DEFAULT_SKIPS, gitignore = true, onError }: WalkOptions = {},
): Promise<LocalFile[]> {
  const out: LocalFile[] = [];
  const top = path.resolve(root);
  const relativeOf = (full: string) => path.relative(top, full).split(path.sep).join("/");
  const tolerate = async <T>(full: string, fn: () => Promise<T>): Promise<T | undefined> => {
    if (!onError || full === top) return fn();
    try {
      return await fn();
    } catch (e) {
      onError(relativeOf(full), e as Error);
      return undefined;
    }
  };
  async function visit(dir: string, rules: Array<{ base: string; ig: Ignore }>) {
    const entries = await tolerate(dir, () => readdir(dir, { withFileTypes: true }));
    if (!entries) return;
    const here = [...rules];
    if (gitignore && entries.some((e) => e.isFile() && e.name === ".gitignore")) {
      const file = path.join(dir, ".gitignore");
      const text = await tolerate(file, () => readFile(file, "utf8"));
      if (text !== undefined) here.push({ base: dir, ig: ignore().add(text) });
    }
    const ignored = (full: string, isDir: boolean) =>
      here.some(({ base, ig }) => {
        const rel = path.relative(base, full).split(path.sep).join("/");
        return rel !== "" && ig.ignores(isDir ? rel + "/" : rel);
      });
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const full = path.join(dir, e.name);
      if (e.isDirectory()) {
        if (skip.includes(e.name) || ignored(full, true)) continue;
        await visit(full, here);
      } else if (e.isFile() && !ignored(full, false)) {
        const info = await tolerate(full, () => stat(full));
        if (info) out.push({ file: full, relative: relativeOf(full), size: info.size });
      }
    }
  }
  await visit(top, []);
  return out;
}

/** A path export refused to write (it would have left the target through a link or a non-directory). */
export class UnsafePathError extends Error {
  constructor(
    readonly refused: string,
    why: string,
  ) {
    super(`refused ${refused}: ${why}`);
    this.name = "UnsafePathError";
  }
}

/** The real path of `root`, created if missing: the target itself may be a symlink (the user named it). */
export async function prepareRoot(root: string): Promise<string> {
  await mkdir(root, { recursive: true });
  return realpath(root);
}

/**
 * Writes `bytes` at `relative` under `realRoot` (from prepareRoot) without ever leaving it: no
 * component below the root is followed if it is a symbolic link or is not a directory (a stored
 * "/docs/evil.sh" must not land in "../outside" through an existing "out/docs -> ../outside"),
 * the directory finally written in is checked by real path, and the file is written to a fresh
 * temporary name (O_EXCL: never a link) then renamed over the old one, so the write is atomic and
 * an existing symlink or hard link at the destination is replaced, not written through.
 */
export async function writeUnder(realRoot: string, relative: string, bytes: Uint8Array): Promise<void> {
  const parts = path.posix
    .normalize("/" + relative)
    .split("/")
    .filter((p) => p !== "" && p !== "." && p !== "..");
  if (parts.length === 0) throw new UnsafePathError(relative, "not a file path");
  let dir = realRoot;
  for (const part of parts.slice(0, -1)) {
    dir = path.join(dir, part);
    const kind = await entryKind(dir);
    if (kind === "missing") {
      await mkdir(dir).catch((e) => {
        if (e.code !== "EEXIST") throw e;
      });
      if ((await entryKind(dir)) !== "directory")
        throw new UnsafePathError(dir, "was replaced by something that is not a directory");
    } else if (kind !== "directory") {
      throw new UnsafePathError(
        dir,
        kind === "symlink"
          ? "is a symbolic link (export never follows links below its target)"
          : "exists and is not a directory",
      );
    }
  }
  // A link swapped in while we walked would show here: the directory must still be where we think.
  if ((await realpath(dir)) !== dir) throw new UnsafePathError(dir, "resolves outside the export target");
  const target = path.join(dir, parts[parts.length - 1]);
  const kind = await entryKind(target);
  if (kind === "symlink")
    throw new UnsafePathError(target, "is a symbolic link (export never follows links below its target)");
  if (kind !== "missing" && kind !== "file") throw new UnsafePathError(target, "exists and is not a regular file");
  const temp = path.join(dir, `.deepagents-export-${process.pid}-${randomBytes(6).toString("hex")}.tmp`);
  const handle = await open(
    temp,
    constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
    0o666,
  );
  try {
    await handle.writeFile(bytes);
    await handle.close();
    await rename(temp, target);
  } catch (e) {
    await handle.close().catch(() => {});
    await unlink(temp).catch(() => {});
    throw e;
  }
}

async function entryKind(p: string): Promise<"missing" | "directory" | "file" | "symlink" | "other"> {
  try {
    const s = await lstat(p);
    return s.isSymbolicLink() ? "symlink" : s.isDirectory() ? "directory" : s.isFile() ? "file" : "other";
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return "missing";
    throw e;
  }
}
