/**
 * The chunk prefilter's pattern, written beside the exact one. PostgreSQL tests many lines joined
 * by "\n" at once, through the trigram index, with `chunkSource`: the same ARE with every
 * lookaround (and \b, \B) dropped. Run in newline-sensitive mode (?n) it matches every chunk
 * holding a line that `source` matches — a lookaround there would see the neighbouring line's "\n"
 * and drop a chunk a line matches.
 */

/** Both patterns at once: `source` (exact, one line) and `chunkSource` (relaxed, lookaround-free). */
export class TwoPatterns {
  /** The exact ARE. */
  source = "";
  /** The same without lookarounds. */
  chunkSource = "";
  private lookDepth = 0;
  private readonly groups: Array<"group" | "look"> = [];

  /** ARE text for both patterns; `relaxed` replaces `exact` in the chunk pattern. */
  emit(exact: string, relaxed = exact): void {
    this.source += exact;
    if (this.lookDepth === 0) this.chunkSource += relaxed;
  }

  /** A \b or \B (a lookaround): an empty group in the chunk pattern. */
  emitBoundary(exact: string): void {
    this.emit(exact, "(?:)");
  }

  /** Opens (?=, (?!, (?<= or (?<! (`kind` is what follows "(?"): nothing of it reaches the chunk pattern. */
  openLookaround(kind: string): void {
    if (this.lookDepth === 0) this.chunkSource += "(?:)";
    this.source += `(?${kind}`;
    this.lookDepth++;
    this.groups.push("look");
  }

  /** Opens a (non-capturing) group. */
  openGroup(): void {
    this.emit("(?:");
    this.groups.push("group");
  }

  /** Closes the innermost group or lookaround. */
  close(): void {
    if (this.groups.pop() === "look") {
      this.source += ")";
      this.lookDepth--;
    } else {
      this.emit(")");
    }
  }
}
