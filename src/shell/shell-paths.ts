/**
 * Paths as the shell sees them. The shell's "/" is the workspace root and a path is always
 * resolved lexically within it: ".." at the root stays at the root (as "/.." does in POSIX), so no
 * spelling of a path reaches outside the workspace. There are no symbolic links to follow.
 */

/** Absolute, without ".", ".." or empty segments, without a trailing "/" (except the root). */
export function normalizeShellPath(path: string): string {
  const segments: string[] = [];
  for (const segment of path.split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment === "..") segments.pop();
    else segments.push(segment);
  }
  return `/${segments.join("/")}`;
}

/** `path` resolved against the directory `base` (already absolute). */
export function resolveShellPath(base: string, path: string): string {
  return normalizeShellPath(path.startsWith("/") ? path : `${base}/${path}`);
}

/** The directory holding a normalised path ("/" for the root and its children). */
export function parentOf(path: string): string {
  const slash = path.lastIndexOf("/");
  return slash <= 0 ? "/" : path.slice(0, slash);
}

export function joinShellPath(dir: string, name: string): string {
  return dir === "/" ? `/${name}` : `${dir}/${name}`;
}

/** `path` is `dir` or lies below it. */
export function isWithin(dir: string, path: string): boolean {
  return dir === "/" || path === dir || path.startsWith(`${dir}/`);
}

/**
 * The order in which a depth-first walk that lists each directory sorted by name meets two
 * paths: segment by segment, by UTF-16 code units (the order readdir() answers in). It differs
 * from sorting whole paths ("/a/b" comes before "/a-c", which a plain sort puts first).
 */
export function compareTreeOrder(a: string, b: string): number {
  const x = a.split("/");
  const y = b.split("/");
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i] < y[i] ? -1 : 1;
  }
  return x.length - y.length;
}
