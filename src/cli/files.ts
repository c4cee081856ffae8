/**
 * The local side of import/export: walking a directory the way git would see it (.git and
 * node_modules skipped by default, every .gitignore honoured at its own level), and writing
 * exported files back byte for byte.
 */
import { mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
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

/** Every regular file under `root`, sorted, minus skipped directories and .gitignore matches. */
export async function walk(root: string, { skip = DEFAULT_SKIPS, gitignore = true } = {}): Promise<LocalFile[]> {
  const out: LocalFile[] = [];
  async function visit(dir: string, rules: Array<{ base: string; ig: Ignore }>) {
    const entries = await readdir(dir, { withFileTypes: true });
    const here = [...rules];
    if (gitignore && entries.some((e) => e.isFile() && e.name === ".gitignore")) {
      here.push({ base: dir, ig: ignore().add(await readFile(path.join(dir, ".gitignore"), "utf8")) });
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
        const { size } = await stat(full);
        out.push({ file: full, relative: path.relative(root, full).split(path.sep).join("/"), size });
      }
    }
  }
  await visit(path.resolve(root), []);
  return out;
}

/** Writes `bytes` at `relative` under `root`, creating directories; refuses to leave `root`. */
export async function writeUnder(root: string, relative: string, bytes: Uint8Array): Promise<void> {
  const target = path.resolve(root, "." + path.posix.normalize("/" + relative));
  if (!target.startsWith(path.resolve(root) + path.sep)) throw new Error(`refusing to write outside ${root}: ${relative}`);
  await mkdir(path.dirname(target), { recursive: true });
  await writeFile(target, bytes);
}
