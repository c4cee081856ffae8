/**
 * Splits in succession (issue 16, item 4): one partition doubled to 2, to 4, then to 8, over the
 * two partition servers, with 16 workspaces written between the splits. After each split every
 * workspace reads exactly what it holds (every file, its directories, its versions' numbers) from
 * the one partition PL/Proxy maps it to, nothing of it is left on another, and a write goes on
 * where it now is. The 4 -> 8 split is the first whose old partitions were themselves made by a
 * split. A schema and cluster of this file's own.
 */
import pg from "pg";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { migrate, PostgresBackend, splitCluster } from "../src/index.js";
import {
  clusterLayout,
  clusterServers,
  createDatabase,
  dropCluster,
  skipWithoutCluster,
  withDatabase,
  onDatabase as on,
} from "./helpers/cluster.js";
import { databaseUrl, uniqueName } from "./helpers/db.js";

if (!skipWithoutCluster("splitCluster twice")) {
  const servers = clusterServers()!;
  const main = await databaseUrl();
  const layout = clusterLayout(servers, main);
  const schema = uniqueName("px_twice");
  // The layout's four, then four more: alternately on the two servers.
  const partitions = [
    ...layout.partitions,
    ...[4, 5, 6, 7].map((i) => withDatabase(servers[i % servers.length], `deepagents_test_part_${i}`)),
  ];
  for (const url of [layout.proxyUrl, ...partitions]) await createDatabase(url);
  await migrate({ connectionString: layout.proxyUrl, schema, cluster: { partitions: partitions.slice(0, 1) } });
  const front = new PostgresBackend({ connectionString: layout.proxyUrl, schema, maxPoolSize: 4, minPoolSize: 0 });
  const s = pg.escapeIdentifier(schema);
  test.after(async () => {
    await front.close();
    await dropCluster(servers, main, schema);
    for (const url of partitions.slice(4)) await on(url, (c) => c.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`));
  });

  const names = Array.from({ length: 16 }, () => uniqueName("tw"));
  /** What each workspace should hold: path -> content. */
  const expected = new Map<string, Map<string, string>>(names.map((n) => [n, new Map()]));
  const writeRound = async (round: number) => {
    for (const [i, n] of names.entries()) {
      const view = front.withWorkspace(n);
      const path = `/r${round}/f${i}.txt`;
      assert.is((await view.write(path, `round ${round} of ${n}\n`)).error, undefined);
      assert.is((await view.write("/same.txt", `round ${round}\n`)).error, undefined);
      expected.get(n)!.set(path, `round ${round} of ${n}\n`).set("/same.txt", `round ${round}\n`);
    }
  };
  /** Every workspace as expected through the front, and its rows on its own partition only. */
  const check = async (count: number) => {
    const holders = await Promise.all(
      partitions
        .slice(0, count)
        .map((url) =>
          on(
            url,
            async (c) =>
              new Set((await c.query(`SELECT DISTINCT workspace FROM ${s}.files`)).rows.map((r) => r.workspace)),
          ),
        ),
    );
    for (const n of names) {
      const view = front.withWorkspace(n);
      for (const [path, content] of expected.get(n)!)
        assert.is((await view.read(path)).content, content, `${n}${path}`);
      // (/same.txt was written once per round: its version is the number of rounds so far.)
      assert.is((await view.stat("/same.txt")).data?.version, expected.get(n)!.size - 1, n);
      const partition = (
        await on(layout.proxyUrl, (c) => c.query("SELECT pg_catalog.hashtext($1) & $2 AS p", [n, count - 1]))
      ).rows[0].p;
      assert.equal(
        holders.flatMap((h, i) => (h.has(n) ? [i] : [])),
        [partition],
        `${n} is on partition ${partition} of ${count} alone`,
      );
    }
  };

  test("1 -> 2 -> 4 -> 8 partitions: after each split every workspace is whole, on its one partition, and writable", async () => {
    await writeRound(0);
    for (const count of [2, 4, 8]) {
      const report = await splitCluster({
        connectionString: layout.proxyUrl,
        schema,
        cluster: { partitions: partitions.slice(0, count) },
      });
      assert.is(report.moved.length, count / 2);
      await check(count);
      await writeRound(count);
      await check(count);
    }
  });

  test.run();
}
