/**
 * Workspace isolation on S3 (issue 7, part 2): the awkward names of the PostgreSQL test as key
 * prefixes (`acme` next to `acme-corp`, LIKE characters, backslashes, unicode in two normalisation
 * forms, 128 characters), the names S3 cannot hold refused clearly (`acme/x` would be a
 * sub-directory of `acme`; `.` and `..` are dot segments a server may resolve outside the prefix),
 * and the seeded random-operation property test with the bucket's keys checked against each
 * workspace's model. ISO_SEED replays a run, ISO_OPS widens it.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { ListObjectsV2Command } from "@aws-sdk/client-s3";
import { S3Backend } from "../../src/index.js";
import { startTestS3 } from "../helpers/s3.js";
import { assertWorkspaceEquals, namedWorkspaces, runWorkspace, tagOf } from "./isolation-property.js";

const SEED = Number(process.env.ISO_SEED ?? Date.now() % 1_000_000);
const OPS = Number(process.env.ISO_OPS ?? 40);
const s3 = await startTestS3();
const root = await s3.backend({ workspace: "acme" });
// s3rver keeps objects as files, and a file name is at most 255 bytes: a 128-character name of
// 3-byte characters (384 bytes) fits real S3 and Ceph but not s3rver.
const LONG = s3.kind === "s3rver" ? "L".repeat(128) : "ワ".repeat(128);
const NAMES = namedWorkspaces(LONG).filter((n) => !n.includes("/"));

test.after(() => s3.close());

/** Every key of the bucket under the test prefix, grouped by workspace. */
async function keysByWorkspace(): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  let token: string | undefined;
  do {
    const page = await root.client.send(
      new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: "test/", ContinuationToken: token }),
    );
    for (const { Key } of page.Contents ?? []) {
      const [, workspace, ...rest] = Key!.split("/");
      out.set(workspace, [...(out.get(workspace) ?? []), "/" + rest.join("/")]);
    }
    token = page.NextContinuationToken;
  } while (token);
  return out;
}

test("names: prefixes, LIKE characters, backslashes, unicode and 128 characters are distinct key prefixes", async () => {
  for (const name of NAMES)
    assert.is((await root.withWorkspace(name).write("/whoami.txt", name)).error, undefined, name);
  for (const name of NAMES) {
    const b = root.withWorkspace(name);
    assert.is((await b.readRaw("/whoami.txt")).data!.content, name, name);
    assert.equal(
      (await b.ls("/")).files!.map((f) => f.path),
      ["/whoami.txt"],
      name,
    );
    assert.equal(
      (await b.glob("**")).files!.map((f) => f.path),
      ["/whoami.txt"],
      name,
    );
    assert.equal(
      (await b.grep("a")).matches!.map((m) => m.text),
      name.includes("a") ? [name] : [],
      name,
    );
  }
  const keys = await keysByWorkspace();
  assert.equal([...keys.keys()].sort(), [...NAMES].sort());
  for (const name of NAMES) assert.equal(keys.get(name), ["/whoami.txt"], name);
  for (const name of NAMES) assert.is((await root.withWorkspace(name).delete("/")).error, undefined, name);
  assert.equal(await keysByWorkspace(), new Map());
});

test("names S3 cannot hold are refused with a clear error, before any request", async () => {
  const cases: Array<[unknown, RegExp]> = [
    ["acme/x", /^Invalid workspace name "acme\/x": '\/' is not allowed on S3$/],
    [".", /^Invalid workspace name "\.": '\.' and '\.\.' are not allowed on S3/],
    ["..", /^Invalid workspace name "\.\.": '\.' and '\.\.' are not allowed on S3/],
    ["", /^Invalid workspace name "": use 1-128 printable characters$/],
    ["x".repeat(129), /^Invalid workspace name "x{129}": use 1-128 printable characters$/],
    ["a\nb", /^Invalid workspace name "a\\nb": use 1-128 printable characters$/],
  ];
  await root.write("/keep.txt", "keep");
  for (const [name, message] of cases) {
    assert.throws(() => root.withWorkspace(name as string), message, String(name));
    assert.throws(
      () => new S3Backend({ bucket: s3.bucket, prefix: "test", workspace: name as string }),
      message,
      String(name),
    );
  }
  assert.equal(await keysByWorkspace(), new Map([["acme", ["/keep.txt"]]]));
  await root.delete("/");
});

test("a path whose key would pass S3's 1,024-byte limit is an invalid path, and nothing is written", async () => {
  const b = root.withWorkspace(LONG);
  const path = `/${"p".repeat(250)}/${"q".repeat(250)}/${"r".repeat(250)}/${"s".repeat(200)}.txt`; // 958 bytes: a valid path
  const write = await b.write(path, "x");
  assert.match(
    write.error!,
    /^Error: Invalid path '.*': with the prefix and workspace its S3 key would be \d+ bytes \(S3 allows 1024\)$/,
  );
  const upload = await b.uploadFiles([
    [path, Buffer.from("x")],
    ["/short.txt", Buffer.from("ok")],
  ]);
  assert.equal(
    upload.map((u) => u.error),
    ["invalid_path", null],
  );
  assert.equal((await b.downloadFiles([path]))[0].error, "invalid_path");
  assert.match((await b.edit(path, "x", "y")).error!, /^Error: Invalid path /);
  assert.equal(await keysByWorkspace(), new Map([[LONG, ["/short.txt"]]]));
  await b.delete("/");
});

test(`property: ${NAMES.length} workspaces × ${OPS} random operations at once never see or touch each other (seed ${SEED})`, async () => {
  const tags = NAMES.map((_, i) => tagOf(i));
  const backends = NAMES.map((name) => root.withWorkspace(name));
  const runs = await Promise.all(backends.map((b, i) => runWorkspace(b, i, SEED, OPS, tags)));
  for (const [i, run] of runs.entries()) await assertWorkspaceEquals(backends[i], run);
  // Storage: each workspace's keys are exactly its model's paths, under its own prefix.
  const keys = await keysByWorkspace();
  for (const workspace of keys.keys())
    assert.ok(NAMES.includes(workspace), `unexpected key prefix ${JSON.stringify(workspace)}`);
  for (const run of runs)
    assert.equal(
      (keys.get(run.workspace) ?? []).sort(),
      [...run.model.keys()].sort(),
      `keys of ${JSON.stringify(run.workspace)}`,
    );
  const total = runs.reduce((n, run) => n + run.ops, 0);
  console.log(
    `isolation (S3, ${s3.kind}): ${NAMES.length} workspaces, ${total} operations, seed ${SEED}: nothing crossed`,
  );
});

test.run();
