/** Reading a watch() subscription in tests. */
import type { Change, Subscription } from "../../src/index.js";

/**
 * A subscription's changes until `n` arrived (or the deadline passes: the subscription is then
 * closed and what arrived is returned). Leaving the loop closes the subscription.
 */
export async function collect(sub: Subscription, n: number, timeoutMs = 20_000): Promise<Change[]> {
  const out: Change[] = [];
  const deadline = setTimeout(() => void sub.close(), timeoutMs);
  for await (const change of sub) {
    out.push(change);
    if (out.length >= n) break;
  }
  clearTimeout(deadline);
  return out;
}

export const ids = (changes: Change[]) => changes.map((c) => c.id);
export const increasing = (xs: number[]) => xs.every((x, i) => i === 0 || x > xs[i - 1]);
