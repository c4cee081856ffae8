/**
 * One description of a sharded deployment (docs/CLUSTER.md): the partitions' databases, in
 * PL/Proxy's order. Partition i holds every workspace w with hashtext(w) & (count - 1) = i, so
 * the count is a power of two and the order is part of where the data is.
 */
import { clusterErrors } from "../../protocol.js";

export interface ClusterOptions {
  /**
   * The partitions' databases as postgres:// URLs, 2^k of them (1, 2, 4, ...), in order. migrate()
   * connects to each with the URL as given; the proxy database (and watch() and streamed
   * searches, which connect to the partition holding their workspace) reach them at the URL's
   * host, port and database, as the role calling — never with the URL's user or password, which
   * the proxy database does not store (give the proxy's server a ~/.pgpass, or trust it).
   */
  partitions: string[];
}

/** The most partitions a cluster may have (PL/Proxy has no limit; a sanity bound for input). */
const MAX_PARTITIONS = 4096;

/** Refuses what is not a cluster description; returns the partitions' URLs, parsed. */
export function validateCluster(cluster: unknown): URL[] {
  const partitions = (cluster as ClusterOptions | null)?.partitions;
  if (!Array.isArray(partitions) || partitions.length === 0) throw new Error(clusterErrors.noPartitions());
  const count = partitions.length;
  if (count > MAX_PARTITIONS || (count & (count - 1)) !== 0) throw new Error(clusterErrors.notPowerOfTwo(count));
  const urls = partitions.map((p, i) => {
    let url: URL | undefined;
    try {
      url = typeof p === "string" ? new URL(p) : undefined;
    } catch {}
    if (!url || !/^postgres(ql)?:$/.test(url.protocol) || !url.hostname || url.pathname.length < 2) {
      throw new Error(clusterErrors.invalidPartition(i));
    }
    return url;
  });
  const places = urls.map(libpqOptions);
  // PL/Proxy adds user=<the calling role> only when "user=" appears nowhere in the options: a
  // database or host name holding it would make every role connect as the front's OS user.
  const named = places.findIndex((p) => p.includes("user="));
  if (named >= 0) throw new Error(clusterErrors.userInOptions(named));
  const twice = places.findIndex((p, i) => places.indexOf(p) !== i);
  if (twice >= 0) throw new Error(clusterErrors.samePartitionTwice(places[twice]));
  return urls;
}

/** A libpq value: quoted when it holds a space, a quote or a backslash, or is empty. */
const libpqValue = (v: string) => (/^[^\s'\\]+$/.test(v) ? v : `'${v.replace(/[\\']/g, "\\$&")}'`);

/**
 * Where a partition is, as a libpq connection string (PL/Proxy's server option): host, port,
 * database and sslmode of the URL. No user or password (see ClusterOptions.partitions).
 */
export function libpqOptions(url: URL): string {
  const options: [string, string][] = [
    ["host", decodeURIComponent(url.hostname.replace(/^\[(.*)\]$/, "$1"))],
    ["port", url.port || "5432"],
    ["dbname", decodeURIComponent(url.pathname.slice(1))],
  ];
  const sslmode = url.searchParams.get("sslmode");
  if (sslmode) options.push(["sslmode", sslmode]);
  return options.map(([k, v]) => `${k}=${libpqValue(v)}`).join(" ");
}

/** The keys and values of a libpq connection string (the inverse of libpqOptions, and more). */
export function parseLibpqOptions(text: string): Map<string, string> {
  const out = new Map<string, string>();
  const pattern = /\s*([A-Za-z_]+)\s*=\s*(?:'((?:[^'\\]|\\.)*)'|(\S*))/gy;
  for (let m = pattern.exec(text); m; m = pattern.exec(text)) {
    out.set(m[1], m[2] !== undefined ? m[2].replace(/\\(.)/g, "$1") : m[3]);
  }
  return out;
}
