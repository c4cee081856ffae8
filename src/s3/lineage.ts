/**
 * Settling a conditional PUT whose answer was lost, without guessing. Every PUT carries a fresh
 * write id and the write ids it descends from; a HEAD of the object there now then tells whether
 * ours landed, landed and was replaced, or did not land. (Equal bytes would not do: two
 * increments of a counter write the same bytes.)
 */

/** Who an object is: its write id and the write ids it descends from. */
export interface Lineage {
  writeId?: string;
  basedOn?: string;
}

export const META_CREATED = "created-at"; // S3 lower-cases user metadata keys
export const META_LINES = "lines";
/** A fresh UUID per PUT: tells whether a PUT whose answer was lost landed. */
export const META_WRITE_ID = "write-id";
/**
 * The write ids an object descends from, nearest first, comma-separated: the object it replaced,
 * that one's parent, and so on (LINEAGE_LENGTH of them). NO_OBJECT stands for "written where
 * there was no object"; an entry marked UNCONDITIONAL was replaced without a precondition (its
 * successor may have been based on an older object than the one it replaced).
 */
export const META_BASED_ON = "based-on";
const LINEAGE_LENGTH = 16;
export const NO_OBJECT = "-";
const UNCONDITIONAL = "~";

export const unquote = (etag: string | undefined): string => (etag ?? "").replace(/^(W\/)?"|"$/g, "");

/** The lineage of a new object based on `parent` (null: there was no object). */
export function lineageOf(parent: Lineage | null, conditional: boolean): string {
  const mark = conditional ? "" : UNCONDITIONAL;
  if (parent === null) return mark + NO_OBJECT;
  // A foreign object (no write id) ends the chain: "?" matches no write id.
  const older = parent.writeId && parent.basedOn ? parent.basedOn.split(",") : [];
  return [mark + (parent.writeId ?? "?"), ...older].slice(0, LINEAGE_LENGTH).join(",");
}

export type Settled = "landed" | "replaced" | "retry" | "lost" | "unknown";

/**
 * Did our PUT (write id `writeId`, based on the object with write id `parentId`, NO_OBJECT for
 * none) land? Read from the object there now:
 * - "landed": it is ours;
 * - "replaced": it descends from ours (our id in its lineage: whoever wrote it had read ours);
 * - "retry": the condition still holds (nothing replaced the parent), so ours did not land;
 * - "lost": it descends from our parent through conditional writes only, and ours is not on that
 *   line: another writer replaced the parent, ours did not land (same as a 412);
 * - "unknown": neither (deleted and re-created, replaced more than LINEAGE_LENGTH times, written
 *   unconditionally or by another tool since): never guessed, since guessing "lost" would apply
 *   an edit twice and guessing "landed" would lose one.
 */
export function settle(
  current: (Lineage & { etag: string }) | null,
  writeId: string,
  parentId: string | undefined,
  enforced: { IfMatch?: string; IfNoneMatch?: string },
): Settled {
  if (current?.writeId === writeId) return "landed";
  const lineage = current?.basedOn?.split(",") ?? [];
  const ids = lineage.map((entry) => entry.replace(UNCONDITIONAL, ""));
  if (ids.includes(writeId)) return "replaced";
  if (enforced.IfNoneMatch ? current === null : current?.etag === unquote(enforced.IfMatch)) return "retry";
  const at = parentId === undefined ? -1 : ids.indexOf(parentId);
  if (at >= 0 && lineage.slice(0, at + 1).every((entry) => !entry.startsWith(UNCONDITIONAL))) return "lost";
  return "unknown";
}
