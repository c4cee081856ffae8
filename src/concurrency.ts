/** Bounded concurrency for backends that make one request per file (S3). */

/** Maps `items` with at most `limit` calls in flight; results in input order. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < items.length; i = next++) results[i] = await fn(items[i], i);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}

/**
 * Runs `fetch` over `items` with up to `limit` in flight, hands results to `consume` strictly in
 * input order, and stops starting new fetches as soon as `consume` returns false. Used by grep:
 * ordered output, bounded parallelism, and no downloads past the match cap.
 */
export async function orderedPipeline<T, R>(
  items: readonly T[],
  limit: number,
  fetch: (item: T) => Promise<R>,
  consume: (result: R, item: T) => boolean,
): Promise<void> {
  const inFlight: Array<Promise<R>> = [];
  let started = 0;
  const fill = () => {
    while (started < items.length && inFlight.length < limit) {
      const p = fetch(items[started++]);
      // Awaited in order below; a fetch that fails while an earlier one is still awaited (the
      // endpoint went down under several requests), or after we stopped early or `consume`
      // threw, must not be an unhandled rejection (which ends the process).
      p.catch(() => {});
      inFlight.push(p);
    }
  };
  fill();
  for (let i = 0; i < items.length; i++) {
    const result = await inFlight.shift()!;
    if (!consume(result, items[i])) return; // start no more; those in flight settle quietly
    fill();
  }
}
