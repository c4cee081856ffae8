/**
 * Filesystem errors as scripts expect them. just-bash's commands recognise a failure by the errno
 * name at the start of the message ("ENOENT: no such file or directory, open '/x'", the shape
 * Node.js and just-bash's own filesystems use) and print what bash users know ("cat: x: No such
 * file or directory"), so every failure of the workspace adapter is thrown in that shape.
 */

const DESCRIPTIONS = {
  ENOENT: "no such file or directory",
  EISDIR: "illegal operation on a directory",
  ENOTDIR: "not a directory",
  EEXIST: "file already exists",
  ENOTEMPTY: "directory not empty",
  EINVAL: "invalid argument",
  EPERM: "operation not permitted",
  EROFS: "read-only file system",
  ENAMETOOLONG: "name too long",
  EFBIG: "file too large",
  EBUSY: "resource busy or locked",
  EIO: "i/o error",
} as const;

export type PosixCode = keyof typeof DESCRIPTIONS;

export class PosixError extends Error {
  override name = "PosixError";

  /** `detail`: why, when the errno alone does not say (a storage failure, a refused name). */
  constructor(
    readonly code: PosixCode,
    syscall: string,
    path: string,
    detail?: string,
  ) {
    super(`${code}: ${DESCRIPTIONS[code]}, ${syscall} '${path}'${detail ? ` (${detail})` : ""}`);
  }
}

/** True for an ENOENT from the adapter (a missing path, not a failure). */
export const isMissing = (e: unknown): boolean => e instanceof PosixError && e.code === "ENOENT";
